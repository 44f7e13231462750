"""Train and apply the sound-classification head on labelled windows of the store's `audio` table.

Labels come from a CSV (`media_id` or `uri`, `start_s`, `end_s`, `label`): every stored window whose
midpoint falls in a labelled span takes that label. Held-out windows come from other media items
than the training ones when every label has two items or more (windows of one recording are too
alike to test on), else every fourth window of each label is held out, and the report says which.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.errors import ConfigError
from mmfs.store.db import Store
from mmfs.transforms.audio.head import FEATURE_SETS, SoundHead, fit, window_features

HOLD_OUT_EVERY = 4  # one in four media items (or windows) is held out


@dataclass(frozen=True)
class Span:
    """One labelled span of a media item."""

    media_id: str
    start_s: float
    end_s: float
    label: str


def read_labels(path: str | Path, store: Store) -> list[Span]:
    """The CSV's spans, uris resolved to media ids; a bad line is a ConfigError naming it."""
    media = store.read("media", ["media_id", "uri"]).to_pylist()
    by_uri = {str(r["uri"]): str(r["media_id"]) for r in media}
    by_path = {str(Path(u).resolve()): m for u, m in by_uri.items() if "://" not in u}
    spans = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                spans.append(_span(row, line, by_uri, by_path, {str(r["media_id"]) for r in media}))
    except OSError as err:
        raise ConfigError(f"cannot read labels {path}: {err.strerror}") from None
    if not spans:
        raise ConfigError(f"labels {path} has no rows (columns: media_id or uri, start_s, end_s, label)")
    return spans


def _span(
    row: dict[str, str], line: int, by_uri: dict[str, str], by_path: dict[str, str], ids: set[str]
) -> Span:
    where = f"labels line {line}"
    key = (row.get("media_id") or "").strip()
    uri = (row.get("uri") or "").strip()
    media_id = (
        key if key in ids else by_uri.get(uri) or (by_path.get(str(Path(uri).resolve())) if uri else None)
    )
    if media_id is None:
        raise ConfigError(f"{where}: no stored media item {key or uri!r}")
    try:
        start, end = float(row["start_s"]), float(row["end_s"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: start_s and end_s must be numbers") from None
    label = (row.get("label") or "").strip()
    if not label or not 0 <= start < end:
        raise ConfigError(f"{where}: needs a label and 0 <= start_s < end_s")
    return Span(media_id, start, end, label)


def labelled_windows(
    store: Store, spans: list[Span], features: str
) -> tuple[np.ndarray, list[str], list[str]]:
    """Feature rows, labels and media ids of the windows inside labelled spans."""
    if features not in FEATURE_SETS:
        raise ConfigError(f"--features takes {', '.join(FEATURE_SETS)}, not {features!r}")
    by_media: dict[str, list[Span]] = {}
    for s in spans:
        by_media.setdefault(s.media_id, []).append(s)
    rows = store.read("audio", ["media_id", "start_s", "end_s", "mfcc", "embedding"]).to_pylist()
    x, y, owners = [], [], []
    for row in rows:
        mid = (row["start_s"] + row["end_s"]) / 2
        label = next((s.label for s in by_media.get(row["media_id"], []) if s.start_s <= mid < s.end_s), None)
        vec = window_features(row, features) if label is not None else None
        if vec is not None and label is not None:
            x.append(vec)
            y.append(label)
            owners.append(row["media_id"])
    if len(set(y)) < 2:
        raise ConfigError(f"labelled windows hold {len(set(y))} label(s) with features; need two or more")
    return np.stack(x), y, owners


def split(y: list[str], owners: list[str]) -> tuple[np.ndarray, str]:
    """A boolean held-out mask, by media item when each label has two items or more, else by window."""
    items = {lab: sorted({o for o, v in zip(owners, y, strict=True) if v == lab}) for lab in set(y)}
    if all(len(v) >= 2 for v in items.values()):
        held = {m for v in items.values() for m in v[HOLD_OUT_EVERY - 1 :: HOLD_OUT_EVERY] or v[-1:]}
        return np.array([o in held for o in owners]), "media"
    seen: dict[str, int] = {}
    mask = []
    for lab in y:
        seen[lab] = seen.get(lab, 0) + 1
        mask.append(seen[lab] % HOLD_OUT_EVERY == 0)
    return np.array(mask), "windows"


def train_head(
    store: Store, labels_csv: str | Path, out: str | Path, *, features: str = "mfcc"
) -> dict[str, Any]:
    """Fit on the training windows, measure accuracy on the held-out ones, then refit on all and save."""
    x, y, owners = labelled_windows(store, read_labels(labels_csv, store), features)
    test, how = split(y, owners)
    if not test.any() or test.all():
        raise ConfigError("too few labelled windows to hold any out; label more windows")
    ya = np.array(y)
    head = fit(x[~test], list(ya[~test]), features=features)
    predicted = [label for label, _ in head.predict(x[test])]
    accuracy = float(np.mean(np.array(predicted) == ya[test]))
    final = fit(x, y, features=features)
    final.info = {
        "held_out_accuracy": accuracy,
        "split": how,
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
    }
    final.save(out)
    return {"labels": final.labels, "features": features, **final.info, "out": str(out)}


def predict_windows(
    store: Store, head: SoundHead, media_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """The head's label and probability for every stored window that has its features."""
    rows = store.read(
        "audio", ["media_id", "window_index", "start_s", "end_s", "mfcc", "embedding"]
    ).to_pylist()
    keep = [r for r in rows if media_ids is None or r["media_id"] in media_ids]
    found: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    for row in keep:
        vec = window_features(row, head.features)
        if vec is not None:  # a window too quiet to have been embedded has no embedding features
            found.append({k: row[k] for k in ("media_id", "window_index", "start_s", "end_s")})
            vectors.append(vec)
    if not vectors:
        return []
    preds = head.predict(np.stack(vectors))
    return [row | {"label": lab, "probability": p} for row, (lab, p) in zip(found, preds, strict=True)]
