"""Object-storage options: which URIs are remote, config over AWS_* variables, secrets redacted."""

from __future__ import annotations

import json

import pytest

from mmfs.config import config_from_dict
from mmfs.errors import ConfigError
from mmfs.stages.remote import RemoteObject, pair_sidecars
from mmfs.store.objstore import is_object_uri, redacted, resolve_options, split_s3


def test_object_uris() -> None:
    assert is_object_uri("s3://bucket/prefix") and is_object_uri("S3://b/k")
    assert not is_object_uri("/data/store") and not is_object_uri("file:///data") and not is_object_uri("s3")
    assert split_s3("s3://bucket/a/b.mp4") == ("bucket", "a/b.mp4")
    with pytest.raises(ConfigError):
        split_s3("gs://bucket/x")


def test_config_options_win_over_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "env-key",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    opts = resolve_options({"aws_access_key_id": "cfg-key", "AWS_REGION": "us-east-2"}, env)
    assert opts["aws_access_key_id"] == "cfg-key" and opts["aws_region"] == "us-east-2"
    assert opts["aws_secret_access_key"] == "env-secret" and opts["aws_endpoint"] == "http://127.0.0.1:9000"
    assert opts["allow_http"] == "true"  # the http:// endpoint was chosen on purpose
    assert resolve_options({}, {"AWS_ENDPOINT_URL": "https://s3.example"}) == {
        "aws_endpoint": "https://s3.example"
    }


def test_redacted_hides_every_secret() -> None:
    opts = {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t", "aws_session_token": "tok"}
    shown = redacted({**opts, "aws_region": "us-east-1"})
    assert shown["aws_region"] == "us-east-1"
    assert not {"AKIA1", "s3cr3t", "tok"} & set(shown.values())


def test_storage_options_stay_out_of_the_recorded_config() -> None:
    secret = {"aws_secret_access_key": "s3cr3t"}
    cfg = config_from_dict({"store": {"storage_options": secret}, "sources": {"storage_options": secret}})
    assert "s3cr3t" not in cfg.canonical_json() and "s3cr3t" not in repr(cfg)
    assert cfg.config_hash() == config_from_dict({}).config_hash()  # where, not what
    assert json.loads(cfg.model_dump_json())["store"]["storage_options"] == secret  # reaches decode workers
    with pytest.raises(ConfigError, match="storage_option"):
        config_from_dict({"store": {"storage_option": {}}})


def test_sidecars_pair_with_media_of_the_same_stem() -> None:
    objects = [
        RemoteObject(f"s3://b/{key}", 10)
        for key in ("a/clip.mp4", "a/clip.srt", "a/clip.txt", "a/notes.txt", "b/clip.vtt")
    ]
    paired = {obj.uri: sidecar for obj, sidecar in pair_sidecars(objects)}
    assert paired == {
        "s3://b/a/clip.mp4": "s3://b/a/clip.srt",  # .srt before .txt
        "s3://b/a/notes.txt": None,  # a document, not a sidecar
        "s3://b/b/clip.vtt": None,  # another folder: a document of its own
    }
