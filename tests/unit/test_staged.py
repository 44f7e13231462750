"""What crosses from a cluster worker to the committer: a staged batch survives the trip and merges."""

from __future__ import annotations

import pyarrow as pa

from mmfs.stages.batch import BatchTally
from mmfs.stages.staged import StagedBatch, merge_staged, row_size
from mmfs.store.fragments import StagedTable


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
