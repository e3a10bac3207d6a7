"""The injection engine: one golden run with checkpoints, then batches of bit flips run in C.

A fault is ``(site, cycle)``: ``site`` a global state-bit index of the build's state map (see
:class:`sim.harness.NativeSim`), ``cycle`` in ``[0, workload.cycles)``: the bit is flipped in the state after ``cycle``
rising edges, i.e. just before the inputs of cycle ``cycle`` are applied. A multi-bit upset of ``upset`` bits
(``upset=1``: a single-event upset) flips the site's bit and the ``upset - 1`` bits above it in the same word of the
same state element, wrapping at the word's edge (bit ``width - 1`` is followed by bit 0), so every fault flips
exactly ``min(upset, width)`` distinct bits and the fault space (sites x cycles) is the same for every ``upset``.

* :class:`GoldenRun` replays the workload once (cached per process) recording the observed outputs of every cycle,
  a snapshot of the model and a state digest every ``interval`` cycles, and the final digest.
  :meth:`GoldenRun.inject` hands a batch of faults to ``rp_inject_batch_ex``: restore the checkpoint at or before the
  cycle, replay to it, flip, then compare outputs (on observed cycles; first mismatch = SDC) and the state digest
  at each checkpoint (equal = MASKED, stop early); at the end an equal state is MASKED, a different one LATENT.
* Workloads with a memory image, observed memory regions, a completion port (watchdog: HANG) or detection ports
  (DETECTED_UNRECOVERABLE) are handled in the same C loops (``rp_golden_run_ex`` / ``rp_inject_batch_ex``; see
  :mod:`faultinj.workload`): the image is loaded into the fresh model before the golden run, so every snapshot
  carries it; the regions are compared with ``memcmp`` at the end; the early stop on an equal state digest still
  applies (equal full state means equal memory and equal future).
* Correction ports (a workload's optional ``correct`` attribute, e.g. an ECC's ``corrected``): a run that would end
  MASKED or LATENT but raised one of them on any cycle is DETECTED_RECOVERABLE; they must stay low in the golden run.
* :func:`reference_outcome` is the independent, slow path used to validate the fast one: a fresh model, a full
  replay with :meth:`~sim.harness.NativeSim.run_stimulus` up to the cycle, the flip, a replay to the end, and a
  comparison of the full output traces and the final state bytes. No snapshots, digests or early stop.
"""
import numpy as np

from base import RampartError
from faultinj.outcomes import Outcome
from faultinj.workload import Workload
from sim.build import Build
from sim.harness import NativeSim

__all__ = ["GoldenRun", "golden_run", "default_interval", "reference_outcome", "ReferenceRun",
           "cocotb_reference_outcomes", "MAX_UPSET", "check_upset", "correction_ports"]

#: Snapshot memory a golden run may use (snapshots are ``rp_snapshot_size`` bytes each).
SNAPSHOT_BUDGET = 256 << 20


def default_interval(cycles: int, snapshot_size: int) -> int:
    """Checkpoint interval: every 64 cycles; coarser for a large model (a digest per ``interval`` cycles hashes the
    whole state: at least 2 KiB of model per cycle of interval, e.g. 256 for the NPU's ~300 KB with its memory
    model) and if the snapshots would exceed :data:`SNAPSHOT_BUDGET`."""
    interval = 64
    while snapshot_size > interval * 2048:
        interval *= 2
    while (cycles + interval - 1) // interval * snapshot_size > SNAPSHOT_BUDGET:
        interval *= 2
    return interval


class GoldenRun:
    """The golden run of ``workload`` on ``build`` with checkpoints, and the fast injector built on it."""

    def __init__(self, build_: Build, workload: Workload, interval: int | None = None):
        if build_.design != workload.design:
            raise RampartError(f"workload {workload.name} is for {workload.design}, not {build_.design}")
        self.build = build_
        self.workload = workload
        self.sim = NativeSim(build_)
        self.cycles = workload.cycles
        self.interval = interval or default_interval(self.cycles, self.sim.snapshot_size)
        self._in_ids, self._in_buf = self.sim.pack_inputs(workload.inputs)
        self._out_ids, out_words = self.sim.output_ids(list(workload.outputs))
        self.observe = None if workload.observe is None else np.asarray(workload.observe, dtype=np.uint8)
        load_image(self.sim, workload)
        self._mem = self.sim.mem_regions(workload.regions)
        self._detect_ids, _ = self.sim.output_ids(list(workload.detect))
        self._correct_ids, _ = self.sim.output_ids(list(correction_ports(workload)))
        self._complete_id = -1 if workload.complete is None else int(self.sim.output_ids([workload.complete])[0][0])
        self.watchdog = workload.watchdog_cycles
        # the golden run's "detection" check covers the correction ports too: both must stay low fault-free
        trace = self.sim.golden_run_ex(self._in_ids, self._in_buf, self._out_ids, out_words, self.interval,
                                       self._mem, np.concatenate([self._detect_ids, self._correct_ids]),
                                       self._complete_id)
        if trace.first_detect is not None:
            raise RampartError(f"workload {workload.name}: detection port high at cycle {trace.first_detect} of the "
                               "fault-free run")
        if not trace.completed:
            raise RampartError(f"workload {workload.name}: {workload.complete} is not high at the end of the "
                               f"fault-free run (cycle {self.cycles})")
        self.outputs, self.snapshots, self.digests = trace.outputs, trace.snapshots, trace.digests
        self.final_digest, self.memory = trace.final_digest, trace.memory
        self.num_sites = self.sim.num_sites
        self._liveness = None
        self.region_outcomes, self.region_at, self.top1 = workload.region_checks()
        self.classifier = any(n for _, n in self.top1)
        self._check_midway_regions()

    def _check_midway_regions(self):
        """A region checked before the end must hold its final golden value from its check cycle on."""
        offset = 0
        for k, (_, first, count) in enumerate(self.workload.regions):
            nbytes = int(self.sim._ent_bytes[self._mem.elems[k]]) * count
            at = self.region_at[k]
            if at < self.cycles:
                self.sim.restore(self.snapshots[at // self.interval].tobytes())
                start = at // self.interval * self.interval
                self.sim.run_stimulus((self._in_ids, self._in_buf[start:at]), [])
                got = self.sim.read_memory(int(self._mem.elems[k]), first, count).astype("<u8").tobytes()
                if got[:nbytes] != self.memory[offset:offset + nbytes].tobytes():
                    raise RampartError(f"workload {self.workload.name}: region {k} is checked at cycle {at} but "
                                       "changes after it in the fault-free run")
            offset += nbytes

    def close(self):
        self.sim.close()

    def decode(self, sites) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global site indices -> (state element, word, bit) arrays."""
        sites = np.asarray(sites, dtype=np.int64)
        if sites.size and (sites.min() < 0 or sites.max() >= self.num_sites):
            raise RampartError(f"site out of range (0..{self.num_sites - 1})")
        offsets = self.sim.site_offsets
        elements = np.searchsorted(offsets, sites, side="right") - 1
        widths = np.array([e.width for e in self.build.state], dtype=np.int64)
        words, bits = np.divmod(sites - offsets[elements], widths[elements])
        return elements, words, bits

    def liveness(self):
        """The workload's :class:`faultinj.liveness.Liveness` analysis (recorded on first use, kept)."""
        if self._liveness is None:
            from faultinj.liveness import Liveness

            self._liveness = Liveness(self.build, self.workload)
        return self._liveness

    def inject_analysed(self, sites, cycles, upset: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`inject`, but faults the liveness analysis classifies (:mod:`faultinj.liveness`) are not
        simulated; returns (outcome codes, cycles simulated: 0 for those, analytic: bool per fault)."""
        outcomes, simulated, analytic, _ = self.inject_ex(sites, cycles, upset, liveness=True)
        return outcomes, simulated, analytic

    def inject_ex(self, sites, cycles, upset: int = 1, liveness: bool = False):
        """Everything a campaign stores per fault: (outcome codes, cycles simulated, analytic: classified by the
        liveness analysis without simulating (``liveness``), top1: int8, for a classifier workload 1 when the
        deciding output's top-1 class changed (SDC / DELAYED), for a workload with a ``judge`` 1 when it calls the
        SDC's error above its threshold, else 0; -1 for every fault of other workloads)."""
        from faultinj.liveness import SIMULATE

        sites = np.asarray(sites, dtype=np.int64)
        cycles = np.asarray(cycles, dtype=np.int64)
        check_upset(upset)
        if cycles.size and (cycles.min() < 0 or cycles.max() >= self.cycles):
            raise RampartError(f"injection cycle out of range (0..{self.cycles - 1})")
        if liveness:
            outcomes = self.liveness().classify(*self.decode(sites), cycles, upset)
        else:
            outcomes = np.full(len(sites), SIMULATE, dtype=np.uint8)
        simulated = np.zeros(len(sites), dtype=np.uint64)
        flags = np.zeros(len(sites), dtype=np.uint8)
        run = outcomes == SIMULATE
        if run.any() and self.classifier:
            part = np.zeros(int(run.sum()), dtype=np.uint8)
            outcomes[run], simulated[run] = self._inject(sites[run], cycles[run], upset, part)
            flags[run] = part
        elif run.any():
            outcomes[run], simulated[run] = self.inject(sites[run], cycles[run], upset)
        top1 = flags.astype(np.int8) if self.classifier else np.full(len(sites), -1, dtype=np.int8)
        if self.workload.judge is not None:
            from rtl.designs import resolve

            top1[:] = 0
            sdc = np.flatnonzero(run & (outcomes == Outcome.SDC))
            if len(sdc):
                top1[sdc] = resolve(self.workload.judge)(self.workload, self.build, sites[sdc], cycles[sdc], upset)
        return outcomes, simulated, ~run, top1

    def inject(self, sites, cycles, upset: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Inject one ``upset``-bit upset per (site, cycle) (module docstring); returns (outcome codes as uint8,
        cycles simulated)."""
        check_upset(upset)
        cycles = np.asarray(cycles, dtype=np.int64)
        if cycles.size and (cycles.min() < 0 or cycles.max() >= self.cycles):
            raise RampartError(f"injection cycle out of range (0..{self.cycles - 1})")
        return self._inject(sites, cycles, upset, None)

    def _inject(self, sites, cycles, upset: int, flags):
        elements, words, bits = self.decode(sites)
        return self.sim.inject_batch(self._in_ids, self._in_buf, self._out_ids, self.outputs, self.observe,
                                     self.interval, self.snapshots, self.digests, self.final_digest,
                                     elements, words, bits, cycles, mem=self._mem, golden_mem=self.memory,
                                     detect_ids=self._detect_ids, correct_ids=self._correct_ids,
                                     complete_id=self._complete_id, watchdog=self.watchdog, upset=upset,
                                     region_outcomes=self.region_outcomes, region_at=self.region_at,
                                     top1=self.top1, flags=flags)


#: Largest multi-bit upset (bits of one word) the engine takes.
MAX_UPSET = 64


def check_upset(upset) -> int:
    """``upset`` as an int in [1, :data:`MAX_UPSET`], else a RampartError."""
    if isinstance(upset, bool) or not isinstance(upset, int | np.integer) or not 1 <= upset <= MAX_UPSET:
        raise RampartError(f"a multi-bit upset flips 1 to {MAX_UPSET} adjacent bits, not {upset!r}")
    return int(upset)


def correction_ports(workload: Workload) -> tuple[str, ...]:
    """The workload's correction ports (``correct``)."""
    return tuple(workload.correct)


def load_image(sim: NativeSim, workload: Workload):
    """Load the workload's initial memory image into ``sim`` (a fresh model, before cycle 0)."""
    for name, first, values in workload.memory:
        sim.load_memory(sim.element_index(name), values, first)


_GOLDEN: dict[tuple, GoldenRun] = {}


def golden_run(build_: Build, workload: Workload, interval: int | None = None) -> GoldenRun:
    """The process-wide cached :class:`GoldenRun` of ``workload`` on ``build_`` (see :func:`sim.build.build`)."""
    key = (build_.key, str(build_.directory), workload.key, interval)
    if key not in _GOLDEN:
        _GOLDEN[key] = GoldenRun(build_, workload, interval)
    return _GOLDEN[key]


class ReferenceRun:
    """Golden traces for the reference path: full output trace and final state bytes from a plain replay.

    For workloads with a memory image, regions, a completion port or detection ports (see
    :mod:`faultinj.workload`) it applies the same rules as the fast engine, from a plain replay that samples the
    ports cycle by cycle past the stimulus (no snapshots, digests or early stop).
    """

    def __init__(self, build_: Build, workload: Workload):
        self.build = build_
        self.workload = workload
        self._correct = correction_ports(workload)
        self._ports = list(dict.fromkeys([*workload.outputs, *workload.detect, *self._correct]))
        with NativeSim(build_) as sim:
            load_image(sim, workload)
            self.outputs = sim.run_stimulus(workload.inputs, self._ports)
            self.state = sim.state_bytes()
            self.memory = self._regions(sim)
            if any(self.outputs[d].any() for d in (*workload.detect, *self._correct)):
                raise RampartError(f"workload {workload.name}: a detection port is high in the fault-free run")
            if any(sim.peek(d) for d in workload.detect):
                raise RampartError(f"workload {workload.name}: a detection port is high at the end of the fault-free "
                                   "run")
            if workload.complete is not None and not sim.peek(workload.complete):
                raise RampartError(f"workload {workload.name}: {workload.complete} is not high at the end")

    def _regions(self, sim: NativeSim) -> list[np.ndarray]:
        return [sim.read_memory(sim.element_index(name), first, count) for name, first, count in self.workload.regions]

    def outcome(self, site: int, cycle: int, upset: int = 1) -> Outcome:
        """Outcome of one ``upset``-bit upset, by full replay on a fresh model (no snapshots, digests or early
        stop); the bits are flipped one by one with :meth:`~sim.harness.NativeSim.flip_upset`."""
        wl = self.workload
        check_upset(upset)
        if not 0 <= cycle < wl.cycles:
            raise RampartError(f"injection cycle out of range (0..{wl.cycles - 1})")
        region_outcomes, region_at, _ = wl.region_checks()
        with NativeSim(self.build) as sim:
            load_image(sim, wl)
            before = sim.run_stimulus({k: v[:cycle] for k, v in wl.inputs.items()}, self._ports)
            sim.flip_upset(int(site), upset)
            # regions checked before the end are read at the start of their cycle
            pieces, pos, first_region = [], cycle, (wl.cycles, None)
            for at in sorted({a for a in region_at if cycle <= a < wl.cycles}):
                pieces.append(sim.run_stimulus({k: v[pos:at] for k, v in wl.inputs.items()}, self._ports))
                pos = at
                for k, (name, first, count) in enumerate(wl.regions):
                    if region_at[k] == at and first_region[1] is None and not np.array_equal(
                            sim.read_memory(sim.element_index(name), first, count), self.memory[k]):
                        first_region = (at, Outcome(region_outcomes[k]))
            pieces.append(sim.run_stimulus({k: v[pos:] for k, v in wl.inputs.items()}, self._ports))
            after = {p: np.concatenate([piece[p] for piece in pieces]) for p in self._ports}
            corrected = any(np.concatenate([before[p], after[p]]).any() for p in self._correct)
            observe = np.ones(wl.cycles, dtype=bool) if wl.observe is None else np.asarray(wl.observe, dtype=bool)
            first_sdc = first_det = wl.cycles
            for name in wl.outputs:
                trace = np.concatenate([before[name], after[name]])
                bad = np.flatnonzero((trace != self.outputs[name]).any(axis=1) & observe)
                if len(bad):
                    first_sdc = min(first_sdc, int(bad[0]))
            for name in wl.detect:
                high = np.flatnonzero(np.concatenate([before[name], after[name]]).any(axis=1))
                if len(high):
                    first_det = min(first_det, int(high[0]))
            if first_region[0] < wl.cycles and first_region[0] <= min(first_det, first_sdc):
                return first_region[1]      # at the start of its cycle, before that cycle's detection or outputs
            if first_det < wl.cycles and first_det <= first_sdc:
                return Outcome.DETECTED_UNRECOVERABLE
            if first_sdc < wl.cycles:
                return Outcome.SDC
            if wl.complete is not None:
                # Past the stimulus: inputs held (the port values run_stimulus left), one cycle at a time.
                c = wl.cycles
                while True:
                    if c >= wl.watchdog_cycles:
                        return Outcome.HANG
                    if any(sim.peek(d) for d in wl.detect):
                        return Outcome.DETECTED_UNRECOVERABLE
                    corrected = corrected or any(sim.peek(p) for p in self._correct)
                    if sim.peek(wl.complete):
                        break
                    sim.step(1)
                    c += 1
            memory = self._regions(sim)
            state = sim.state_bytes()
        for k, (a, b) in enumerate(zip(memory, self.memory, strict=True)):
            if region_at[k] >= wl.cycles and not np.array_equal(a, b):
                return Outcome(region_outcomes[k])
        if corrected:
            return Outcome.DETECTED_RECOVERABLE
        return Outcome.MASKED if state == self.state else Outcome.LATENT


def reference_outcome(build_: Build, workload: Workload, site: int, cycle: int, upset: int = 1) -> Outcome:
    """One-off :meth:`ReferenceRun.outcome` (recomputes the golden traces; use :class:`ReferenceRun` for many)."""
    return ReferenceRun(build_, workload).outcome(site, cycle, upset)


def cocotb_reference_outcomes(build_: Build, workload: Workload, sites, cycles, *,
                              simulator: str = "icarus") -> tuple[np.ndarray, float]:
    """Outcomes of faults from the cocotb reference path (:mod:`faultinj.cocotb_reference`) and its wall time.

    Independent of the native harness: cocotb drives the same Verilog, restores the power-on state and the memory
    image and replays from cycle 0 per fault, flips through the simulator's handles and compares outputs, memory
    regions and the final state itself. Icarus by default: through cocotb's VPI, Verilator silently drops a deposit
    into a register that is also a top-level output port (e.g. the MAC array's ``out``), so that path cannot flip
    every site; Icarus can, and is a second simulator.
    """
    from faultinj.cocotb_reference import reference_outcomes

    return reference_outcomes(build_, workload, sites, cycles, simulator=simulator)
