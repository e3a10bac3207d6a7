"""The HTML report in a real browser: headless Chromium (Debian `chromium`, installed by `make sysdeps`) loads it,
every figure decodes (naturalWidth > 0), the tables and sections are there, and the page asks for nothing outside
itself."""
import json
import re
import shutil
import subprocess

import pytest

from faultinj.outcomes import Outcome
from faultinj.safety import BlockResult
from reports.campaign import CampaignSummary, render

O = Outcome

#: Appended to a copy of the report (never to the report itself): after load, write what the page looks like into
#: the DOM, which --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const out = {
    images: imgs.length,
    decoded: imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("tbody tr").length,
    sections: [...document.querySelectorAll("h2[id]")].map(h => h.id),
    resources: performance.getEntriesByType("resource").map(r => r.name).filter(n => !n.startsWith("data:")),
    title: document.title,
  };
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=10000", "--dump-dom")


def _summary(extras=None):
    blocks = (
        BlockResult("mac", {"ff": 3000}, {O.MASKED: 900, O.SDC: 90, O.LATENT: 10}),
        BlockResult("buffer", {"mem": 8192}, {O.MASKED: 400, O.SDC: 5, O.DETECTED_UNRECOVERABLE: 95}),
    )
    elements = (
        {"element": "top.mac.acc", "block": "mac", "kind": "ff", "width": 8, "depth": 1, "injections": 16,
         "unsafe": 9, "residual": 8, "bits": [[2, 1]] * 8},
        {"element": "top.buf.mem", "block": "buffer", "kind": "mem", "width": 8, "depth": 1024, "injections": 500,
         "unsafe": 100, "residual": 5},
    )
    worst = ({"id": 3, "outcome": "sdc", "block": "mac", "site": "top.mac.acc[3]", "cycle": 120,
              "replay": "rampart fi replay c.db 3"},)
    return CampaignSummary("npu", "u55-32", "conv1x1", 7, "stratified by block", blocks, seconds=1.5,
                           cycles_simulated=10 ** 6, fault_space=10 ** 9, reproduce="rampart fi run npu -c u55-32",
                           worst=worst, elements=elements, extras=extras or {},
                           tool={"name": "rampart", "version": "0", "commit": "abc", "date": "2026-01-01"})


EXTRAS = {
    "protection_plan": {
        "target": "ASIL-D", "verified": True, "verification_db": "verify.db",
        "blocks": [{"block": "mac", "option": "tmr", "fit_scale": 0.0, "area_cells": 900, "area_ff": 300},
                   {"block": "buffer", "option": "secded", "fit_scale": 0.05, "area_cells": 120, "area_ff": 0}],
        "area": {"baseline": {"cells": 10_000, "ff": 3000}, "protected": {"cells": 13_000, "ff": 3600},
                 "lockstep": {"cells": 20_500, "ff": 6100}},
        "metrics": {"spfm": 0.995, "lfm": 0.93, "pmhf_fit": 0.4},
    },
    "pareto": [{"area_overhead": 0.0, "spfm": 0.93, "label": "none"},
               {"area_overhead": 0.3, "spfm": 0.991, "label": "plan", "chosen": True},
               {"area_overhead": 1.05, "spfm": 0.999, "label": "lockstep"}],
}


def _probe(html_path, tmp_path) -> dict:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: run `make sysdeps`"
    page = html_path.read_text()
    assert "</body>" in page
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    out = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', out.stdout, re.S)
    assert found, "the probe did not run: " + out.stdout[-500:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize("extras", [None, EXTRAS], ids=["campaign", "with-study-extras"])
def test_report_renders_in_chromium(tmp_path, extras):
    paths = render(_summary(extras), tmp_path / "report")
    page = paths["html"].read_text()
    # self-contained: every src/href is inline data or a fragment
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(u.startswith(("data:", "#")) for u in links), links
    result = _probe(paths["html"], tmp_path)
    # figures: unmasked, outcomes, derated FIT, heat map (+ the Pareto front with extras); all decoded
    want_images = 4 + (1 if extras else 0)
    assert result["images"] == want_images and result["decoded"] == want_images, result["broken"]
    assert result["resources"] == []
    core = ["reproduce", "fit", "design", "outcomes", "metrics", "blocks", "sensitivity", "worst"]
    assert result["sections"] == core + (["protection", "pareto"] if extras else [])
    # FIT, classes, design, outcomes, metrics, ASIL, blocks, sensitive elements, worst (+ plan, area)
    assert result["tables"] == 9 + (2 if extras else 0) and result["rows"] > 30
    assert result["title"].startswith("rampart FI report")
