"""Declared sizes beyond the configured limits are refused at probe, before any decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import config_from_dict
from mmfs.errors import ErrorCode
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.sources import SourceItem
from mmfs.stages.decode import extract
from mmfs.stages.items import PendingItem
from tests import media_factory as mf


def _extract(path: Path, limits: dict[str, int]) -> tuple[str, int | None, str]:
    cfg = config_from_dict({"limits": limits})
    pending = PendingItem(
        sha256_file(path), SourceItem(path=path, uri=str(path)), [str(path)], path.stat().st_size
    )
    ex = extract(pending, cfg)
    if not ex.failures:
        return ex.status, None, ""
    failure = ex.failures[0]
    return ex.status, int(failure.error.code), failure.stage


@pytest.mark.parametrize(
    ("channels", "rate", "limits"),
    [(3, 16000, {"max_channels": 2}), (1, 48000, {"max_sample_rate": 44100})],
    ids=["channels", "sample_rate"],
)
def test_audio_format_beyond_limits_is_refused_at_probe(
    tmp_path: Path, channels: int, rate: int, limits: dict[str, int]
) -> None:
    wav = mf.write_wav(tmp_path / "a.wav", duration_s=0.5, sample_rate=rate, channels=channels)
    assert _extract(wav, limits) == ("failed", int(ErrorCode.LIMIT_AUDIO_FORMAT), "probe")
    assert _extract(wav, {})[0] == "ok"  # the defaults accept it
