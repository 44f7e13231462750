"""Speech by default, only where there is speech: a default-config run transcribes the VAD's utterances
of a recorded voice into timed `asr` text rows (segments, full-text search and the vocabulary take them
like captions), while tones and music hand the recogniser nothing."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.encoders import speech_asr
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.store.search import search_text_segments

SR = 16_000
SPEECH = SAMPLE_DIR / "dashwood_speech.wav"  # LibriVox: "and mister john dashwood had then leisure ..."


def _default() -> PipelineConfig:
    """The default config; decoding in-process so that the recogniser's call counter is this one's."""
    return PipelineConfig.model_validate({"runner": {"isolate_decode": False}})


def _music(folder: Path) -> list[str]:
    """A steady tone and a melody of harmonic notes over a kick drum: sound, no speech."""
    t = np.arange(6 * SR) / SR
    sf.write(folder / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    melody = np.zeros(len(t))
    note = SR // 4
    for k, start in enumerate(range(0, len(t) - note, note)):
        tt = np.arange(note) / SR
        f = (261.6, 329.6, 392.0, 523.3)[k % 4]
        melody[start : start + note] += np.exp(-4 * tt) * sum(
            0.15 / h * np.sin(2 * np.pi * f * h * tt) for h in (1, 2, 3)
        )
        melody[start : start + 1500] += 0.4 * np.exp(-tt[:1500] * 30) * np.sin(2 * np.pi * 60 * tt[:1500])
    sf.write(folder / "melody.wav", melody.astype(np.float32), SR)
    return ["tone.wav", "melody.wav"]


def test_the_default_config_makes_no_asr_call_for_tones_and_music(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    names = _music(src)
    before = dict(speech_asr.CALLS)
    summary = run_pipeline([str(src)], _default(), tmp_path / "store", show_progress=False)
    assert summary.n_ok == len(names) and summary.n_quarantined == 0
    assert before == speech_asr.CALLS  # no utterance reached a recogniser
    store = Store(tmp_path / "store")
    assert store.read("audio").num_rows > 0  # the audio itself was analysed
    assert not store.has("text") or store.read("text").num_rows == 0


def test_the_default_config_transcribes_speech_into_timed_asr_rows(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SPEECH, src / "speech.wav")  # without its .txt sidecar: the words come from ASR alone
    _music(src)
    before = speech_asr.CALLS["utterances"]
    summary = run_pipeline([str(src)], _default(), tmp_path / "store", show_progress=False)
    assert summary.n_ok == 3 and summary.n_quarantined == 0
    store = Store(tmp_path / "store")
    media = {Path(r["uri"]).name: r for r in store.read("media").to_pylist()}
    speech = media["speech.wav"]
    texts = store.read("text").to_pylist()
    assert {r["media_id"] for r in texts} == {speech["media_id"]}  # the tone and the melody: no text
    asr = sorted((r for r in texts if r["source"] == "asr"), key=lambda r: r["start_s"])
    assert asr and speech_asr.CALLS["utterances"] - before == len(asr)  # one call per utterance
    assert all(0.0 <= r["start_s"] < r["end_s"] <= speech["duration_s"] + 1e-6 for r in asr)
    assert all(a["end_s"] <= b["start_s"] for a, b in itertools.pairwise(asr))
    words = " ".join(r["text"] for r in asr).split()
    assert {"john", "leisure", "consider", "power"} <= set(words)
    assert all(r["embedding"] is not None and r["tokens"] for r in asr)  # analysed and embedded

    segments = store.read("segments", ["media_id", "start_s", "end_s", "transcript"]).to_pylist()
    spoken = [s for s in segments if s["media_id"] == speech["media_id"] and s["transcript"]]
    assert any("leisure" in s["transcript"] for s in spoken)
    for seg in spoken:  # a segment carries the words of the utterances it overlaps, and only those
        assert any(seg["end_s"] > r["start_s"] and seg["start_s"] < r["end_s"] for r in asr)
    hits = search_text_segments(store, "leisure", k=3)
    assert hits and hits[0].media_id == speech["media_id"]
    vocabulary = {r["term"] for r in store.read("vocabulary").to_pylist()}
    assert {"leisure", "consider"} <= vocabulary
    assert speech["language"] == "en" and 0.5 < speech["language_confidence"] <= 1.0


def test_asr_none_leaves_speech_untranscribed(tmp_path: Path) -> None:
    """The switch still turns it off: the voice keeps its speech probability, and no text row."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SPEECH, src / "speech.wav")
    before = dict(speech_asr.CALLS)
    cfg = PipelineConfig.model_validate({"runner": {"isolate_decode": False}, "audio": {"asr": "none"}})
    run_pipeline([str(src)], cfg, tmp_path / "store", show_progress=False)
    store = Store(tmp_path / "store")
    assert before == speech_asr.CALLS
    assert not store.has("text") or store.read("text").num_rows == 0
    assert max(r["speech_prob"] for r in store.read("audio").to_pylist()) > 0.8
