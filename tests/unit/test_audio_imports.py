"""The audio transform modules import each other in one direction only (issue 20: the librosa and
torchaudio backends imported each other); lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import mmfs.transforms.audio

PACKAGE = Path(mmfs.transforms.audio.__file__).parent
PREFIX = "mmfs.transforms.audio."


def _audio_imports(path: Path) -> set[str]:
    """The mmfs.transforms.audio.* modules a file imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PREFIX):
                found.add(node.module.rsplit(".", 1)[1])
            elif node.module == PREFIX.rstrip("."):
                found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith(PREFIX)}
    return found


def test_audio_modules_have_no_import_cycle() -> None:
    graph = {p.stem: _audio_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert {"librosa_backend", "torch_backend", "spec", "frames", "windows"} <= graph.keys()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for module in graph:
        visit(module, ())
    assert "torch_backend" not in graph["librosa_backend"]
    assert "librosa_backend" not in graph["torch_backend"]
    assert "spec" in graph["frames"] or "spec" in graph["librosa_backend"]
