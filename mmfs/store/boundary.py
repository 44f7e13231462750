"""Lance and object-store failures become mmfs errors here, and only here, in one readable line.

Lance surfaces a failed request as the Rust error's debug dump (`RetryError(RetryErrorImpl { …
hyper_util … Location { file: … } })`): a few hundred characters a person cannot act on. This module
keeps the whole text for the log and says what happened in words: which endpoint could not be
reached, that access was denied, that something is missing. Conflicts are told by type
(`lance.commit.CommitConflictError`) where Lance gives one.
"""

from __future__ import annotations

import logging
import re

from mmfs.errors import ErrorCode, StoreConflict, StoreError

log = logging.getLogger(__name__)

_CONFLICT_WORDS = ("conflict", "retryable", "concurrent")  # what Lance says when another commit won
_URI = re.compile(r"uri: Some\((?P<uri>[a-z]+://[^/)\s]+)")
_CONNECT = re.compile(r'ConnectError\("(?P<what>[^"]+)"')
_OS_KIND = re.compile(r"kind: (?P<kind>ConnectionRefused|TimedOut|ConnectionReset|NotFound|PermissionDenied)")
_STATUS = re.compile(r"status(?: code)?: (?P<status>[1-5]\d\d)\b")
_FRIENDLY = {
    "ConnectionRefused": "connection refused",
    "TimedOut": "timed out",
    "ConnectionReset": "connection reset",
    "NotFound": "not found",
    "PermissionDenied": "permission denied",
}
_HTTP = {
    "400": "bad request",
    "401": "not authenticated",
    "403": "access denied",
    "404": "not found",
    "409": "conflict",
    "500": "server error",
    "503": "service unavailable",
}


def is_conflict(err: BaseException) -> bool:
    """Whether a failed commit lost a race with another writer (so retrying it can succeed)."""
    try:
        from lance.commit import CommitConflictError
    except ImportError:  # pragma: no cover - pylance is a core dependency
        CommitConflictError = ()  # type: ignore[assignment,misc]
    if isinstance(err, CommitConflictError):
        return True
    text = str(err).lower()
    return any(word in text for word in _CONFLICT_WORDS)


def summary(err: BaseException) -> str:
    """What went wrong, in one line: the endpoint and the reason when Lance dumped a request error."""
    text = str(err)
    endpoint = _URI.search(text)
    where = f" {endpoint['uri']}" if endpoint else ""
    connect, kind = _CONNECT.search(text), _OS_KIND.search(text)
    if connect:
        reason = _FRIENDLY[kind["kind"]] if kind else connect["what"]
        if "dns" in connect["what"]:
            reason = "its host name does not resolve"
        return f"cannot reach{where or ' the object store'} ({reason})"
    status = _STATUS.search(text)
    if status and endpoint:
        return f"{endpoint['uri']} answered HTTP {status['status']} ({_HTTP.get(status['status'], 'error')})"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    cut = min((i for i in (first.find(" {"), first.find("(RetryError")) if i > 0), default=len(first))
    line = first[:cut].rstrip(" ,:")
    return line if len(line) <= 200 else line[:197] + "..."


def store_error(what: str, err: BaseException) -> StoreError:
    """The mmfs error for a failed store operation `what`: one line, the full text in the log."""
    log.debug("%s: %s", what, err)
    if is_conflict(err):
        return StoreConflict(f"{what}: {summary(err)}")
    if isinstance(err, FileNotFoundError):
        return StoreError(f"{what}: {summary(err)}", code=ErrorCode.STORE_MISSING)
    return StoreError(f"{what}: {summary(err)}")
