"""The shape of the code: layers, module sizes, and no import cycle (typing-only imports included)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("visionaudit", "plugins", "fixtures")
MAX_LINES = 420  # "about 400": one concern per module, readable in one sitting


# The core's layers, bottom to top (../shared/DESIGN.md): a module imports only from its own layer or
# those below. A layer is a list of module prefixes; the first layer whose prefix fits a module is its.
LAYERS = (
    ("base",
     ("visionaudit.errors", "visionaudit.exit_codes", "visionaudit.files", "visionaudit.devices", "visionaudit.formatting",
              "visionaudit.progress", "visionaudit.stats", "visionaudit.error_consistency", "visionaudit.preprocessing",
              "visionaudit.version", "visionaudit.selection")),
    ("data", ("visionaudit.data",)),
    ("models", ("visionaudit.models",)),
    ("families", ("visionaudit.families",)),
    ("config", ("visionaudit.config",)),
    ("report", ("visionaudit.report",)),
    ("html", ("visionaudit.html",)),
    ("top", ("visionaudit.cli", "visionaudit.__main__", "visionaudit")),
)


def _modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module ``name`` imports, anywhere in the file: top level, functions, TYPE_CHECKING blocks."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import module" depends on the module; "from pkg import name" on pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            # the longest known module the import names (a "from pkg import module" names the module)
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = _modules(root)
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of the core that points up the layers: ``a (layer) -> b (higher layer)``."""
    out = []
    for name in sorted(graph):
        if not name.startswith("visionaudit"):
            continue
        for dep in sorted(d for d in graph[name] if d.startswith("visionaudit")):
            if layer_of(dep) > layer_of(name):
                out.append(f"{name} ({LAYERS[layer_of(name)][0]}) -> {dep} ({LAYERS[layer_of(dep)][0]})")
    return out


def test_layers_only_import_downwards():
    assert upward_imports(import_graph()) == []


def test_the_layer_check_fails_on_a_planted_upward_import(tmp_path):
    """A copy of the tree with one data module importing the report: the check names that import."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    planted = tmp_path / "visionaudit" / "data" / "decoding.py"
    planted.write_text(planted.read_text() + "\nfrom visionaudit.report.assembly import verdict  # planted\n")
    assert upward_imports(import_graph(tmp_path)) == [
        "visionaudit.data.decoding (data) -> visionaudit.report.assembly (report)"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = import_graph()
    assert "visionaudit.models.loading" in graph["visionaudit.models.inference"]  # typing and runtime imports both seen
    assert "visionaudit.data.image_sets" in graph["visionaudit.models.inference"]  # under TYPE_CHECKING only


def test_core_imports_no_pytest():
    for name, path in _modules().items():
        if name.startswith("visionaudit"):
            tree = ast.parse(path.read_text())
            names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert "pytest" not in names and "_pytest" not in names, name


def test_core_does_not_import_the_pytest_side():
    for name, deps in import_graph().items():
        if name.startswith("visionaudit"):
            assert not {d for d in deps if d.split(".")[0] in ("plugins", "fixtures")}, name


def test_no_module_is_too_long():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


# -- audits/ import only public names of visionaudit --------------------------------------------------
# Public: a name listed in ``visionaudit.__all__`` (imported from ``visionaudit``), or a name without a
# leading underscore of a family's own module, ``visionaudit.families.<family>`` (the module a built-in family
# is registered from). Anything deeper (``visionaudit.data...``, a family's inner modules) is machinery an
# audit reaches through its family; the pytest side (plugins, fixtures) reaches audits as fixtures.


def _public_names() -> dict[str, set[str] | None]:
    """Module -> the names an audit may import from it (None: any name without a leading underscore)."""
    import visionaudit
    from visionaudit.families import BUILTIN_MODULES

    return {"visionaudit": set(visionaudit.__all__), **{m: None for m in BUILTIN_MODULES}}


def non_public_imports(root: Path = ROOT) -> list[str]:
    """Every import in ``root/audits`` of a project module or name that is not public (see above)."""
    import importlib

    allowed = _public_names()
    project = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()} | set(PACKAGES) | {"visionaudit"}
    out = []
    for path in sorted((root / "audits").glob("*.py")):
        where = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out += [f"{where}: import {a.name}" for a in node.names
                        if a.name.split(".")[0] in project and a.name != "visionaudit"]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level or module.split(".")[0] not in project:
                    if node.level:
                        out.append(f"{where}: a relative import")
                    continue
                if module not in allowed:
                    out.append(f"{where}: from {module} import {', '.join(a.name for a in node.names)}")
                    continue
                names = allowed[module]
                for a in node.names:
                    exists = a.name != "*" and hasattr(importlib.import_module(module), a.name)
                    public = (names is None and not a.name.startswith("_")) or (names is not None and a.name in names)
                    if not (exists and public):
                        out.append(f"{where}: from {module} import {a.name}")
    return out


def test_audits_import_only_public_names():
    assert non_public_imports() == []


def test_the_audit_import_check_names_a_private_import(tmp_path):
    for package in (*PACKAGES, "audits"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    planted = tmp_path / "audits" / "test_accuracy.py"
    planted.write_text(planted.read_text() + "\nfrom visionaudit.data.imagenet16 import decide\n"
                       "from visionaudit.families.shape_bias import _record_geometry\nfrom fixtures.recording import assess\n"
                       "from visionaudit import top1_accuracy, Family\n")
    assert non_public_imports(tmp_path) == [
        "audits/test_accuracy.py: from visionaudit.data.imagenet16 import decide",
        "audits/test_accuracy.py: from visionaudit.families.shape_bias import _record_geometry",
        "audits/test_accuracy.py: from fixtures.recording import assess",
    ]
