"""Speech through `mmfs run`: transcripts as `asr` text rows with times, aligned onto segments and
searchable; per-window speech probability, SNR before and after denoising, and pitch columns."""

from __future__ import annotations

import json
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

needs_librivox = pytest.mark.skipif(
    not (LIBRIVOX / f"{CLIP}.wav").is_file(),
    reason=f"{LIBRIVOX} is absent: install Debian pocketsphinx-testdata (make speech-data, as root)",
)
SR = 16_000


def _sounds(folder: Path) -> dict[str, str]:
    """Three tones and three noises of 2 s (the head's classes), named by file; their labels."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    labels = {}
    for i, freq in enumerate((330.0, 523.0, 880.0)):
        sf.write(folder / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
        labels[f"tone{i}.wav"] = "tone"
    for i, level in enumerate((0.05, 0.1, 0.2)):
        sf.write(folder / f"noise{i}.wav", (level * rng.standard_normal(len(t))).astype(np.float32), SR)
        labels[f"noise{i}.wav"] = "noise"
    return labels


@pytest.fixture(scope="module")
def speech_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, dict[str, object]]]:
    """One run over the LibriVox clip (when present), tones and noises, with every speech stage on."""
    root = tmp_path_factory.mktemp("speech")
    src = root / "src"
    src.mkdir()
    if (LIBRIVOX / f"{CLIP}.wav").is_file():
        shutil.copy(LIBRIVOX / f"{CLIP}.wav", src / "speech.wav")
    _sounds(src)
    cfg = PipelineConfig.model_validate(
        {
            "audio": {"asr": "pocketsphinx", "denoise": True, "pitch": True},
            "runner": {"isolate_decode": False},
        }
    )
    summary = run_pipeline([str(src)], cfg, root / "store", show_progress=False)
    assert summary.n_quarantined == 0 and summary.n_ok == len(list(src.iterdir()))
    store = Store(root / "store")
    rows = store.read("media", ["media_id", "uri", "duration_s"]).to_pylist()
    return store, {str(r["uri"]).rsplit("/", 1)[-1]: r for r in rows}


@needs_librivox
def test_asr_vad_snr_and_pitch_through_a_run(
    speech_store: tuple[Store, dict[str, dict[str, object]]],
) -> None:
    store, media = speech_store
    speech_id, noise_id = media["speech.wav"]["media_id"], media["noise0.wav"]["media_id"]

    asr = [r for r in store.read("text").to_pylist() if r["source"] == "asr"]
    assert asr and noise_id not in {r["media_id"] for r in asr}  # noise transcribes to nothing
    duration = float(media["speech.wav"]["duration_s"])  # type: ignore[arg-type]
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


def test_sound_head_trains_on_labelled_windows_and_applies(
    speech_store: tuple[Store, dict[str, dict[str, object]]], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from mmfs.cli import app

    store, media = speech_store
    labels = tmp_path / "labels.csv"
    names = {name: label for name, label in _sounds(tmp_path).items()}  # the same names and classes
    with labels.open("w") as fh:
        fh.write("uri,start_s,end_s,label\n")
        for name, label in names.items():
            fh.write(f"{media[name]['uri']},0,2,{label}\n")
    head = tmp_path / "head.json"
    cli = CliRunner()
    result = cli.invoke(
        app,
        [
            "train-audio-head",
            "--store",
            str(store.uri),
            "--labels",
            str(labels),
            "--out",
            str(head),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (
        doc["split"] == "media" and doc["n_test"] == 4 and doc["n_train"] == 8
    )  # one item per class held out
    assert doc["held_out_accuracy"] == 1.0 and doc["labels"] == ["noise", "tone"]
    result = cli.invoke(app, ["apply-audio-head", "--store", str(store.uri), "--head", str(head), "--json"])
    assert result.exit_code == 0, result.output
    predicted = {(w["media_id"], w["window_index"]): w["label"] for w in json.loads(result.stdout)["windows"]}
    for name, label in names.items():
        mine = [v for (m, _), v in predicted.items() if m == media[name]["media_id"]]
        assert mine == [label, label]
    bad = tmp_path / "bad.csv"
    bad.write_text("uri,start_s,end_s,label\n/nowhere.wav,0,1,tone\n")
    result = cli.invoke(
        app, ["train-audio-head", "--store", str(store.uri), "--labels", str(bad), "--out", str(head)]
    )
    assert result.exit_code == 2 and "no stored media item" in result.output
