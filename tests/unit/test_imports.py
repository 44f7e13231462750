"""Import rules: one-way dependencies between sub-packages, and a light `import mmfs`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mmfs"
# What each sub-package may import from mmfs
# (DESIGN.md: schemas <- transforms <- encoders <- pipelines -> store <- cli).
ALLOWED = {
    "schemas": {"schemas", "errors"},
    "transforms": {"schemas", "transforms", "media", "errors", "config"},
    "encoders": {"schemas", "transforms", "encoders", "errors", "config", "__init__"},
    "store": {"schemas", "store", "errors"},
    "media": {"media", "errors", "config"},
    "web": {"web", "store", "pipelines", "report", "errors", "schemas"},
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
    bad = []
    for package, allowed in ALLOWED.items():
        for path in (PACKAGE / package).glob("*.py"):
            for target in _mmfs_imports(path) - allowed:
                bad.append(f"{path.relative_to(PACKAGE)} imports mmfs.{target}")
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
        "import sys, mmfs.pipelines.isolate;print(sorted({'lancedb', 'lance', 'duckdb'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
