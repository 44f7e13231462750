"""Store failures in one line: an unreachable endpoint says which and why, not the Rust debug dump."""

from __future__ import annotations

import re
import socket

import pytest

from mmfs.errors import ErrorCode, StoreConflict
from mmfs.store.boundary import store_error, summary
from mmfs.store.db import Store

# What Lance 14 printed for `mmfs status` against an endpoint nothing listens on (cut, as captured).
REFUSED = (
    'Invalid input, Failed to connect to namespace: IO { source: Generic { store: "S3", source: ListRequest '
    "{ source: RetryError(RetryErrorImpl { method: GET, uri: Some(http://127.0.0.1:9/bucket?list-type=2&"
    "prefix=nostore%2F__manifest%2F_versions%2F), retries: 3, max_retries: 3, elapsed: 647.48ms, "
    "retry_timeout: 180s, inner: Http(HttpError { kind: Connect, source: reqwest::Error { kind: Request, "
    'source: hyper_util::client::legacy::Error(Connect, ConnectError("tcp connect error", 127.0.0.1:9, Os '
    '{ code: 111, kind: ConnectionRefused, message: "Connection refused" })) } }) }) } }, location: '
    'Location { file: "/root/.cargo/registry/src/lance-io-13.0.0/src/object_store.rs", line: 1506 } }'
)
DNS_SOURCE = '"dns error", Custom { kind: Uncategorized, error: "failed to lookup address" }'
NO_DNS = re.sub(
    r'"tcp connect error".*?"Connection refused" \}',
    DNS_SOURCE,
    REFUSED.replace("http://127.0.0.1:9", "https://s3.amazonaws.com"),
)


def test_request_errors_say_which_endpoint_and_why() -> None:
    assert summary(OSError(REFUSED)) == "cannot reach http://127.0.0.1:9 (connection refused)"
    assert (
        summary(OSError(NO_DNS)) == "cannot reach https://s3.amazonaws.com (its host name does not resolve)"
    )
    forbidden = "Generic S3 error: RetryError { uri: Some(http://minio:9000/b?x), status: 403, body: <xml> }"
    assert summary(OSError(forbidden)) == "http://minio:9000 answered HTTP 403 (access denied)"
    assert summary(ValueError("Table 'frames' was not found")) == "Table 'frames' was not found"


def test_store_error_is_one_line_with_its_family() -> None:
    err = store_error("cannot open store s3://bucket/nostore", OSError(REFUSED))
    assert str(err) == (
        "[STORE_IO] cannot open store s3://bucket/nostore: "
        "cannot reach http://127.0.0.1:9 (connection refused)"
    )
    assert err.retryable and "\n" not in str(err) and "Location" not in str(err)
    assert isinstance(
        store_error("commit", OSError("Retryable commit conflict for version 7")), StoreConflict
    )
    missing = store_error("read", FileNotFoundError("no such dataset"))
    assert missing.code == ErrorCode.STORE_MISSING and not missing.retryable


def test_an_unreachable_endpoint_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real connection to a closed loopback port, through LanceDB: the message names it plainly."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Exception) as caught:
        Store("s3://bucket/nostore").table_names()
    assert str(caught.value).endswith(f"cannot reach http://127.0.0.1:{port} (connection refused)")
    assert len(str(caught.value)) < 200
