"""Imports point down the pipeline: no top-level package imports one above it, and no import cycles between them.

Order, lowest first: ``base < models < rtl < sim < drivers < faultinj < reports < rampart``. A package may import
itself and the packages below it, so ``models`` (golden models and workload generators) imports only ``base``.

Every ``.py`` file of those packages is parsed with :mod:`ast` (nothing is imported or run) and every import
statement counts: module level, inside functions and methods, under ``if TYPE_CHECKING:``; relative imports are
resolved against the file's package.

Not imports: the ``"module:attribute"`` strings in the ``rtl`` descriptors (``workloads``, ``golden``, ``driver``,
``board_adapter``, ``system_model``, e.g. ``"faultinj.workloads.npu:npu_conv"``) are lazy plug-in references that
:func:`rtl.designs.resolve` turns into objects only when a caller above asks for them, as packaging entry points
work; the layer checks read import statements only, so such references do not count
(:func:`test_descriptor_references_resolve` checks that they name code that exists).
"""
import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("base", "models", "rtl", "sim", "drivers", "faultinj", "reports", "rampart")
RANK = {name: i for i, name in enumerate(LAYERS)}


def module_of(path: Path, root: Path = ROOT) -> tuple[str, bool]:
    """(dotted module name, whether it is a package's ``__init__``) of a file under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of every import statement anywhere in ``source``, the code of ``module``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((node.lineno, target))
    return found


def package_imports(root: Path = ROOT, layers=LAYERS) -> dict[tuple[str, str], list[str]]:
    """{(importing package, imported package): ["file:line imports module", ...]} over ``layers``' files,
    for imports of another package of ``layers``."""
    edges = defaultdict(list)
    for package in layers:
        for path in sorted((root / package).rglob("*.py")):
            module, is_package = module_of(path, root)
            for line, target in imported_modules(path.read_text(encoding="utf-8"), module, is_package):
                top = target.split(".")[0]
                if top in layers and top != package:
                    edges[(package, top)].append(f"{path.relative_to(root)}:{line} imports {target}")
    return dict(edges)


def upward_imports(edges) -> list[str]:
    """Every import of a package above the importing one."""
    return [where for (src, dst), places in sorted(edges.items()) if RANK[dst] > RANK[src] for where in places]


def find_cycle(edges) -> list[str] | None:
    """One cycle of the package graph (``[a, b, ..., a]``), or None."""
    graph = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    state: dict[str, int] = {}      # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_layer_is_scanned():
    for package in LAYERS:
        assert (ROOT / package / "__init__.py").is_file(), package
    edges = package_imports()
    # A few imports that exist on purpose, so a scanner that silently sees nothing fails here.
    assert ("drivers", "sim") in edges and ("faultinj", "drivers") in edges and ("rampart", "faultinj") in edges
    assert ("rtl", "models") in edges and ("models", "base") in edges


def test_no_package_imports_a_package_above_it():
    bad = upward_imports(package_imports())
    assert not bad, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(bad)


def test_no_import_cycles_between_packages():
    cycle = find_cycle(package_imports())
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle)


def test_checks_see_late_relative_and_upward_imports(tmp_path):
    """The checks themselves: an import inside a function, a relative one, and each kind of violation."""
    (tmp_path / "models" / "npu").mkdir(parents=True)
    (tmp_path / "sim").mkdir()
    for init in ("models/__init__.py", "models/npu/__init__.py", "sim/__init__.py"):
        (tmp_path / init).write_text("")
    (tmp_path / "models" / "npu" / "run.py").write_text(
        "from . import vela\nfrom ..snn import golden\n\ndef run():\n    from sim.harness import NativeSim\n")
    (tmp_path / "sim" / "build.py").write_text("import models.npu.vela as v\n")
    assert imported_modules("def f():\n    import a.b\n", "x.y") == [(2, "a.b")]
    edges = package_imports(tmp_path, ("models", "sim"))
    assert edges == {("models", "sim"): ["models/npu/run.py:5 imports sim.harness"],
                     ("sim", "models"): ["sim/build.py:1 imports models.npu.vela"]}
    assert upward_imports(edges) == ["models/npu/run.py:5 imports sim.harness"]
    assert find_cycle(edges) in (["models", "sim", "models"], ["sim", "models", "sim"])
    assert find_cycle({("models", "base"): [], ("sim", "models"): []}) is None


def test_descriptor_references_resolve():
    """The lazy references of every descriptor name code that exists (a moved module would leave them stale)."""
    from rtl.designs import designs, get_design, resolve

    for name in designs():
        d = get_design(name)
        for ref in (d.driver, d.golden, d.board_adapter, d.system_model, *d.workloads.values()):
            if ref is not None:
                assert callable(resolve(ref)), (name, ref)
