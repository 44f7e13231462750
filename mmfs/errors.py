"""One exception hierarchy with stable error codes, so quarantine rows stay comparable across releases.

Codes are never renumbered: tools outside mmfs group failures by them. Whether a retry can help is a
property of the code (`ErrorCode.retryable`), not of one raise site: a timed-out decode, a crashed
decoder, a CUDA out-of-memory and a store conflict are retried by later runs (up to
`limits.max_attempts`); deterministic media errors are tried once and quarantined. Each error class
carries only codes of its own family (the hundreds: 1000 input, 1100 limits, ...).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar


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
    ENCODER_OUT_OF_MEMORY = 1304  # the device ran out of memory for the batch: a later run may fit
    # 1400s: store
    STORE_CONFLICT = 1401
    STORE_IO = 1402
    STORE_MISSING = 1403  # a table or a version that is not there (cleaned up, never written)
    STORE_SCHEMA = 1404  # the stored table's columns or vector widths do not fit the configured ones
    STORE_READ_ONLY = 1405  # a view pinned to a past run
    STORE_WRITE_FAILED = 1406  # a write Lance refused for a reason other than a conflict
    STORE_BAD_VALUES = 1407  # rows the writer refuses (non-finite vectors)
    STORE_QUERY = 1408  # a query or search the store cannot answer
    # 1500s: configuration and usage
    CONFIG_INVALID = 1501

    @property
    def retryable(self) -> bool:
        """Whether the same work can succeed when tried again (a loaded node, a racing writer)."""
        return self in _RETRYABLE

    @property
    def family(self) -> int:
        """The hundred the code belongs to: 1000 input, 1100 limits, 1200 transforms, 1300 encoders,
        1400 store, 1500 configuration."""
        return int(self) // 100 * 100


_RETRYABLE = frozenset(
    {
        ErrorCode.TIMEOUT,
        ErrorCode.DECODER_CRASHED,
        ErrorCode.ENCODER_OUT_OF_MEMORY,
        ErrorCode.STORE_CONFLICT,
        ErrorCode.STORE_IO,
    }
)


class MmfsError(Exception):
    """Root of every error mmfs raises on purpose."""

    code: ErrorCode = ErrorCode.TRANSFORM_FAILED
    families: ClassVar[tuple[int, ...]] = ()  # the code families this class may carry; () = any

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if self.families and self.code.family not in self.families:
            raise ValueError(f"{type(self).__name__} cannot carry {self.code.name} ({int(self.code)})")

    @property
    def retryable(self) -> bool:
        """Whether a later run should try again: decided by the code."""
        return self.code.retryable

    def __str__(self) -> str:
        return f"[{self.code.name}] {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries inside results (decode workers, Ray tasks): keep the code,
        # which the default exception pickling (args only) would drop.
        return (_rebuild, (type(self), self.message, self.code))


def _rebuild(cls: type[MmfsError], message: str, code: ErrorCode) -> MmfsError:
    return cls(message, code=code)


class ConfigError(MmfsError):
    """The configuration or the command line is invalid (exit code 2)."""

    code = ErrorCode.CONFIG_INVALID
    families = (1500,)


class MediaError(MmfsError):
    """A source item cannot be read or decoded, or is over a limit; deterministic, so not retried."""

    code = ErrorCode.UNREADABLE
    families = (1000, 1100)


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
    """A transform failed on an item's data (or the process running it died or ran out of time)."""

    code = ErrorCode.TRANSFORM_FAILED
    families = (1200,)


class TransformTimeout(TransformError):
    """A decode or transform ran past its time budget; retryable (the node may have been loaded)."""

    code = ErrorCode.TIMEOUT


class DecoderCrashed(TransformError):
    """The isolated decoder process died on the item (a segfault, an OOM kill); retried by later runs
    up to `limits.max_attempts`, since an OOM kill may not recur on a quieter node."""

    code = ErrorCode.DECODER_CRASHED


class NonFiniteFeature(TransformError):
    """A feature came out NaN or infinite."""

    code = ErrorCode.NONFINITE_FEATURE


class EncoderError(MmfsError):
    """An encoder could not load or failed on a batch."""

    code = ErrorCode.ENCODER_FAILED
    families = (1300,)


class StoreError(MmfsError):
    """The store could not be read or written."""

    code = ErrorCode.STORE_IO
    families = (1400,)


class StoreConflict(StoreError):
    """A concurrent commit conflicted with ours."""

    code = ErrorCode.STORE_CONFLICT
