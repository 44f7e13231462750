"""Keyed model calls (issue 20): each result comes back under its input's key, a model that returns a
different number of results fails its batch instead of shifting results onto other items, and the
encode stages read every item's vectors by its own media id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmfs.config import config_from_dict
from mmfs.encoders.keyed import Keyed, run_keyed, run_keyed_columns
from mmfs.encoders.registry import register
from mmfs.errors import EncoderError, ErrorCode
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.sources import SourceItem
from mmfs.stages.base import Stage, apply_stage
from mmfs.stages.decode import extract
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Item, PendingItem
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS, FakeText, _vector


@register("test.text-drops-last")
class DropsLast(FakeText):
    """A broken text model: one vector fewer than it was given."""

    def embed(self, batch: Sequence[Any]) -> np.ndarray:
        return super().embed(batch)[:-1]


def test_results_come_back_under_their_keys() -> None:
    pairs = [(("b", 0), 2.0), (("a", 0), 3.0), (("a", 1), 4.0)]
    found = run_keyed("square", pairs, lambda xs: [x * x for x in xs])
    assert found[("a", 1)] == 16.0 and found.select([("a", 0), ("b", 0)]) == [9.0, 4.0]
    assert found.get(("c", 0)) is None and ("b", 0) in found and len(found) == 3


def test_matrix_rows_by_key_are_a_view_when_contiguous_and_a_copy_otherwise() -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    found = Keyed([("x", 0), ("x", 1), ("y", 0), ("y", 1)], matrix)
    both = found.rows([("y", 0), ("y", 1)])
    assert np.array_equal(both, matrix[2:4]) and np.shares_memory(both, matrix)
    mixed = found.rows([("y", 1), ("x", 0)])
    assert np.array_equal(mixed, matrix[[3, 0]]) and not np.shares_memory(mixed, matrix)
    assert found.rows([]).shape == (0, 3)


def test_a_model_that_drops_or_adds_a_result_fails_its_batch() -> None:
    pairs = [(k, float(k)) for k in range(3)]
    with pytest.raises(EncoderError, match="shrinking: 2 results for 3 inputs") as err:
        run_keyed("shrinking", pairs, lambda xs: xs[:-1])
    assert err.value.code == ErrorCode.ENCODER_FAILED
    with pytest.raises(EncoderError, match="labels: 4 results for 3 inputs"):
        run_keyed_columns("labels", pairs, lambda xs: (xs, [*xs, 9.0]))


def test_keys_of_one_call_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Keyed(["a", "a"], [1, 2])


def _texts(tmp: Path, cfg_raw: dict) -> tuple[list[Item], Stage]:
    """Two decoded text items through the text stage, and the run's embed_text stage."""
    cfg = config_from_dict(cfg_raw)
    stages = {s.name: s for s in Enricher(cfg).stages}
    items = []
    for name, words in (("a.txt", "The keeper lit the lamp."), ("b.txt", "A ferry left the pier at dawn.")):
        path = mf.write_text(tmp / name, words)
        pending = PendingItem(sha256_file(path), SourceItem(path=path, uri=str(path)), [str(path)], 10)
        items.append(Item(extract(pending, cfg)))
    return apply_stage(stages["text"], items), stages["embed_text"]


def test_the_text_stage_reads_each_items_vectors_by_its_media_id(tmp_path: Path) -> None:
    items, stage = _texts(tmp_path, {"encoders": FAKE_ENCODERS})
    for order in (items, items[::-1]):
        for it in apply_stage(stage, order):
            assert not it.failures and it.vectors.text is not None
            want = [_vector(seg.text.encode()) for seg in it.texts]
            got = it.vectors.text
            assert len(got) == len(want)
            for row, raw in zip(got, want, strict=True):
                assert np.allclose(row, raw / np.linalg.norm(raw), atol=1e-6)


def test_a_model_short_of_results_fails_the_items_instead_of_shifting_vectors(tmp_path: Path) -> None:
    items, stage = _texts(tmp_path, {"encoders": {**FAKE_ENCODERS, "text": "test.text-drops-last"}})
    out = apply_stage(stage, items)
    assert len(out) == 2
    for it in out:  # retried alone, each item still gets one vector fewer than it has segments
        assert it.vectors.text is None and [f.stage for f in it.failures] == ["embed_text"]
        assert it.failures[0].error.code == ErrorCode.ENCODER_FAILED
