"""One exception hierarchy with stable error codes, so quarantine rows stay comparable across releases.

Codes are never renumbered: tools outside mmfs group failures by them. Each error says whether a retry
can help (`retryable`); deterministic media errors are tried once and quarantined.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """Stable numeric codes recorded in `quarantine.error_code`."""

    # 1000s: the input itself
    EMPTY_FILE = 1001
    UNREADABLE = 1002
    UNSUPPORTED_KIND = 1003
    CONTAINER_CORRUPT = 1004
    VIDEO_DECODE = 1005
    AUDIO_DECODE = 1006
    IMAGE_DECODE = 1007
    TEXT_ENCODING = 1008
    NO_DURATION = 1009
    TOO_SHORT = 1010
    URI_REJECTED = 1011
    NOT_FOUND = 1012
    NOT_MEDIA = 1013  # the name promises media; the bytes are text (an HTML error page, a JSON error)
    CAPTION_MALFORMED = 1014  # an SRT/VTT cue whose timing line or times are invalid
    # 1100s: resource limits
    LIMIT_BYTES = 1101
    LIMIT_PIXELS = 1102
    LIMIT_DURATION = 1103
    LIMIT_TEXT = 1104
    LIMIT_AUDIO_FORMAT = 1105  # declared channels or sample rate beyond the limits
    # 1200s: transforms
    TRANSFORM_FAILED = 1201
    TIMEOUT = 1202
    NONFINITE_FEATURE = 1203
    DECODER_CRASHED = 1204  # the isolated decoder process died on the item (a segfault, an OOM kill)
    # 1300s: encoders
    ENCODER_FAILED = 1301
    NONFINITE_EMBEDDING = 1302
    ENCODER_UNAVAILABLE = 1303
    # 1400s: store
    STORE_CONFLICT = 1401
    STORE_IO = 1402
    # 1500s: configuration and usage
    CONFIG_INVALID = 1501


class MmfsError(Exception):
    """Root of every error mmfs raises on purpose."""

    code: ErrorCode = ErrorCode.TRANSFORM_FAILED
    retryable: bool = False

    def __init__(self, message: str, *, code: ErrorCode | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return f"[{self.code.name}] {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries inside results (decode workers, Ray tasks): keep the code
        # and the retryable flag, which the default exception pickling (args only) would drop.
        return (_rebuild, (type(self), self.message, self.code, self.retryable))


def _rebuild(cls: type[MmfsError], message: str, code: ErrorCode, retryable: bool) -> MmfsError:
    return cls(message, code=code, retryable=retryable)


class ConfigError(MmfsError):
    """The configuration or the command line is invalid (exit code 2)."""

    code = ErrorCode.CONFIG_INVALID


class MediaError(MmfsError):
    """A source item cannot be read or decoded; deterministic, so not retried."""

    code = ErrorCode.UNREADABLE


class EmptyFile(MediaError):
    """A zero-byte file: nothing to decode, and retrying will not help."""

    code = ErrorCode.EMPTY_FILE


class UnsupportedMedia(MediaError):
    """The bytes are not a kind of media mmfs handles."""

    code = ErrorCode.UNSUPPORTED_KIND


class MediaDecodeError(MediaError):
    """The container or a stream in it is corrupt or undecodable."""

    code = ErrorCode.CONTAINER_CORRUPT


class TextEncodingError(MediaError):
    """Text bytes that are not valid in any accepted encoding."""

    code = ErrorCode.TEXT_ENCODING


class CaptionFormatError(MediaError):
    """A caption file with a malformed cue (bad timing line, times out of range, end before start)."""

    code = ErrorCode.CAPTION_MALFORMED


class MediaLimitExceeded(MediaError):
    """The item is larger than the configured limits allow; rejected before decoding."""

    code = ErrorCode.LIMIT_BYTES


class SourceRejected(MediaError):
    """A URI outside the allowed roots or with a refused scheme."""

    code = ErrorCode.URI_REJECTED


class TransformError(MmfsError):
    """A transform failed on an item's data."""

    code = ErrorCode.TRANSFORM_FAILED


class TransformTimeout(TransformError):
    """A decode or transform ran past its time budget; retryable once (the node may be loaded)."""

    code = ErrorCode.TIMEOUT
    retryable = True


class NonFiniteFeature(TransformError):
    """A feature came out NaN or infinite."""

    code = ErrorCode.NONFINITE_FEATURE


class EncoderError(MmfsError):
    """An encoder could not load or failed on a batch."""

    code = ErrorCode.ENCODER_FAILED


class StoreError(MmfsError):
    """The store could not be read or written."""

    code = ErrorCode.STORE_IO
    retryable = True


class StoreConflict(StoreError):
    """A concurrent commit conflicted with ours."""

    code = ErrorCode.STORE_CONFLICT
