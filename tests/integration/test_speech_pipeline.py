"""Speech through `mmfs run`: transcripts as `asr` text rows with times, aligned onto segments and
searchable; per-window speech probability, SNR before and after denoising, and pitch columns."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmfs.config import PipelineConfig
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.store.search import search_text_segments

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CLIP = "sense_and_sensibility_01_austen_64kb-0930"  # "he might even have been made amiable himself"

pytestmark = pytest.mark.skipif(
    not (LIBRIVOX / f"{CLIP}.wav").is_file(),
    reason=f"{LIBRIVOX} is absent: install Debian pocketsphinx-testdata (make speech-data, as root)",
)


def test_asr_vad_snr_and_pitch_through_a_run(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(LIBRIVOX / f"{CLIP}.wav", src / "speech.wav")
    noise = 0.05 * np.random.default_rng(0).standard_normal(3 * 16_000)
    sf.write(src / "noise.wav", noise.astype(np.float32), 16_000)
    cfg = PipelineConfig.model_validate(
        {
            "audio": {"asr": "pocketsphinx", "denoise": True, "pitch": True},
            "runner": {"isolate_decode": False},
        }
    )
    summary = run_pipeline([str(src)], cfg, tmp_path / "store", show_progress=False)
    assert summary.n_ok == 2 and summary.n_quarantined == 0
    store = Store(tmp_path / "store")
    media = {
        r["uri"].rsplit("/", 1)[-1]: r
        for r in store.read("media", ["media_id", "uri", "duration_s"]).to_pylist()
    }
    speech_id, noise_id = media["speech.wav"]["media_id"], media["noise.wav"]["media_id"]

    asr = [r for r in store.read("text").to_pylist() if r["source"] == "asr"]
    assert asr and {r["media_id"] for r in asr} == {speech_id}  # noise transcribes to nothing
    duration = media["speech.wav"]["duration_s"]
    assert all(0 <= r["start_s"] < r["end_s"] <= duration for r in asr)
    words = " ".join(r["text"] for r in asr).split()
    assert {"might", "amiable", "himself"} <= set(words)
    assert all(r["embedding"] is not None and r["tokens"] for r in asr)  # analysed and embedded

    segments = store.read("segments", ["media_id", "start_s", "end_s", "transcript"]).to_pylist()
    spoken = [s for s in segments if s["media_id"] == speech_id]
    assert any("amiable" in (s["transcript"] or "") for s in spoken)
    hits = search_text_segments(store, "amiable", k=5)  # "himself" is a stop word of the index
    assert hits and hits[0].media_id == speech_id

    audio = store.read("audio").to_pylist()
    by_media: dict[str, list[dict[str, object]]] = {}
    for row in audio:
        by_media.setdefault(str(row["media_id"]), []).append(row)
    speech_rows, noise_rows = by_media[speech_id], by_media[noise_id]
    assert max(float(r["speech_prob"]) for r in speech_rows) > 0.8  # type: ignore[arg-type]
    assert max(float(r["speech_prob"]) for r in noise_rows) < 0.2  # type: ignore[arg-type]
    for row in speech_rows + noise_rows:
        assert row["snr_db"] is not None and row["snr_db_denoised"] is not None
        assert row["voiced_frac"] is not None
    spoken_f0 = [r["f0_hz"] for r in speech_rows if float(r["speech_prob"]) > 0.5]  # type: ignore[arg-type]
    assert spoken_f0 and all(f0 is not None and 60 < float(f0) < 250 for f0 in spoken_f0)  # a man reading
    assert "speech_prob" in store.provenance("audio") and "f0_hz" in store.provenance("audio")
