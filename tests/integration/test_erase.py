"""GDPR erasure: an item leaves every table, and with --purge-history every file under the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.config import PipelineConfig
from mmfs.errors import ConfigError
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.store.erase import erase
from tests import media_factory as mf

pytestmark = pytest.mark.slow
SECRET = "Zebulon Quartermaine lives at 42 Wisteria Lane and his phone is 555 0199"


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix != ".log" and needle in p.read_bytes()]


def test_erase_then_purge_leaves_no_trace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "private.txt").parent.mkdir(parents=True)
    (data / "private.txt").write_text(SECRET + ". " + SECRET.replace("42", "43") + ".")
    mf.write_image(data / "keep.png")
    store_dir = tmp_path / "store"
    run_pipeline([str(data)], PipelineConfig(), store_dir, show_progress=False)
    store = Store(store_dir)
    media = {Path(r["uri"]).name: r["media_id"] for r in store.read("media", ["uri", "media_id"]).to_pylist()}
    secret_id = media["private.txt"]
    vector = np.array(store.read("text", ["embedding"]).column("embedding").to_pylist()[0], dtype=np.float32)
    needles = [b"Zebulon Quartermaine", vector.tobytes()]
    assert all(_files_containing(store_dir, n) for n in needles)  # the check can see the data

    result = erase(store, [secret_id])
    assert result["deleted"]["media"] == 1 and result["deleted"]["text"] >= 1 and not result["purged"]
    store = Store(store_dir)
    assert store.count("text") == 0 and store.count("media") == 1
    assert all(_files_containing(store_dir, n) for n in needles)  # a plain delete keeps history

    purged = erase(store, [secret_id], purge_history=True)
    assert purged["purged"] and purged["versions_removed"] > 0
    assert not any(_files_containing(store_dir, n) for n in needles)
    store = Store(store_dir)
    assert [Path(u).name for u in store.read("media", ["uri"]).column("uri").to_pylist()] == ["keep.png"]
    assert store.count("segments") == 1 and store.count("frames") == 1


def test_erase_refuses_what_is_not_a_media_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with pytest.raises(ConfigError, match="not a media_id"):
        erase(store, ["x' OR 1=1 --"])
    with pytest.raises(ConfigError):
        erase(store, [])
