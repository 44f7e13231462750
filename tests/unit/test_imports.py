"""Import rules: one-way dependencies between sub-packages, and a light `import mmfs`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mmfs"
# What each sub-package may import from mmfs (docs/design.md: schemas <- transforms <- encoders <-
# stages <- runners <- pipelines (the run driver) -> store <- web <- cli).
ALLOWED = {
    "schemas": {"schemas", "errors"},
    "transforms": {"schemas", "transforms", "media", "errors", "config", "light_imports"},
    "encoders": {"schemas", "transforms", "encoders", "errors", "config", "__init__"},
    "store": {"schemas", "store", "errors", "light_imports"},
    "media": {"media", "errors", "config"},
    "web": {"web", "store", "pipelines", "stages", "runners", "query", "report", "errors", "schemas"},
    # one file per stage, and the item types they share: no runner, no driver
    "stages": {
        *("stages", "schemas", "transforms", "encoders", "store", "media"),
        *("errors", "config", "faults", "__init__"),
    },
    # local, Ray and Beam: they map the stages onto threads, tasks and DoFns
    "runners": {
        "runners",
        "stages",
        "encoders",
        "store",
        "schemas",
        "errors",
        "config",
        "faults",
        "__init__",
    },
    # the run driver: discover, hash, plan, hand the rest to a runner, record the run
    "pipelines": {
        *("pipelines", "stages", "runners", "schemas", "transforms", "encoders", "store", "media"),
        *("errors", "config", "faults", "__init__"),
    },
    # training tools that read the store (fusion projection, sound head)
    "training": {"training", "stages", "store", "schemas", "transforms", "encoders", "errors", "config"},
    # operations around runs (watch, metrics, lineage): above pipelines and store, below the CLI
    "ops": {"ops", "pipelines", "runners", "store", "encoders", "config", "errors", "__init__"},
}
# Single-module layers: the command line sits on top; nothing below imports it.
ALLOWED_FILES = {
    "cli.py": {
        *("config", "demo", "errors", "ops", "pipelines", "stages", "runners", "training", "query"),
        *("report", "store", "transforms", "web"),
    },
    "query.py": {"encoders", "errors", "store", "transforms"},
    "report.py": {"errors", "pipelines", "store"},
    "config.py": {"encoders", "errors"},
    "errors.py": set(),
    "faults.py": set(),
    "demo.py": set(),
    "light_imports.py": set(),  # how third-party packages are imported; imports nothing of mmfs
}


def _mmfs_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmfs"):
            parts = node.module.split(".")
            found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mmfs":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def test_import_direction() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), f"sub-packages without import rules: {packages - set(ALLOWED)}"
    modules = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert modules <= set(ALLOWED_FILES), f"top-level modules without rules: {modules - set(ALLOWED_FILES)}"
    bad = []
    for package, allowed in ALLOWED.items():
        for path in (PACKAGE / package).glob("*.py"):
            for target in _mmfs_imports(path) - allowed:
                bad.append(f"{path.relative_to(PACKAGE)} imports mmfs.{target}")
    for name, allowed in ALLOWED_FILES.items():
        for target in _mmfs_imports(PACKAGE / name) - allowed:
            bad.append(f"{name} imports mmfs.{target}")
    assert bad == []


def test_import_mmfs_and_cli_stay_light() -> None:
    code = (
        "import sys, mmfs, mmfs.cli, mmfs.schemas, mmfs.encoders;"
        "heavy = {'torch', 'cv2', 'decord', 'librosa', 'spacy', 'lancedb'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_decode_worker_does_not_import_the_store() -> None:
    """Isolated decoders start per item after a crash: the store's libraries would cost every restart."""
    code = (
        "import sys, mmfs.stages.decode_pool;print(sorted({'lancedb', 'lance', 'duckdb'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def _module_graph() -> dict[str, set[str]]:
    """mmfs module -> the mmfs modules it imports at run time (function-level imports included,
    `if TYPE_CHECKING:` blocks left out: they never run)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        found = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmfs"):
                for candidate in [f"{node.module}.{a.name}" for a in node.names] + [node.module]:
                    if candidate in modules:
                        found.add(candidate)
                        break
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
        graph[name] = found - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert _cycles(_module_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_imports() -> None:
    """Each module imports on its own in a fresh interpreter (pipelines, runners and cli included)."""
    names = sorted(_module_graph())
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(sys.modules) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
