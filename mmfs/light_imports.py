"""Import third-party packages without the parts of them mmfs never uses, for start-up time and memory.

Two libraries cost a run seconds of CPU for code it does not call:
- `lance_namespace_urllib3_client`'s package `__init__` imports every REST API module, each building
  pydantic validators at import (0.5 s); LanceDB only needs its `models` for local stores.
  `package_without_init` registers such a package so its submodules import alone.
- `import nltk` imports scikit-learn and scipy.stats for classifiers and association measures mmfs
  does not use (1 s and ~190 MB); NLTK guards those imports itself. `imported_without` hides them
  from that one package's import.
- `import spacy` imports torch through thinc (1.5 s and ~500 MB) whether or not the pipeline has a
  torch layer; `import_spacy` hides it from thinc when the pipeline's own files name none.

Both keep the library whole: the first use of anything skipped runs the skipped code then.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

_LOCK = threading.RLock()


def package_without_init(name: str) -> ModuleType | None:
    """Register package `name` with its `__init__` not yet run, so `name.sub` imports only `sub`.

    The first attribute of the package that is neither a submodule nor already set imports the package
    whole (its real `__init__`, through `importlib`, under Python's own module lock: no lock of ours is
    held around an import), and the registered module hands that attribute, and every later one, on
    from the whole package. Does nothing (returns the module, or None if not installed) when the package
    is already imported.
    """
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return None
        module = importlib.util.module_from_spec(spec)

        def __getattr__(attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(f"module {name!r} has no attribute {attr!r}")
            if importlib.util.find_spec(f"{name}.{attr}") is not None:  # `from name import sub`
                return importlib.import_module(f"{name}.{attr}")
            with _LOCK:  # only the swap is under our lock; the import below is not
                if sys.modules.get(name) is module:
                    del sys.modules[name]
            whole = importlib.import_module(name)  # the real __init__; its submodules are imported already
            if whole is module:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}")
            _bind_submodules(whole)
            return getattr(whole, attr)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        sys.modules[name] = module
        return module


def _bind_submodules(package: ModuleType) -> None:
    """Set on `package` the submodules imported before it: the import system binds a child only then."""
    prefix = package.__name__ + "."
    for full, child in list(sys.modules.items()):
        short = full[len(prefix) :]
        if full.startswith(prefix) and "." not in short and child is not None and not hasattr(package, short):
            setattr(package, short, child)


class _HideFrom(importlib.abc.MetaPathFinder):
    """Fails imports of `hidden` packages made by modules of `importer` (and only those)."""

    def __init__(self, importer: str, hidden: Sequence[str]) -> None:
        self.importer = importer
        self.hidden = tuple(hidden)

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        hidden = any(fullname == h or fullname.startswith(h + ".") for h in self.hidden)
        if hidden and _imported_by(self.importer):
            raise ImportError(f"{fullname} is not imported for {self.importer} (mmfs.light_imports)")
        return None


def _imported_by(package: str) -> bool:
    """Whether the module running the current import statement belongs to `package`."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        machinery = frame.f_code.co_filename.startswith("<frozen importlib") or module == __name__
        if not (machinery or module == "importlib" or module.startswith("importlib.")):
            return module == package or module.startswith(package + ".")
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextlib.contextmanager
def _hidden_from(importer: str, hidden: Sequence[str]) -> Iterator[None]:
    finder = _HideFrom(importer, hidden)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def imported_without(name: str, hidden: Sequence[str]) -> ModuleType:
    """Import package `name` with the optional packages `hidden` failing to import for its modules only.

    Meant for packages that guard those imports with `try/except ImportError` (NLTK does); other
    threads importing the hidden packages at the same moment are not affected. A package already
    imported is returned as it is.
    """
    if name in sys.modules:  # no lock of ours around an import: Python's module locks serialise it
        return sys.modules[name]
    with _hidden_from(name, hidden):
        return importlib.import_module(name)


def import_nltk() -> ModuleType:
    """NLTK, without the scikit-learn and scipy it imports for classifiers and statistics mmfs never uses."""
    return imported_without("nltk", ("sklearn", "scipy"))


# what a spaCy pipeline with a torch layer names in its config.cfg or meta.json requirements
_TORCH_PIPELINE_MARKS = ("torch", "transformer")


def spacy_pipeline_needs_torch(model: str) -> bool:
    """Whether the installed spaCy pipeline `model` (package name or folder) may run a torch layer.

    Read from its config.cfg and meta.json without importing spaCy; a pipeline that cannot be found
    that way counts as needing torch, so nothing is hidden from it.
    """
    folder = Path(model)
    if not folder.is_dir():
        spec = importlib.util.find_spec(model) if model.isidentifier() else None
        if spec is None or not spec.submodule_search_locations:
            return True
        folder = Path(next(iter(spec.submodule_search_locations)))
    texts = [p.read_text(encoding="utf-8", errors="replace").lower() for p in _pipeline_files(folder)]
    return not texts or any(mark in text for text in texts for mark in _TORCH_PIPELINE_MARKS)


def _pipeline_files(folder: Path) -> list[Path]:
    """config.cfg and meta.json of a pipeline folder or of the versioned folder inside its package."""
    found = [p for p in (folder / "config.cfg", folder / "meta.json") if p.is_file()]
    for inner in folder.iterdir():
        if inner.is_dir():
            found += [p for p in (inner / "config.cfg", inner / "meta.json") if p.is_file()]
    return found


def import_spacy(model: str) -> ModuleType:
    """spaCy, with torch hidden from thinc when the pipeline `model` has no torch layer (see above).

    thinc then records that it has no torch for the rest of the process; a process that later loads a
    transformer pipeline would need torch visible, which is why the pipeline's files decide.
    """
    if "thinc" not in sys.modules and "torch" not in sys.modules and not spacy_pipeline_needs_torch(model):
        imported_without("thinc", ("torch",))
    return importlib.import_module("spacy")
