"""Errors keep their code and retryable flag across a process boundary (decode workers, Ray tasks)."""

from __future__ import annotations

import pickle

from mmfs.errors import ErrorCode, MediaError, StoreConflict, TransformTimeout


def test_errors_survive_pickling_with_code_and_flag() -> None:
    for err in (
        MediaError("a.mp4: missing", code=ErrorCode.NOT_FOUND),
        TransformTimeout("b.mp4: too slow"),
        StoreConflict("commit lost", retryable=False),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert (back.message, back.code, back.retryable) == (err.message, err.code, err.retryable)
        assert str(back) == str(err)
