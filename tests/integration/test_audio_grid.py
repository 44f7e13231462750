"""A real run into a store: audio windows sit on the segment grid, parameters are in the schema metadata,
channels are kept per channel, and a re-run with the same config writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.stages.versions import feature_versions
from mmfs.store.db import Store
from tests import media_factory as mf

pytestmark = pytest.mark.slow


def _rows(store: Store, table: str, key: str) -> dict[str, list[dict]]:
    by_media: dict[str, list[dict]] = {}
    for row in sorted(store.read(table).to_pylist(), key=lambda r: r[key]):
        by_media.setdefault(row["media_id"], []).append(row)
    return by_media


def test_audio_windows_on_the_segment_grid_with_parameters_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # a video whose audio track runs a little past its last frame, and a stereo recording
    mf.write_video(data / "clip.mp4", times_s=mf.constant_rate_times(23, 10.0), audio_tone_hz=330.0)
    left, right = mf.sine(440, 1.7, 22050, 0.5), mf.sine(2000, 1.7, 22050, 0.5)
    mf.write_wav(data / "stereo.wav", samples=np.stack([left, right], 1), sample_rate=22050)
    cfg = config_from_dict(
        {
            "align": {"segment_s": 0.5},
            "audio": {"channels": "keep", "spectrogram": ["magnitude"], "n_mels": 32},
            "runner": {"isolate_decode": False},
        }
    )
    store_dir = tmp_path / "store"
    run_pipeline([str(data)], cfg, store_dir, show_progress=False)
    store = Store(store_dir)
    audio, segments = _rows(store, "audio", "window_index"), _rows(store, "segments", "segment_index")
    media = {r["media_id"]: Path(r["uri"]).name for r in store.read("media").to_pylist()}
    assert sorted(media.values()) == ["clip.mp4", "stereo.wav"] and audio.keys() == segments.keys()
    for media_id, windows in audio.items():
        spans = [(w["start_s"], w["end_s"]) for w in windows]
        assert spans == [(s["start_s"], s["end_s"]) for s in segments[media_id]], media[media_id]
        assert [w["window_index"] for w in windows] == [s["segment_index"] for s in segments[media_id]]
    wav = next(audio[m] for m, name in media.items() if name == "stereo.wav")
    assert [(w["start_s"], w["end_s"]) for w in wav] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 1.7)]
    first = wav[0]
    channels = np.array(first["log_mel_channels"])
    assert first["n_channels"] == 2 and channels.shape == (2, 32, first["n_frames"])
    bands = channels.mean(axis=2).argmax(axis=1)
    assert bands[0] < bands[1]  # 440 Hz on the left, 2000 Hz on the right: never mixed, never transposed
    stats = np.array(first["stats_channels"])
    assert stats.shape == (2, 5) and stats[0, 2] < stats[1, 2]  # centroid_hz per channel
    assert np.array(first["spectrogram_magnitude"]).shape == (201, first["n_frames"])
    assert first["spectrogram_power"] is None and len(first["mfcc_delta2"]) == 20

    meta = store.table("audio").schema.metadata
    params = json.loads(meta[b"mmfs.features"])
    version = feature_versions(cfg)["audio"]
    assert params["feature_version"] == version and {
        r["feature_version"] for r in store.read("audio").to_pylist()
    } == {version}
    assert (params["n_fft"], params["hop"], params["n_mels"], params["mel_scale"], params["norm"]) == (
        400,
        160,
        32,
        "slaney",
        "slaney",
    )
    assert (params["power"], params["window"], params["backend"], params["fmax"]) == (
        2,
        "hann",
        "librosa",
        8000,
    )

    versions = store.versions()
    again = run_pipeline([str(data)], cfg, store_dir, show_progress=False)
    assert again.n_skipped == 2
    assert {t: v for t, v in Store(store_dir).versions().items() if t != "runs"} == {
        t: v for t, v in versions.items() if t != "runs"
    }

    htk = config_from_dict(
        {**json.loads(cfg.canonical_json()), "audio": {**cfg.audio.model_dump(), "mel_scale": "htk"}}
    )
    assert feature_versions(htk)["audio"] != version  # a new audio option changes the audio rows' version
    run_pipeline([str(data)], htk, store_dir, show_progress=False)
    meta = Store(store_dir).table("audio").schema.metadata
    assert json.loads(meta[b"mmfs.features"])["mel_scale"] == "htk"
    assert (
        json.loads(meta[f"mmfs.features.{version}".encode()])["mel_scale"] == "slaney"
    )  # older rows' record
