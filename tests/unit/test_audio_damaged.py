"""Audio decoding reads past damaged packets in every codec: counted, the rest decoded, windows kept.

Each file is 3 s of tone written with PyAV (tests/damaged_audio.py), then one packet damaged: its first
half zeroed, or the packet cut short, at the first, middle or last packet.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mmfs.config import AudioConfig
from mmfs.errors import ErrorCode, MediaDecodeError
from mmfs.transforms.audio.windows import DecodedAudio, decode_audio, window_features
from tests import damaged_audio as da

SECONDS = 3.0
WHERE = ("first", "middle", "last")
# Losses no timestamp or declared length can show: the last Ogg page carries the end granule itself,
# and the last MP3 frame cut short still decodes whole. FFmpeg sees nothing there either.
INVISIBLE = {("opus", "last"), ("vorbis", "last"), ("mp3", "last", "cut")}


def _decode(path: Path) -> DecodedAudio:
    return decode_audio(path, sample_rate=16_000, max_duration_s=60.0)


@pytest.mark.parametrize("name", sorted(da.CODECS))
def test_an_undamaged_file_counts_no_errors(tmp_path: Path, name: str) -> None:
    """The counting never fires on a clean stream (priming, padding and pre-skip are not losses)."""
    path = tmp_path / f"clean.{da.CODECS[name].suffix}"
    da.write(path, name, SECONDS, "first", "none")
    audio = _decode(path)
    assert audio.decode_errors == 0 and audio.duration_s == pytest.approx(SECONDS, abs=0.05)


@pytest.mark.parametrize("damage", ["bytes", "cut"])
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("name", sorted(da.CODECS))
def test_a_damaged_packet_is_counted_and_the_rest_decodes(
    tmp_path: Path, name: str, where: da.Where, damage: da.Damage
) -> None:
    """Decoding never fails on one bad packet; the damage is counted; every window the audio reaches
    has its features, and audio after the damage is still the tone."""
    path = tmp_path / f"{name}_{where}_{damage}.{da.CODECS[name].suffix}"
    da.write(path, name, SECONDS, where, damage)
    audio = _decode(path)
    if (name, where) in INVISIBLE or (name, where, damage) in INVISIBLE:
        assert audio.decode_errors >= 0
    else:
        assert audio.decode_errors >= 1
    assert audio.duration_s >= SECONDS - 1.05  # at most one Ogg page (1 s) is lost
    windows = window_features(audio, segment_s=1.0, cfg=AudioConfig(), grid_duration_s=SECONDS)
    assert len(windows) == min(3, math.ceil(round(audio.duration_s, 3)))
    assert all(np.isfinite(w.log_mel).all() for w in windows)
    tail = audio.samples[-4000:-2000]  # 125 ms before the end: past a first or middle loss
    if where != "last":
        assert np.sqrt(np.mean(tail**2)) > 0.1


@pytest.mark.parametrize("name", ["opus", "vorbis"])
def test_a_lost_first_ogg_page_is_silence_in_its_place(tmp_path: Path, name: str) -> None:
    """The granule positions put what follows at its own time: silence first, then the tone."""
    path = tmp_path / f"{name}.ogg"
    da.write(path, name, SECONDS, "first", "bytes")
    audio = _decode(path)
    assert audio.decode_errors >= 1 and audio.duration_s == pytest.approx(SECONDS, abs=0.05)
    assert np.abs(audio.samples[:8000]).max() == 0.0  # the lost page's half second and more
    assert np.sqrt(np.mean(audio.samples[-8000:] ** 2)) > 0.1


def test_a_track_with_nothing_decodable_is_an_audio_decode_error(tmp_path: Path) -> None:
    """Only a stream where every packet fails loses its audio."""
    path = tmp_path / "all_bad.avi"
    da.write(path, "ac3", SECONDS, "first", "all_zero")
    with pytest.raises(MediaDecodeError) as err:
        _decode(path)
    assert err.value.code == ErrorCode.AUDIO_DECODE and "none decoded" in err.value.message


@pytest.mark.slow
def test_an_avi_whose_ac3_track_starts_damaged_lands_with_every_window(tmp_path: Path) -> None:
    """Issue 22's case: MPEG-4 video, AC3 audio whose first packet is damaged. The item lands with an
    audio row per segment, flagged with the count, and no AUDIO_DECODE failure; it is `degraded`
    (audio was lost) in its media row, the run summary and the run report alike."""
    from mmfs.config import config_from_dict
    from mmfs.pipelines.run import run_pipeline
    from mmfs.report import run_report
    from mmfs.store.db import Store

    data = tmp_path / "data"
    data.mkdir()
    da.write(data / "film.avi", "ac3", SECONDS, "first", "bytes")
    store_dir = tmp_path / "store"
    summary = run_pipeline(
        [str(data)], config_from_dict({"runner": {"isolate_decode": False}}), store_dir, show_progress=False
    )
    store = Store(store_dir)
    (media,) = store.read("media").to_pylist()
    (flag,) = [f for f in media["quality_flags"] if f.startswith("audio_decode_errors=")]
    assert int(flag.split("=")[1]) >= 1 and media["error"] is None and media["status"] == "degraded"
    assert (summary.n_ok, summary.n_degraded, summary.n_quarantined) == (1, 1, 0)
    assert run_report(store, summary.run_id)["outcomes"] == {"degraded": 1, "skipped": 0}
    assert not store.has("quarantine") or store.read("quarantine").num_rows == 0
    windows = sorted((r["start_s"], r["end_s"]) for r in store.read("audio").to_pylist())
    segments = sorted((r["start_s"], r["end_s"]) for r in store.read("segments").to_pylist())
    assert windows == segments and windows[:3] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
