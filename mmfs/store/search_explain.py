"""Why a hit matched: each modality's score, the labels and words it shares with the query, its time.

Built from what the search already read (no extra query), so `--explain`, `--json` and the analyst
page show the same reasons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its"}
    | {"of", "on", "or", "that", "the", "their", "this", "to", "with"}
)


def words(text: str | None) -> list[str]:
    """Lower-case words of a text, stop words left out, each reduced to a crude stem (plural s, -ing)."""
    return [_stem(w) for w in _WORD.findall((text or "").lower()) if w not in _STOP and len(w) > 1]


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def shared_words(query: str, text: str | None) -> list[str]:
    """The words of `text` whose stem is a stem of the query (in the text's order, once each)."""
    wanted = set(words(query))
    found = [w for w in _WORD.findall((text or "").lower()) if w not in _STOP and _stem(w) in wanted]
    return list(dict.fromkeys(found))


def why(
    row: Mapping[str, Any],
    scores: Mapping[str, float | None],
    weights: Mapping[str, float] | None,
    query_text: str | None,
) -> dict[str, Any]:
    """The reasons of one hit: scores per modality, weights, labels/words matched, transcript, time."""
    query = query_text or ""
    return {
        "scores": {m: (None if s is None else round(s, 4)) for m, s in scores.items()},
        "weights": dict(weights) if weights else None,
        "labels": row.get("label_text"),
        "matched_labels": shared_words(query, row.get("label_text")),
        "transcript": row.get("transcript"),
        "matched_words": shared_words(query, row.get("transcript")),
        "start_s": row.get("start_s"),
        "end_s": row.get("end_s"),
    }


def explain_lines(hit: Mapping[str, Any]) -> list[str]:
    """A hit's reasons as indented lines for the terminal (`mmfs search --explain`)."""
    reason = hit.get("why") or {}
    scores = reason.get("scores") or {}
    weights = reason.get("weights") or {}
    parts = [
        f"{m} {s:.3f}" + (f" (weight {weights[m]:g})" if m in weights else "")
        for m, s in scores.items()
        if s is not None
    ]
    lines = ["    scores: " + (", ".join(parts) or "none")]
    start, end = reason.get("start_s"), reason.get("end_s")
    if start is not None:
        lines.append(f"    time: {start:.1f}-{end:.1f} s" if end is not None else f"    time: {start:.1f} s")
    if reason.get("labels"):
        matched = reason.get("matched_labels") or []
        lines.append(
            f"    labels: {reason['labels']}" + (f"  [matched: {', '.join(matched)}]" if matched else "")
        )
    if reason.get("transcript"):
        matched = reason.get("matched_words") or []
        span = (
            reason["transcript"] if len(reason["transcript"]) <= 160 else reason["transcript"][:157] + "..."
        )
        lines.append(f"    text: {span}" + (f"  [matched: {', '.join(matched)}]" if matched else ""))
    return lines
