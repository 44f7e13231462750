"""The audio transform modules import each other in one direction only (issue 20: audio_features and
audio_torch imported each other); lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import mmfs.transforms

PACKAGE = Path(mmfs.transforms.__file__).parent


def _audio_imports(path: Path) -> set[str]:
    """The mmfs.transforms.audio* modules a file imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("mmfs.transforms.audio")
        ):
            found.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith("mmfs.transforms.audio")
            }
    return found


def test_audio_modules_have_no_import_cycle() -> None:
    graph = {p.stem: _audio_imports(p) for p in PACKAGE.glob("audio*.py")}
    assert {"audio_features", "audio_torch", "audio_spec", "audio_frames"} <= graph.keys()
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
    assert "audio_torch" not in graph["audio_features"] and "audio_features" not in graph["audio_torch"]
