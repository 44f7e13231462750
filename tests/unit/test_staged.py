"""What crosses from a cluster worker to the committer: a staged batch survives the trip and merges."""

from __future__ import annotations

import json
from pathlib import Path

import lance
import pyarrow as pa

from mmfs.stages.batch import BatchTally, join_scopes
from mmfs.stages.kept_rows import scope_clause
from mmfs.stages.staged import StagedBatch, merge_scopes, merge_staged, parse_scope, row_size
from mmfs.store.db import Store
from mmfs.store.fragments import HASH_RESULTS, STAGED_DIR, StagedTable, sweep_orphans


def _batch(media_ids: list[str], frames: int, record: str) -> StagedBatch:
    keys = pa.table(
        {
            "media_id": [m for m in media_ids for _ in range(frames)],
            "frame_index": [i for _ in media_ids for i in range(frames)],
        }
    )
    media = pa.table({"media_id": media_ids, "uri": [f"/data/{m}" for m in media_ids]})
    return StagedBatch(
        staged={
            "frames": StagedTable(fragments=[f'{{"id": 0, "r": "{record}"}}'], keys=keys, files=[record])
        },
        rows={"media": media, "segments": pa.table({"media_id": pa.array([], pa.string())})},
        tally=BatchTally(n_ok=len(media_ids), stage_seconds={"write": 0.5}),
        scopes={"segments": f"media_id = '{media_ids[0]}'"},
        records=[f"run/{record}.json"],
        row_bytes=1000 * frames,
    )


def test_a_staged_batch_crosses_as_one_row_of_fixed_columns_and_comes_back_whole() -> None:
    batch = _batch(["a", "b"], 3, "f1")
    row = batch.to_row()
    assert set(row) == {"meta", "tally", "tables"}  # the same columns for every batch (Ray blocks)
    back = StagedBatch.from_row(row)
    assert back.staged["frames"].keys.equals(batch.staged["frames"].keys)
    assert back.staged["frames"].fragments == batch.staged["frames"].fragments
    assert back.rows["media"].equals(batch.rows["media"])
    assert back.n_items == 2 and back.n_rows == 6 + 2
    assert (back.scopes, back.records, back.row_bytes) == (batch.scopes, batch.records, 3000)
    assert back.tally.n_ok == 2 and back.tally.stage_seconds == {"write": 0.5}
    assert row_size(row) == sum(len(v) for v in row.values())


def test_merged_batches_commit_every_fragment_and_each_scope_once() -> None:
    first, second = _batch(["a"], 2, "f1"), _batch(["b", "c"], 1, "f2")
    del second.staged["frames"]
    second.rows["frames"] = pa.table({"media_id": pa.array([], pa.string())})  # nothing staged there
    merged = merge_staged([first, second])
    assert merged.staged["frames"].files == ["f1"] and "frames" not in merged.rows
    assert merged.staged["frames"].keys.column("media_id").to_pylist() == ["a", "a"]
    assert merged.rows["media"].column("media_id").to_pylist() == ["a", "b", "c"]
    assert merged.scopes == {"segments": "(media_id = 'a') OR (media_id = 'b')"}
    assert merged.records == ["run/f1.json", "run/f2.json"]
    assert merged.tally.n_ok == 3 and merged.row_bytes == 2000 + 1000


def test_merged_replace_scopes_select_what_the_or_of_every_batch_selects(tmp_path: Path) -> None:
    """Many batches' scopes become one `IN` list of whole items and one per set of stages; on a real
    Lance table they select exactly the rows the OR of every batch's clause selects."""
    ids = [f"{i:04x}" + "ab" * 30 for i in range(60)] + ["o'brien"]  # a quote survives the round trip
    stages = ["clip", "motion", "action"]
    rows = pa.table(
        {
            "media_id": [m for m in ids for _ in stages] + ["other"],
            "stage": [s for _ in ids for s in stages] + ["clip"],
        }
    )
    dataset = lance.write_dataset(rows, str(tmp_path / "segments.lance"))
    batches = []
    for b in range(12):  # 12 batches of 5 items: whole items, one stage, two stages
        items: list[tuple[str, frozenset[str] | None]] = []
        for i, media_id in enumerate(ids[b * 5 : b * 5 + 5]):
            items.append((media_id, None if i % 3 == 0 else frozenset(stages[: 1 + i % 2])))
        clause = scope_clause(items)
        assert clause is not None and parse_scope(clause) is not None
        batches.append({"segments": clause})
    batches.append({"segments": scope_clause([("o'brien", frozenset({"motion"}))]) or ""})
    batches.append({"segments": scope_clause([(ids[1], None)]) or ""})  # whole after a partial: whole

    def selected(where: str) -> set[tuple[str, str]]:
        found = dataset.to_table(columns=["media_id", "stage"], filter=where)
        return set(zip(found.column("media_id").to_pylist(), found.column("stage").to_pylist(), strict=True))

    merged = merge_scopes(batches)["segments"]
    ored = join_scopes(batches)["segments"]
    assert selected(merged) == selected(ored)
    assert ("o'brien", "motion") in selected(merged) and ("other", "clip") not in selected(merged)
    assert merged.count(" IN (") == 1 + 3 * 2  # whole items; (ids, stages) per stage set (3 of them)
    assert merge_scopes([batches[0]]) == batches[0]
    # a clause in any other form is OR-ed with the rest, as before
    odd = merge_scopes([batches[0], {"segments": "media_id = 'x'"}])["segments"]
    assert selected(odd) == selected(f"({batches[0]['segments']}) OR (media_id = 'x')")


def test_maintenance_removes_hashing_results_a_dead_plan_left_once_they_are_old(tmp_path: Path) -> None:
    """Beam hashing leaves its results under `.mmfs-staged/hash-*` until the plan reads them; a plan
    that died leaves them to the orphan sweep, which keeps young ones (a plan may be reading them)."""
    import os
    import time

    store = Store(tmp_path / "store")
    old, young = (tmp_path / "store" / STAGED_DIR / f"{HASH_RESULTS}{n}" for n in ("old", "young"))
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "part-00000-of-00001.jsonl").write_text('{"chunk": 0}\n')
    stamp = time.time() - 7200
    os.utime(old / "part-00000-of-00001.jsonl", (stamp, stamp))
    record = tmp_path / "store" / STAGED_DIR / "run-1" / "batch.json"  # a staged record: not touched
    record.parent.mkdir()
    record.write_text(json.dumps({"run_id": "run-1", "written": time.time(), "files": {}}))
    sweep_orphans(store, grace_s=3600)
    assert not old.exists() and young.exists() and record.exists()
