"""Human-readable and JSON reports of runs, store status and search hits, for the CLI."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `mmfs search` and `status` need not import the whole pipeline
    from mmfs.pipelines.run import RunSummary
    from mmfs.store.db import Store


def run_text(s: RunSummary) -> str:
    """A few lines summarising a run."""
    rate = s.media_seconds / s.seconds if s.seconds > 0 else 0.0
    rows = ", ".join(f"{k} {v}" for k, v in sorted(s.rows.items())) or "none"
    return "\n".join(
        [
            f"run {s.run_id}: {s.n_inputs} inputs, {s.n_ok} ok ({s.n_degraded} degraded), "
            f"{s.n_quarantined} quarantined, {s.n_skipped} already done, {s.n_duplicates} duplicates",
            f"rows written: {rows}",
            f"{s.seconds:.1f} s wall, {s.media_seconds:.1f} media-seconds ({rate:.2f} media-s per s)",
            _resources_line(s),
            *_vocabulary_line(s.vocabulary),
        ]
    )


def _resources_line(s: RunSummary) -> str:
    """Peak memory, and the thread budget when the local runner processed items."""
    rss = f"peak RSS {s.peak_rss_mb:.0f} MB"
    if s.peak_rss_children_mb:
        rss += f" (largest child process, a decoder: {s.peak_rss_children_mb:.0f} MB)"
    if not s.threads:
        return rss
    t = s.threads
    model = t.get("model", t.get("torch", 0))
    return f"{rss}; threads: {t['decode']} decode, {model} model (torch or BLAS), of {t['cores']} CPUs"


def _vocabulary_line(v: dict[str, Any]) -> list[str]:
    """What the corpus step did to the bag-of-words vocabulary (nothing when there is no text)."""
    if not v or v.get("action") == "none":
        return []
    return [
        f"vocabulary ({v['mode']}): {v['action']}, {v['terms']} terms ({v.get('new_terms', 0)} new), "
        f"{v['rows_updated']} text rows vectorised"
    ]


def status_doc(store: Store, *, recall_queries: int = 0) -> dict[str, Any]:
    """Tables with rows, versions, fragments and indexes (recall@10 on request); quarantine by error."""
    tables = {}
    for name in store.table_names():
        table = store.table(name)
        if store.pinned is None:
            table.checkout_latest()
        tables[name] = {
            "rows": int(table.count_rows()),
            "version": int(table.version),
            "fragments": len(table.to_lance().get_fragments()),
            "indexes": [getattr(i, "name", str(i)) for i in table.list_indices()],
        }
    quarantine: Counter[str] = Counter()
    if "quarantine" in tables:
        rows = store.read("quarantine", ["stage", "error_type", "error_code"]).to_pylist()
        quarantine.update(f"{r['stage']}: {r['error_type']} ({r['error_code']})" for r in rows)
    from mmfs.store.indexes import index_report

    indexes = index_report(store, n_queries=recall_queries)
    return {
        "store": store.uri,
        "pinned": store.pinned,
        "tables": tables,
        "indexes": indexes,
        "quarantine": dict(quarantine),
    }


def status_text(doc: dict[str, Any]) -> str:
    """The status as an aligned table."""
    pinned = " (read-only view of a past run)" if doc.get("pinned") else ""
    lines = [
        f"store {doc['store']}{pinned}",
        f"{'table':<12}{'rows':>8}{'version':>9}{'fragments':>11}  indexes",
    ]
    for name, info in doc["tables"].items():
        indexes = ", ".join(info["indexes"]) or "-"
        lines.append(f"{name:<12}{info['rows']:>8}{info['version']:>9}{info['fragments']:>11}  {indexes}")
    for table, columns in (doc.get("indexes") or {}).items():
        for column, info in columns.items():
            recall = info.get("recall_at_10")
            recall_text = "" if recall is None else f", recall@10 {recall:.3f}"
            lines.append(
                f"index {table}.{column}: {info.get('type')}, {info.get('indexed_rows')} indexed, "
                f"{info.get('unindexed_rows')} not yet{recall_text}"
            )
    if doc["quarantine"]:
        lines.append("quarantine:")
        lines += [f"  {n} × {reason}" for reason, n in sorted(doc["quarantine"].items())]
    return "\n".join(lines)


def hits_text(hits: list[dict[str, Any]]) -> str:
    """One line per hit: score, time span, uri and what the segment says (and its thumbnail's path)."""
    if not hits:
        return "no hits"
    lines = []
    for i, h in enumerate(hits, 1):
        span = "" if h["start_s"] is None else f" {h['start_s']:.1f}-{h['end_s']:.1f}s"
        what = h.get("transcript") or h.get("label_text") or ""
        thumb = f"  [{h['thumbnail']}]" if h.get("thumbnail") else ""
        lines.append(f"{i:>2}. {h['score']:.3f}{span} {h['uri']}  {what[:80]}{thumb}")
    return "\n".join(lines)


def run_report(store: Store, run_id: str, *, slowest: int = 5) -> dict[str, Any]:
    """Everything one run did: outcome and error-code counts, rows, stage times, slowest items."""
    from mmfs.errors import ConfigError
    from mmfs.store.filters import in_list

    runs = store.read("runs", where=in_list("run_id", [run_id])).to_pylist() if store.has("runs") else []
    if not runs:
        raise ConfigError(f"no run '{run_id}' in {store.uri} (see `mmfs versions`)")
    run = runs[0]
    where = in_list("run_id", [run_id])
    media = (
        store.read("media", ["uri", "kind", "status", "process_s"], where=where).to_pylist()
        if store.has("media")
        else []
    )
    failures = (
        store.read(
            "quarantine",
            ["uri", "stage", "error_code", "error_type", "message", "attempts", "detail"],
            where=where,
        ).to_pylist()
        if store.has("quarantine")
        else []
    )
    by_code = Counter(f"{f['error_code']} {f['error_type']}" for f in failures)
    slow = sorted((m for m in media if m["process_s"] is not None), key=lambda m: -m["process_s"])[:slowest]
    return {
        "run_id": run_id,
        "status": run["status"],
        "started_at": str(run["started_at"]),
        "ended_at": str(run["ended_at"]),
        "inputs": run["n_items"],
        "outcomes": dict(Counter(m["status"] for m in media)) | {"skipped": run["n_skipped"]},
        "error_codes": dict(by_code),
        "failures": [
            {k: f[k] for k in ("uri", "stage", "error_code", "message", "attempts", "detail")}
            for f in failures
        ],
        "rows": json.loads(run["rows"] or "{}"),
        "stage_seconds": json.loads(run["stage_seconds"] or "{}"),
        "vocabulary": json.loads(run.get("vocabulary") or "{}"),
        "slowest": [{"uri": m["uri"], "kind": m["kind"], "seconds": round(m["process_s"], 3)} for m in slow],
        "where_to_look": _where_to_look(store, run_id),
    }


def _where_to_look(store: Store, run_id: str) -> list[str]:
    """Pointers for digging further: the detailed log, and the queries behind this report."""
    hints = []
    if "://" not in store.uri:
        hints.append(f"log with every warning and traceback: {store.uri}/mmfs.log")
    query = f"SELECT uri, stage, error_code, message, detail FROM quarantine WHERE run_id = '{run_id}'"
    hints.append(f'mmfs sql "{query}" --store {store.uri}')
    return hints


def run_report_text(doc: dict[str, Any]) -> str:
    """The run report as lines a person reads."""
    lines = [
        f"run {doc['run_id']} ({doc['status']}): {doc['inputs']} inputs, "
        f"{doc['started_at']} to {doc['ended_at']}",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(doc["outcomes"].items())),
        "rows: " + (", ".join(f"{k} {v}" for k, v in sorted(doc["rows"].items())) or "none"),
        "stage seconds: " + (", ".join(f"{k} {v}" for k, v in sorted(doc["stage_seconds"].items())) or "-"),
        *_vocabulary_line(doc.get("vocabulary") or {}),
    ]
    if doc["error_codes"]:
        lines.append(
            "errors: " + ", ".join(f"{n} × {code}" for code, n in sorted(doc["error_codes"].items()))
        )
        lines += [f"  {f['stage']}: {f['uri']}: {f['message'][:120]}" for f in doc["failures"]]
    if doc["slowest"]:
        lines.append("slowest items:")
        lines += [f"  {s['seconds']:>7.2f} s  {s['kind']:<6} {s['uri']}" for s in doc["slowest"]]
    if doc.get("where_to_look"):
        lines.append("where to look:")
        lines += [f"  {hint}" for hint in doc["where_to_look"]]
    return "\n".join(lines)


def versions_text(runs: list[dict[str, Any]]) -> str:
    """`mmfs versions`: one line per run, then the table versions it started from and produced."""
    if not runs:
        return "no runs"
    lines = [f"{'run':<26}{'status':<13}started_at"]
    for r in runs:
        lines.append(f"{r['run_id']:<26}{r['status']:<13}{r['started_at']}")
        before, after = r["before"] or {}, r["after"] or {}
        changed = [
            f"{t} {before.get(t, '-')}->{after[t]}" for t in sorted(after) if before.get(t) != after[t]
        ]
        same = [f"{t} {after[t]}" for t in sorted(after) if before.get(t) == after[t]]
        lines.append("  wrote:     " + (", ".join(changed) if changed else "nothing"))
        if same:
            lines.append("  unchanged: " + ", ".join(same))
    return "\n".join(lines)
