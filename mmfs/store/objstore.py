"""Object-storage settings: which URIs are remote, the options that reach them, and an S3 filesystem.

The store (Lance) and the sources (pyarrow's S3 filesystem) take the same option names, Lance's
(`aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `aws_region`,
`allow_http`). Options from the config file win over the standard `AWS_*` environment variables,
which fill what the config leaves out. Secrets never reach a log line: use `redacted()` to show options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mmfs.errors import ConfigError

OBJECT_SCHEMES = ("s3", "s3a", "gs", "az", "abfss")
_ENV_KEYS = {  # Lance option name: environment variables, first found wins
    "aws_endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "aws_session_token": ("AWS_SESSION_TOKEN",),
    "aws_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "allow_http": ("AWS_ALLOW_HTTP",),
}
_SECRET_WORDS = ("secret", "token", "password", "key_id", "credential", "sas")


def is_object_uri(uri: str | os.PathLike[str]) -> bool:
    """Whether `uri` names object storage (`s3://…` and friends) rather than a local path."""
    scheme, sep, _ = str(uri).partition("://")
    return bool(sep) and scheme.lower() in OBJECT_SCHEMES


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/part` as (`bucket`, `key/part`); ConfigError for other schemes."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in ("s3", "s3a"):
        raise ConfigError(f"{uri}: only s3:// object URIs are supported here")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{uri}: no bucket")
    return bucket, key


def resolve_options(
    explicit: Mapping[str, str] | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Options for object storage: the explicit ones, completed from the standard AWS_* variables."""
    env = os.environ if environ is None else environ
    out = {key.lower(): str(value) for key, value in (explicit or {}).items()}
    for key, names in _ENV_KEYS.items():
        if key not in out:
            value = next((env[n] for n in names if env.get(n)), None)
            if value is not None:
                out[key] = value
    if "allow_http" not in out and out.get("aws_endpoint", "").startswith("http://"):
        out["allow_http"] = "true"  # an http:// endpoint the user chose is meant to be used
    return out


def redacted(options: Mapping[str, str]) -> dict[str, str]:
    """The options with every secret value replaced by `***`, safe to log or print."""
    return {k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in options.items()}


def s3_filesystem(options: Mapping[str, str] | None) -> Any:
    """A pyarrow S3 filesystem for the options (config first, then AWS_* variables)."""
    import pyarrow.fs as pafs

    opts = resolve_options(options)
    endpoint = opts.get("aws_endpoint")
    scheme = "https"
    if endpoint and "://" in endpoint:
        scheme, _, endpoint = endpoint.partition("://")
    elif opts.get("allow_http", "").lower() == "true":
        scheme = "http"
    kwargs: dict[str, Any] = {"scheme": scheme}
    if endpoint:
        kwargs["endpoint_override"] = endpoint
    if opts.get("aws_access_key_id") and opts.get("aws_secret_access_key"):
        kwargs["access_key"] = opts["aws_access_key_id"]
        kwargs["secret_key"] = opts["aws_secret_access_key"]
        if opts.get("aws_session_token"):
            kwargs["session_token"] = opts["aws_session_token"]
    if opts.get("aws_region"):
        kwargs["region"] = opts["aws_region"]
    return pafs.S3FileSystem(**kwargs)
