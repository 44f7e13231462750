"""Errors: stable code numbers, codes that stay in their class's family, retryable decided by the code,
and code and flag kept across a process boundary (decode workers, Ray tasks)."""

from __future__ import annotations

import pickle

import pytest

from mmfs.errors import (
    ConfigError,
    DecoderCrashed,
    EncoderError,
    ErrorCode,
    MediaError,
    StoreConflict,
    StoreError,
    TransformError,
    TransformTimeout,
)

# Tools outside mmfs group quarantine rows by these numbers: none may ever change.
PINNED = {
    "EMPTY_FILE": 1001, "UNREADABLE": 1002, "UNSUPPORTED_KIND": 1003, "CONTAINER_CORRUPT": 1004,
    "VIDEO_DECODE": 1005, "AUDIO_DECODE": 1006, "IMAGE_DECODE": 1007, "TEXT_ENCODING": 1008,
    "NO_DURATION": 1009, "TOO_SHORT": 1010, "URI_REJECTED": 1011, "NOT_FOUND": 1012, "NOT_MEDIA": 1013,
    "CAPTION_MALFORMED": 1014,
    "LIMIT_BYTES": 1101, "LIMIT_PIXELS": 1102, "LIMIT_DURATION": 1103, "LIMIT_TEXT": 1104,
    "LIMIT_AUDIO_FORMAT": 1105,
    "TRANSFORM_FAILED": 1201, "TIMEOUT": 1202, "NONFINITE_FEATURE": 1203, "DECODER_CRASHED": 1204,
    "ENCODER_FAILED": 1301, "NONFINITE_EMBEDDING": 1302, "ENCODER_UNAVAILABLE": 1303,
    "ENCODER_OUT_OF_MEMORY": 1304,
    "STORE_CONFLICT": 1401, "STORE_IO": 1402, "STORE_MISSING": 1403, "STORE_SCHEMA": 1404,
    "STORE_READ_ONLY": 1405, "STORE_WRITE_FAILED": 1406, "STORE_BAD_VALUES": 1407, "STORE_QUERY": 1408,
    "CONFIG_INVALID": 1501,
}  # fmt: skip
RETRYABLE = {"TIMEOUT", "DECODER_CRASHED", "ENCODER_OUT_OF_MEMORY", "STORE_CONFLICT", "STORE_IO"}


def test_every_code_number_is_pinned() -> None:
    assert {code.name: int(code) for code in ErrorCode} == PINNED


def test_retryable_is_a_property_of_the_code() -> None:
    assert {code.name for code in ErrorCode if code.retryable} == RETRYABLE
    assert TransformTimeout("slow").retryable and DecoderCrashed("died").retryable
    assert StoreConflict("lost").retryable and StoreError("io").retryable
    assert not StoreError("gone", code=ErrorCode.STORE_MISSING).retryable
    assert not MediaError("bad", code=ErrorCode.VIDEO_DECODE).retryable
    assert EncoderError("oom", code=ErrorCode.ENCODER_OUT_OF_MEMORY).retryable


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (MediaError, ErrorCode.TIMEOUT),
        (TransformError, ErrorCode.VIDEO_DECODE),
        (StoreError, ErrorCode.ENCODER_FAILED),
        (EncoderError, ErrorCode.STORE_IO),
        (ConfigError, ErrorCode.NOT_FOUND),
    ],
)
def test_a_class_refuses_a_code_of_another_family(cls: type[MediaError], code: ErrorCode) -> None:
    with pytest.raises(ValueError, match=f"cannot carry {code.name}"):
        cls("x", code=code)


def test_errors_survive_pickling_with_code_and_flag() -> None:
    for err in (
        MediaError("a.mp4: missing", code=ErrorCode.NOT_FOUND),
        MediaError("a.mp4: too big", code=ErrorCode.LIMIT_BYTES),
        TransformTimeout("b.mp4: too slow"),
        StoreConflict("commit lost"),
        DecoderCrashed("c.mp4: decoder died"),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert (back.message, back.code, back.retryable) == (err.message, err.code, err.retryable)
        assert str(back) == str(err)
