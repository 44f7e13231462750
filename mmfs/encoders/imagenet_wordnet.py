"""The WordNet description of each ImageNet-1k class: lemmas, hypernym path and gloss (the bridge's words).

ImageNet classes are WordNet 3.0 noun synsets, listed in increasing offset order. torchvision ships
only each class's first lemma, so the synset is recovered from WordNet: among the noun synsets of that
lemma, the one whose offset keeps the list increasing (the most frequent sense when several can).
Reading WordNet takes a minute here, so the result is built once (`python -m
mmfs.encoders.imagenet_wordnet`, needs the NLTK WordNet of `make nltk-data`) and shipped as
`data/imagenet_wordnet.json`; the pipeline only reads that file.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

DATA_FILE = "imagenet_wordnet.json"
GENERIC = {"entity", "physical_entity", "abstraction", "object", "whole", "matter", "thing", "causal_agent"}


@dataclass(frozen=True)
class ClassWords:
    """One ImageNet class in words: its lemmas, its ancestors (nearest first) and its gloss."""

    name: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[str, ...]
    gloss: str

    def text(self) -> str:
        """What the text encoder embeds for this class: names, then 'a kind of ...', then the gloss."""
        names = ", ".join(dict.fromkeys((self.name, *self.lemmas)))
        kinds = ", ".join(self.hypernyms[:5])
        parts = [names, f"a kind of {kinds}" if kinds else "", self.gloss]
        return "; ".join(p for p in parts if p)


@functools.lru_cache(maxsize=1)
def class_words() -> tuple[ClassWords, ...]:
    """The 1000 classes in ImageNet order, read from the shipped file."""
    raw = json.loads((files("mmfs.encoders") / "data" / DATA_FILE).read_text(encoding="utf-8"))
    return tuple(ClassWords(r["name"], tuple(r["lemmas"]), tuple(r["hypernyms"]), r["gloss"]) for r in raw)


def _candidates(wn: Any, name: str) -> list[tuple[int, int, Any]]:
    """(offset, sense rank, synset) of every noun synset that has `name` as a lemma.

    torchvision renamed the two duplicate names ("crane bird", "maillot tank suit"): their words are
    then tried one part at a time.
    """
    synsets = wn.synsets(name.replace(" ", "_"), pos="n")
    words = name.split()
    for cut in range(1, len(words)) if not synsets else ():
        synsets = synsets or [
            *wn.synsets("_".join(words[:cut]), pos="n"),
            *wn.synsets("_".join(words[cut:]), pos="n"),
        ]
    return sorted((s.offset(), rank, s) for rank, s in enumerate(synsets))


def resolve(wn: Any, names: tuple[str, ...]) -> list[Any]:
    """One synset (or None) per class name, offsets increasing, the most frequent sense when free."""
    cands = [_candidates(wn, n) for n in names]
    upper: list[float] = [float("inf")] * len(names)
    bound = float("inf")
    for i in range(len(names) - 1, -1, -1):  # the largest offset each class may take
        below = [c[0] for c in cands[i] if c[0] < bound]
        upper[i] = max(below) if below else bound
        bound = upper[i] if below else bound
    chosen: list[Any] = []
    prev = -1
    for i, options in enumerate(cands):
        fits = [c for c in options if prev < c[0] <= upper[i]]
        if not fits:
            chosen.append(None)
            continue
        best = min(fits, key=lambda c: c[1])
        chosen.append(best[2])
        prev = best[0]
    return chosen


def _describe(name: str, synset: Any) -> dict[str, Any]:
    """The JSON record of one class."""
    if synset is None:
        return {"name": name, "lemmas": [], "hypernyms": [], "gloss": ""}
    lemmas = [lemma.replace("_", " ") for lemma in synset.lemma_names()]
    path = max(synset.hypernym_paths(), key=len)[:-1]  # root first, the synset itself dropped
    ancestors = [s.lemma_names()[0].replace("_", " ") for s in reversed(path)]
    return {
        "name": name,
        "lemmas": lemmas,
        "hypernyms": [a for a in ancestors if a.replace(" ", "_") not in GENERIC],
        "gloss": synset.definition(),
        "wnid": f"n{synset.offset():08d}",
    }


def build(out: Path) -> int:
    """Write the classes' words from NLTK's WordNet; the number of classes without a synset."""
    from nltk.corpus import wordnet as wn

    from mmfs.encoders.image_efficientnet import imagenet_categories

    names = imagenet_categories()
    records = [_describe(n, s) for n, s in zip(names, resolve(wn, names), strict=True)]
    out.write_text(json.dumps(records, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    return sum(1 for r in records if not r["gloss"])


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / DATA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"{build(target)} classes without a WordNet synset; wrote {target}")
