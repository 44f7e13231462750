"""The corpus step of a run: fit the bag-of-words vocabulary over every text row, then vectorise rows.

Runs on the driver after all batches committed (every runner), so the vocabulary sees the whole corpus
whatever the batching. It is idempotent: the vocabulary is computed from the rows in the store, and
only rows whose `vocab_version` differs from the result are rewritten, so a re-run with nothing new
writes nothing, and a run killed before this step is completed by the next one. `text.vocabulary`
picks the policy: `refit` (fresh ids over the corpus), `extend` (ids kept, new terms appended, df and
idf updated), `frozen` (the stored vocabulary as is; new rows are vectorised with it). The stored
vocabulary is the `vocabulary` table (one row per term), versioned and tagged with the run like the
other tables.

Which rows a changed vocabulary rewrites is `store.vocabulary_rows`. `all` (the default) keeps every
row on the newest vocabulary: under `refit` or `extend` each run that adds text rewrites the whole
corpus's sparse columns, a cost that grows with the store. `run` rewrites only this run's rows (and
rows never vectorised): a run's cost then grows with its own text, and each row's `vocab_version`
names the vocabulary its `bow_indices` and `tfidf` were made with. That vocabulary stays readable: the
`vocabulary` table is versioned and every run tags its version, so `vocab_version` → the tagged
version of the run that wrote it. A run with `all` (or `mmfs run` with that config on nothing new)
brings the lagging rows up to date in one pass.

A run that finds `text` and `vocabulary` at the versions the last step left them (recorded in that
run's report as `settled_at`, with the settings it fitted under) skips the step: the result would be
the same, and reading every text row's tokens made a run with nothing new cost O(corpus). Any write
to either table (new text, an erasure, a rollback, another writer between a step's read and its
commits) or a changed setting makes the next step read again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pyarrow as pa

from mmfs.config import PipelineConfig, short_hash
from mmfs.store.db import Store
from mmfs.transforms.text.vocabulary import (
    Vocabulary,
    document_frequencies,
    extend,
    refit,
    terms_of,
    vectorize,
)

log = logging.getLogger(__name__)

_SPARSE = ("bow_indices", "bow_counts", "tfidf", "vocab_version")


def vocabulary_config_version(cfg: PipelineConfig) -> str:
    """The `feature_version` of vocabulary rows: the settings that shape terms (not the policy)."""
    t = cfg.text
    return short_hash("vocabulary", t.ngram_max, t.min_df, t.max_features)


def stored_vocabulary(store: Store) -> Vocabulary | None:
    """The vocabulary in the store, in term-id order, or None when there is none."""
    if not store.has("vocabulary") or not store.count("vocabulary"):
        return None
    rows = store.read("vocabulary", ["term", "term_id", "df", "n_docs"]).to_pylist()
    rows.sort(key=lambda r: r["term_id"])
    return Vocabulary(
        tuple(r["term"] for r in rows), tuple(int(r["df"]) for r in rows), int(rows[0]["n_docs"])
    )


def update_vocabulary(store: Store, cfg: PipelineConfig, run_id: str) -> dict[str, Any]:
    """Fit (by `text.vocabulary`) and store the vocabulary, then vectorise the text rows it changed.

    Returns what it did, for the run report: mode, action (fitted, refit, extended, frozen,
    unchanged, none), terms, new terms, and text rows updated.
    """
    mode = cfg.text.vocabulary
    for name in ("text", "vocabulary"):  # workers (Beam) committed through other handles: see theirs
        if store.has(name):
            store.current(name)
    if not store.has("text") or not store.count("text") or not store.has("vocabulary"):
        return {"mode": mode, "action": "none", "terms": 0, "rows_updated": 0}
    fit = {"mode": mode, "config": vocabulary_config_version(cfg), "rows": cfg.store.vocabulary_rows}
    read_at = (int(store.table("text").version), int(store.table("vocabulary").version))
    last = _last_report(store)
    if last is not None and last.get("fit") == fit and last.get("settled_at") == list(read_at):
        # nothing touched `text` or `vocabulary` since the last step left them settled: same result
        report: dict[str, Any] = {k: last[k] for k in ("terms", "vocab_version", "rows_lagging") if k in last}
        report |= {"mode": mode, "action": "unchanged", "new_terms": 0, "rows_updated": 0, "rows_read": 0}
        return report | {"fit": fit, "settled_at": list(read_at)}
    report = _fit_and_vectorise(store, cfg, run_id, mode)
    report["fit"] = fit
    settled = _settled_versions(store, read_at, report)
    if settled is not None:
        report["settled_at"] = settled
    log.info("vocabulary: %s", report)
    return report


def _last_report(store: Store) -> dict[str, Any] | None:
    """The vocabulary report of the newest run that recorded one (the `runs` table is one row a run)."""
    if not store.has("runs") or not store.count("runs"):
        return None
    rows = store.read("runs", ["started_at", "vocabulary"]).to_pylist()
    for row in sorted(rows, key=lambda r: r["started_at"], reverse=True):
        if row["vocabulary"]:
            found = json.loads(row["vocabulary"])
            return found if isinstance(found, dict) else None
    return None


def _settled_versions(store: Store, read_at: tuple[int, int], report: dict[str, Any]) -> list[int] | None:
    """The (text, vocabulary) versions this step left, when only its own commits followed its read.

    A later run whose store is still at these versions can skip the step (its result would be the
    same). When another writer committed in between, nothing is recorded and the next run reads again.
    """
    text = int(store.current("text").version)
    vocabulary = int(store.current("vocabulary").version)
    ours = (1 if report["rows_updated"] else 0, 1 if report.pop("_wrote_vocabulary") else 0)
    if (text - read_at[0], vocabulary - read_at[1]) != ours:
        return None
    return [text, vocabulary]


def _fit_and_vectorise(store: Store, cfg: PipelineConfig, run_id: str, mode: str) -> dict[str, Any]:
    """Read every text row's tokens, fit the vocabulary by `text.vocabulary`, rewrite the stale rows."""
    rows = store.read("text", ["media_id", "segment_index", "tokens", "vocab_version", "run_id"]).to_pylist()
    docs = [terms_of(r["tokens"] or [], cfg.text.ngram_max) for r in rows]
    old = stored_vocabulary(store)
    t = cfg.text
    same_terms = old is not None and _config_of(store) == vocabulary_config_version(cfg)
    if mode == "frozen" and old is not None:
        vocab, action = old, "frozen"
    else:
        df, n_docs = document_frequencies(docs)
        if mode == "extend" and old is not None and same_terms:
            vocab, action = extend(old, df, n_docs, min_df=t.min_df, max_features=t.max_features), "extended"
        else:
            vocab = refit(df, n_docs, min_df=t.min_df, max_features=t.max_features)
            action = "fitted" if old is None else "refit"
    changed_vocab = old is None or old.version != vocab.version
    if not changed_vocab and action != "frozen":
        action = "unchanged"
    stale = [i for i, r in enumerate(rows) if r["vocab_version"] != vocab.version]
    lagging = 0
    if cfg.store.vocabulary_rows == "run":  # rows of earlier runs keep their vectors (and vocab_version)
        mine = [i for i in stale if rows[i]["vocab_version"] is None or rows[i]["run_id"] == run_id]
        lagging, stale = len(stale) - len(mine), mine
    if changed_vocab:
        _write_vocabulary(store, vocab, vocabulary_config_version(cfg), run_id)
    if stale:
        _write_vectors(store, [rows[i] for i in stale], [docs[i] for i in stale], vocab)
    new_terms = len(set(vocab.terms) - set(old.terms)) if old is not None else len(vocab.terms)
    report = {
        "mode": mode,
        "action": action,
        "terms": len(vocab.terms),
        "new_terms": new_terms,
        "rows_updated": len(stale),
        "rows_read": len(rows),
        "vocab_version": vocab.version,
        "_wrote_vocabulary": changed_vocab,
    }
    if cfg.store.vocabulary_rows == "run":
        report["rows_lagging"] = lagging  # rows still on an older vocabulary (store.vocabulary_rows: run)
    return report


def _config_of(store: Store) -> str | None:
    """The feature_version the stored vocabulary was built with."""
    row = store.read("vocabulary", ["feature_version"]).slice(0, 1).to_pylist()
    return row[0]["feature_version"] if row else None


def _write_vocabulary(store: Store, vocab: Vocabulary, config_version: str, run_id: str) -> None:
    """Replace the stored vocabulary with `vocab` in one commit."""
    idf = vocab.idf
    table = pa.Table.from_pylist(
        [
            {
                "term": term,
                "term_id": i,
                "df": vocab.df[i],
                "idf": float(idf[i]),
                "n_docs": vocab.n_docs,
                "vocab_version": vocab.version,
                "feature_version": config_version,
                "run_id": run_id,
            }
            for i, term in enumerate(vocab.terms)
        ],
        schema=store.table("vocabulary").schema,
    )
    store.replace_all("vocabulary", table)


def _write_vectors(
    store: Store, rows: list[dict[str, Any]], docs: list[list[str]], vocab: Vocabulary
) -> None:
    """Set the sparse columns of the given text rows (keys and those columns only)."""
    ids, idf = vocab.ids, vocab.idf
    out: dict[str, list[Any]] = {"media_id": [], "segment_index": [], **{c: [] for c in _SPARSE}}
    for row, terms in zip(rows, docs, strict=True):
        indices, counts, tfidf = vectorize(terms, ids, idf)
        out["media_id"].append(row["media_id"])
        out["segment_index"].append(row["segment_index"])
        out["bow_indices"].append(indices)
        out["bow_counts"].append(counts)
        out["tfidf"].append(tfidf)
        out["vocab_version"].append(vocab.version)
    schema = store.table("text").schema
    fields = [schema.field(n) for n in ("media_id", "segment_index", *_SPARSE)]
    store.update_columns("text", pa.Table.from_pydict(out, schema=pa.schema(fields)))
