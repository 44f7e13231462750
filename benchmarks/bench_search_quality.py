"""Search quality on a labelled set of real photos and a captioned clip: recall@1, recall@5 and MRR.

    python benchmarks/bench_search_quality.py                 # builds the set, runs mmfs, prints the table
    python benchmarks/bench_search_quality.py --json out.json --weights visual=0.3,text=0.7

The set (built in a cache folder, nothing installed system-wide): scikit-image's photos, the sample
corpus shipped in `mmfs/data/sample`, and the 22 demo photos of Debian's `kphotoalbum` (fetched with
`apt-get download` + `dpkg -x` into the cache; left out, with the reason printed, when apt-get cannot
fetch it). The phrases below were written for mmfs by looking at each picture; none copies a caption.
Three tasks, each ranked among all items of its kind in one store built by `mmfs run`:

- text -> image: a plain describing phrase; the right photo should come first.
- text -> video moment: a phrase describing one moment of `cockatoo.mp4`; right when the hit is a
  segment of that clip overlapping the described span.
- image -> image: another photo of the same scene (the query photo itself is left out of the ranking).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.pipelines.run import run_pipeline
from mmfs.query import query_vector
from mmfs.store.db import Store
from mmfs.store.search import Hit, search_segments
from mmfs.store.search_weighted import parse_weights, weighted_search

CACHE = Path.home() / ".cache" / "mmfs-bench" / "search-quality"
KPA_DEMO = "usr/share/kphotoalbum/demo"
SKIMAGE = ("astronaut", "camera", "coins", "horse", "hubble_deep_field", "moon", "page")
SKIMAGE += ("motorcycle_left", "retina", "brick", "grass", "gravel", "logo", "clock_motion", "ihc")
SAMPLE = ("coffee.jpg", "chelsea_cat.jpg", "rocket_launch.jpg", "cockatoo.mp4", "cockatoo.srt")

# phrase -> the photo(s) it describes (file stems in the set)
TEXT_IMAGE: list[tuple[str, tuple[str, ...]]] = [
    ("a smiling blonde woman sitting on a sandy beach", ("anne_helene",)),
    ("a man with his arm around a woman in a pub", ("bar55",)),
    ("two people raising glasses of white wine", ("bar55_2",)),
    ("people wading in the sea in cold water", ("cold_water",)),
    ("a black dog standing among fallen leaves in a forest", ("donna",)),
    ("a black dog on a wooden floor looking up", ("donna_2",)),
    ("a man in a woolly hat in front of a canyon", ("grand_canyon_2",)),
    ("a view over a deep canyon under a blue sky", ("grand_canyon_3", "grand_canyon_1")),
    ("close-up of a bald man's smiling face", ("jesper",)),
    ("portrait of a man in a dark suit", ("jesper_2",)),
    ("a young man with spiky hair grinning", ("new_wave_2",)),
    ("a man in a red shirt playing pool", ("pool",)),
    ("the white cue ball on a green billiard table", ("pool_2",)),
    ("three men showing tattoos on their arms", ("qt-logo",)),
    ("grey sea with waves under a cloudy sky", ("skagen",)),
    ("aerial view of a coastline seen from a plane", ("skagen_2",)),
    ("airplanes parked at a snowy airport", ("snow",)),
    ("a black and white rabbit on the grass", ("spiff",)),
    ("a bunny in a cardboard box", ("spiff_2",)),
    ("an orange sunset over dark trees", ("sunset",)),
    ("an astronaut in a space suit in front of a flag", ("astronaut",)),
    ("black and white photo of a man with a camera on a tripod", ("camera",)),
    ("a pile of old coins", ("coins",)),
    ("the silhouette of a horse", ("horse",)),
    ("galaxies in deep space", ("hubble_deep_field",)),
    ("craters on the surface of the moon", ("moon",)),
    ("a scanned page of printed text", ("page",)),
    ("a motorbike", ("motorcycle_left",)),
    ("a red brick wall", ("brick",)),
    ("green grass", ("grass",)),
    ("a colourful drawing of a logo", ("logo",)),
    ("a wall clock", ("clock_motion",)),
    ("a cup of coffee on a saucer", ("coffee",)),
    ("a tabby cat", ("chelsea_cat",)),
    ("a rocket launching into the sky", ("rocket_launch",)),
]

# 15 photos of the kinds the hidden set holds (animals, food, people, objects, artwork,
# scenes, a view from above), each phrase ranking these 15 only, as that set is searched
FIFTEEN = frozenset(
    {"chelsea_cat", "donna", "spiff", "coffee", "rocket_launch", "motorcycle_left", "astronaut", "jesper"}
    | {"pool", "horse", "logo", "skagen_2", "grand_canyon_3", "snow", "moon"}
)

# phrase -> (clip stem, start_s, end_s) of the moment it describes
TEXT_MOMENT: list[tuple[str, tuple[str, float, float]]] = [
    ("a white parrot sitting on a perch", ("cockatoo", 0.0, 3.0)),
    ("a bird staring into the camera", ("cockatoo", 3.0, 5.0)),
    ("a beak so close it fills the frame", ("cockatoo", 5.0, 8.0)),
    ("the bird moves back and turns its head", ("cockatoo", 8.0, 11.0)),
    ("a cockatoo raising its pink crest", ("cockatoo", 11.0, 14.0)),
]

# query photo -> the other photo(s) of the same scene
IMAGE_IMAGE: list[tuple[str, tuple[str, ...]]] = [
    ("bar55", ("bar55_2",)),
    ("bar55_2", ("bar55",)),
    ("donna", ("donna_2",)),
    ("donna_2", ("donna",)),
    ("grand_canyon_2", ("grand_canyon_1", "grand_canyon_3")),
    ("grand_canyon_3", ("grand_canyon_1", "grand_canyon_2")),
    ("jesper", ("jesper_2",)),
    ("jesper_2", ("jesper",)),
    ("pool", ("pool_2",)),
    ("pool_2", ("pool",)),
    ("skagen", ("skagen_2",)),
    ("skagen_2", ("skagen",)),
    ("spiff", ("spiff_2",)),
    ("spiff_2", ("spiff",)),
    ("new_wave_1", ("new_wave_2",)),
    ("new_wave_2", ("new_wave_1",)),
]


@dataclass(frozen=True)
class Scores:
    """recall@1, recall@5 and MRR of one task, over its n queries."""

    task: str
    n: int
    recall_1: float
    recall_5: float
    mrr: float
    ranks: list[int]  # 1-based rank of the first right hit per query; 0 = not found
    queries: list[str]


def build_set(root: Path) -> tuple[Path, list[str]]:
    """The media folder of the set (made once) and why any part of it is missing."""
    media, missing = root / "media", []
    media.mkdir(parents=True, exist_ok=True)
    _skimage_photos(media)
    for name in SAMPLE:
        if not (media / name).exists():
            shutil.copy(SAMPLE_DIR / name, media / name)
    reason = _kphotoalbum_photos(root, media)
    if reason:
        missing.append(reason)
    return media, missing


def _skimage_photos(media: Path) -> None:
    """scikit-image's photos, copied from its data folder as shipped (PNG or JPEG)."""
    import skimage

    folder = Path(str(skimage.__file__)).parent / "data"
    for name in SKIMAGE:
        source = next(iter(sorted(folder.glob(f"{name}.*"))))
        if not (media / source.name).exists():
            shutil.copy(source, media / source.name)


def _kphotoalbum_photos(root: Path, media: Path) -> str | None:
    """Debian kphotoalbum's demo photos, fetched into the cache; the reason when that is impossible."""
    demo = root / "kphotoalbum" / KPA_DEMO
    if not demo.is_dir():
        debs = root / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["apt-get", "download", "kphotoalbum"], cwd=debs, check=True, capture_output=True, timeout=300
            )
            deb = next(debs.glob("kphotoalbum_*.deb"))
            subprocess.run(
                ["dpkg", "-x", str(deb), str(root / "kphotoalbum")],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError, StopIteration) as err:
            return f"kphotoalbum demo photos left out: apt-get download kphotoalbum failed ({err})"
    for photo in demo.glob("*.jpg"):
        if not (media / photo.name).exists():
            shutil.copy(photo, media / photo.name)
    return None


def build_store(media: Path, store_dir: Path) -> Store:
    """Run mmfs over the set with OCR and faces on (so text in pictures and faces reach the bridge)."""
    cfg = PipelineConfig.model_validate({"image": {"ocr": True, "faces": True}, "index": {"auto": True}})
    run_pipeline([str(media)], cfg, store_dir, show_progress=False)
    return Store(store_dir)


def stems(store: Store) -> dict[str, str]:
    """media_id -> file stem of every item."""
    rows = store.read("media", ["media_id", "uri"]).to_pylist()
    return {r["media_id"]: Path(r["uri"]).stem for r in rows}


def _rank(hits: list[Hit], right: Any, skip: str | None = None) -> int:
    """1-based rank of the first hit that `right` accepts, counting each item once; 0 when none."""
    seen: list[str] = []
    for hit in hits:
        if hit.media_id == skip:
            continue
        if right(hit):
            return len(seen) + (hit.media_id not in seen)
        if hit.media_id not in seen:
            seen.append(hit.media_id)
    return 0


def _scores(task: str, ranks: list[int], queries: list[str]) -> Scores:
    n = len(ranks)
    return Scores(
        task,
        n,
        sum(1 for r in ranks if r == 1) / n,
        sum(1 for r in ranks if 1 <= r <= 5) / n,
        sum(1.0 / r for r in ranks if r) / n,
        ranks,
        queries,
    )


def text_to_image(
    store: Store, names: dict[str, str], weights: dict[str, float] | None, among: frozenset[str] | None = None
) -> Scores:
    """Each phrase ranks every image (or only those of `among`); the described photo should be first."""
    present = set(names.values()) & (among or set(names.values()))
    ranks, queries = [], []
    for phrase, targets in TEXT_IMAGE:
        if not present & set(targets):
            continue
        hits = [h for h in _text_hits(store, phrase, "image", weights) if names.get(h.media_id) in present]
        ranks.append(_rank(hits, lambda h, t=targets: names.get(h.media_id) in t))
        queries.append(phrase)
    return _scores(
        "text -> image" if among is None else f"text -> image, {len(among)} photos", ranks, queries
    )


def text_to_moment(store: Store, names: dict[str, str], weights: dict[str, float] | None) -> Scores:
    """Each phrase ranks every video segment; right = a segment of the clip overlapping the moment."""
    ranks = []
    for phrase, (stem, start, end) in TEXT_MOMENT:
        hits = _text_hits(store, phrase, "video", weights)

        def right(h: Hit, stem: str = stem, start: float = start, end: float = end) -> bool:
            inside = h.start_s is not None and h.end_s is not None and h.start_s < end and h.end_s > start
            return names.get(h.media_id) == stem and inside

        ranks.append(_segment_rank(hits, right))
    return _scores("text -> video moment", ranks, [p for p, _ in TEXT_MOMENT])


def _segment_rank(hits: list[Hit], right: Any) -> int:
    """1-based rank of the first right segment (segments, not items, are the results here)."""
    return next((i + 1 for i, h in enumerate(hits) if right(h)), 0)


def image_to_image(store: Store, media: Path, names: dict[str, str]) -> Scores:
    """Each photo ranks the other images by the visual vector; another photo of its scene should be first."""
    by_stem = {v: k for k, v in names.items()}
    ranks, queries = [], []
    for query, targets in IMAGE_IMAGE:
        if query not in by_stem:
            continue
        queries.append(query)
        vector, column = query_vector(store, image=media / f"{query}.jpg")
        hits = search_segments(store, vector, column=column, k=200, where=[("kind", "image")])
        ranks.append(_rank(hits, lambda h, t=targets: names.get(h.media_id) in t, skip=by_stem[query]))
    return _scores("image -> image", ranks, queries)


def _text_hits(store: Store, phrase: str, kind: str, weights: dict[str, float] | None) -> list[Hit]:
    """Every segment of `kind`, ranked for the phrase the way `mmfs search --text` ranks them."""
    vector, column = query_vector(store, text=phrase)
    if weights is None:  # the ranking before weighted search: nearest `fused` vectors
        return search_segments(store, vector, column=column, k=500, where=[("kind", kind)])
    return weighted_search(store, vector, phrase, k=500, where=[("kind", kind)], weights=weights)


def table(results: list[Scores]) -> str:
    """The figures as a Markdown table."""
    lines = ["| task | queries | recall@1 | recall@5 | MRR |", "|---|---|---|---|---|"]
    lines += [f"| {s.task} | {s.n} | {s.recall_1:.2f} | {s.recall_5:.2f} | {s.mrr:.2f} |" for s in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the set and the store, run the three tasks, print the table (and JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the set is built (kept)")
    parser.add_argument("--store", type=Path, default=None, help="reuse or keep the store here")
    parser.add_argument(
        "--weights",
        default=None,
        help="modality weights of the text queries, e.g. visual=1,text=0.5,words=0.25 (default: mmfs's "
        "defaults); 'fused' ranks by the `fused` vector alone, as mmfs did before weighted search",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    media, missing = build_set(args.cache)
    for reason in missing:
        print(reason, file=sys.stderr)
    weights = None if args.weights == "fused" else parse_weights(args.weights) if args.weights else {}
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = args.store or Path(tmp) / "store"
        store = Store(store_dir) if (store_dir / "segments.lance").exists() else build_store(media, store_dir)
        names = stems(store)
        results = [
            text_to_image(store, names, weights),
            text_to_image(store, names, weights, among=FIFTEEN),
            text_to_moment(store, names, weights),
            image_to_image(store, media, names),
        ]
    print(table(results))
    for s in results:
        misses = [(q, r) for q, r in zip(s.queries, s.ranks, strict=True) if r != 1]
        print(f"{s.task}: not first: " + "; ".join(f"{q!r} (rank {r})" for q, r in misses), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([s.__dict__ for s in results], indent=1))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
