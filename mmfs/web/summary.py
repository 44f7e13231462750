"""Store-wide summaries for the runs, quarantine and dataset pages (and the static run report).

Built on `mmfs.report.run_report`, so the page, `mmfs report` and `mmfs report --html` agree.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from mmfs.errors import ErrorCode
from mmfs.store.db import Store
from mmfs.web.finder import source_of

_LANGUAGE_KEYS = ("language", "lang", "locale")


def _iso(value: Any) -> str | None:
    """A timestamp as ISO text (None stays None)."""
    return value.isoformat() if isinstance(value, datetime) else (None if value is None else str(value))


def _seconds(start: Any, end: Any) -> float | None:
    """Wall seconds between two timestamps, or None when one is missing."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return round((end - start).total_seconds(), 3)
    return None


def runs(store: Store) -> list[dict[str, Any]]:
    """Every run, newest first: counts, duration and status."""
    if not store.has("runs"):
        return []
    store.current("runs")
    rows = store.read("runs").to_pylist()
    rows.sort(key=lambda r: r["started_at"] or datetime.min, reverse=True)
    return [
        {
            "run_id": r["run_id"],
            "status": r["status"],
            "runner": r["runner"],
            "started_at": _iso(r["started_at"]),
            "ended_at": _iso(r["ended_at"]),
            "duration_s": _seconds(r["started_at"], r["ended_at"]),
            "n_items": r["n_items"],
            "n_ok": r["n_ok"],
            "n_quarantined": r["n_quarantined"],
            "n_skipped": r["n_skipped"],
            "rows": json.loads(r["rows"] or "{}"),
        }
        for r in rows
    ]


def run_detail(store_uri: str, run_id: str) -> dict[str, Any]:
    """`run_report` of one run (the tables as it left them) plus duration, per-stage rates and config."""
    from mmfs.report import run_report

    view = Store.at_run(store_uri, run_id)  # raises ConfigError for an unknown run
    doc = run_report(view, run_id)
    row = next(r for r in view.read("runs").to_pylist() if r["run_id"] == run_id)
    processed = max(int(row["n_items"] or 0) - int(row["n_skipped"] or 0), 0)
    doc["duration_s"] = _seconds(row["started_at"], row["ended_at"])
    doc["runner"] = row["runner"]
    doc["config"] = json.loads(row["config"] or "{}")
    doc["config_hash"] = row["config_hash"]
    doc["stages"] = [
        {
            "stage": stage,
            "seconds": float(seconds),
            "items_per_s": round(processed / seconds, 3) if seconds and seconds > 0 else None,
        }
        for stage, seconds in sorted(doc["stage_seconds"].items(), key=lambda kv: -float(kv[1]))
    ]
    return doc


def _code_name(code: Any) -> str:
    """The ErrorCode name of a stored numeric code (the number itself when unknown)."""
    try:
        return ErrorCode(int(code)).name
    except (TypeError, ValueError):
        return str(code)


def quarantine(store: Store) -> dict[str, Any]:
    """Quarantine rows (newest first) and the same rows grouped by error code and stage."""
    if not store.has("quarantine"):
        return {"rows": [], "groups": []}
    store.current("quarantine")
    columns = ["media_id", "stage", "uri", "error_code", "error_type", "message", "attempts"]
    raw = store.read("quarantine", [*columns, "first_seen", "last_seen", "run_id"]).to_pylist()
    rows = [
        {
            **r,
            "code_name": _code_name(r["error_code"]),
            "first_seen": _iso(r["first_seen"]),
            "last_seen": _iso(r["last_seen"]),
        }
        for r in raw
    ]
    rows.sort(key=lambda r: r["last_seen"] or "", reverse=True)
    groups: Counter[tuple[Any, str, str]] = Counter(
        (r["error_code"], r["code_name"], r["stage"]) for r in rows
    )
    return {
        "rows": rows,
        "groups": [
            {"error_code": code, "code_name": name, "stage": stage, "count": n}
            for (code, name, stage), n in sorted(groups.items(), key=lambda kv: (-kv[1], str(kv[0][0])))
        ],
    }


def _language(metadata: str | None) -> str | None:
    """A language recorded in an item's manifest metadata, when there is one."""
    try:
        meta = json.loads(metadata) if metadata else None
    except json.JSONDecodeError:
        return None
    if not isinstance(meta, dict):
        return None
    found = next((meta[k] for k in _LANGUAGE_KEYS if isinstance(meta.get(k), str) and meta[k]), None)
    return str(found) if found else None


def composition(store: Store) -> dict[str, Any]:
    """Item counts and total seconds by kind, source folder, language and status.

    The language is the manifest's when it names one, else the one detected in the item's text.
    """
    if not store.has("media"):
        return {"items": 0, "seconds": 0.0, "by": {}}
    store.current("media")
    rows = store.read("media", ["uri", "kind", "status", "duration_s", "metadata", "language"]).to_pylist()
    by: dict[str, dict[str, dict[str, float]]] = {}
    for facet in ("kind", "source", "language", "status"):
        tally: dict[str, dict[str, float]] = defaultdict(lambda: {"items": 0, "seconds": 0.0})
        for row in rows:
            key = {
                "kind": row["kind"],
                "source": source_of(row["uri"]),
                "language": _language(row["metadata"]) or row["language"] or "not recorded",
                "status": row["status"],
            }[facet]
            tally[key]["items"] += 1
            tally[key]["seconds"] += float(row["duration_s"] or 0.0)
        by[facet] = {
            k: {"items": int(v["items"]), "seconds": round(v["seconds"], 3)} for k, v in sorted(tally.items())
        }
    return {
        "items": len(rows),
        "seconds": round(sum(float(r["duration_s"] or 0.0) for r in rows), 3),
        "by": by,
    }
