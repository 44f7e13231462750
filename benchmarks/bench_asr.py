"""Speech recognition by default: what it costs where there is no speech, how fast it is where there is,
and how many words it gets right next to pocketsphinx decoding the same audio on its own.

    python benchmarks/bench_asr.py [--repeat N] [--json]        (make bench-asr)

Three figures, each from whole `mmfs run`s (in this process, models warm, a fresh store per run):
- **Cost on a speech-free corpus**: the default config (ASR on: pocketsphinx over the VAD's
  utterances) against `audio.asr: none`, alternating, best of `--repeat`, wall and CPU seconds; and
  how many utterances the recogniser was handed (it should be none). The corpus: generated tones,
  chords, sweeps, noises and a synthetic melody with drums, the freedesktop sound theme without its
  spoken channel names (Debian `sound-theme-freedesktop`), and instrument, loop and pad samples from
  Debian `lmms-common` (`apt-get download` + `dpkg -x` into ~/.cache/mmfs-bench/asr; left out, with
  the reason printed, when apt-get cannot fetch it).
- **Real-time factor on speech**: the LibriVox clips of Debian `pocketsphinx-testdata` (`make
  speech-data`): seconds of audio per second of the ASR stage (VAD utterances, then pocketsphinx on
  each), best of `--repeat`, and the same for the whole run.
- **Word error rate** on those clips against their `transcription` file: mmfs's `asr` text rows from a
  default-config run, next to pocketsphinx decoding each whole clip as one utterance (its `single`
  mode) and pocketsphinx's own endpointer feeding its decoder (its `live` mode), the same model and
  the same audio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mmfs.config import PipelineConfig, config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")
CACHE = Path.home() / ".cache" / "mmfs-bench" / "asr"
SR = 16_000
LMMS_DIRS = ("instruments", "bassloops", "stringsnpads", "latin", "drums", "beats", "misc")
LMMS_FILES = 16
REALMEDIA_LMMS = Path.home() / ".cache" / "mmfs" / "realmedia" / "pkgs" / "lmms-common"  # make realmedia


def speech_free_corpus(root: Path) -> list[str]:
    """Write the speech-free corpus into `root`; the notes on what was left out."""
    root.mkdir(parents=True, exist_ok=True)
    notes = []
    _generated(root)
    if FREEDESKTOP.is_dir():
        for path in sorted(FREEDESKTOP.glob("*.oga")):
            if not path.name.startswith("audio-channel-"):  # those speak the channel's name
                shutil.copy(path, root / f"fd_{path.name}")
    else:
        notes.append(f"freedesktop sounds left out: {FREEDESKTOP} is absent (make speech-data)")
    lmms, why = _lmms_samples()
    if lmms is None:
        notes.append(f"lmms samples left out: {why}")
    else:
        found = [p for sub in LMMS_DIRS for p in sorted((lmms / sub).glob("*.ogg"))]
        for path in sorted(found, key=lambda p: -p.stat().st_size)[:LMMS_FILES]:  # the longest ones
            shutil.copy(path, root / f"lmms_{path.parent.name}_{path.name}")
    return notes


def _generated(root: Path) -> None:
    """Tones, a chord, a sweep, white and pink noise, silence, and a synthetic melody over drums."""
    rng = np.random.default_rng(0)
    t = np.arange(12 * SR) / SR
    clips = {
        "tone_220.wav": 0.3 * np.sin(2 * np.pi * 220 * t),
        "tone_1k.wav": 0.3 * np.sin(2 * np.pi * 1000 * t),
        "chord.wav": sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
        "sweep.wav": 0.3 * np.sin(2 * np.pi * (100 + 300 * t) * t),
        "white_noise.wav": 0.1 * rng.standard_normal(len(t)),
        "pink_noise.wav": _pink(rng, len(t)),
        "silence.wav": np.zeros(len(t)),
        "melody_drums.wav": _melody(rng, t),
    }
    for name, samples in clips.items():
        sf.write(root / name, np.asarray(samples, dtype=np.float32), SR)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    pink = np.fft.irfft(spectrum, n)
    return 0.3 * pink / np.abs(pink).max()


def _melody(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Eighth notes of a pentatonic tune with three harmonics, a kick and a hi-hat on the beat."""
    out = np.zeros(len(t))
    note = SR // 4
    scale = (261.6, 293.7, 329.6, 392.0, 440.0, 523.3)
    for k, start in enumerate(range(0, len(t) - note, note)):
        f = scale[int(rng.integers(len(scale)))]
        tt = np.arange(note) / SR
        env = np.exp(-4 * tt)
        out[start : start + note] += env * sum(0.15 / h * np.sin(2 * np.pi * f * h * tt) for h in (1, 2, 3))
        if k % 2 == 0:  # kick: a falling sine burst
            out[start : start + 2000] += 0.4 * np.exp(-tt[:2000] * 30) * np.sin(2 * np.pi * 60 * tt[:2000])
        else:  # hi-hat: a burst of noise
            out[start : start + 800] += 0.05 * rng.standard_normal(800) * np.exp(-tt[:800] * 200)
    return out


def _lmms_samples() -> tuple[Path | None, str]:
    """lmms-common's sample folder, fetched into the cache once (None and why when it cannot be)."""
    for root in (REALMEDIA_LMMS, CACHE / "lmms"):
        samples = root / "usr" / "share" / "lmms" / "samples"
        if samples.is_dir():
            return samples, ""
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["apt-get", "download", "lmms-common"], cwd=debs, check=True, capture_output=True, timeout=300
        )
        deb = next(debs.glob("lmms-common_*.deb"))
        subprocess.run(
            ["dpkg", "-x", str(deb), str(CACHE / "lmms")], check=True, capture_output=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError, StopIteration) as err:
        return None, f"apt-get download lmms-common failed ({err})"
    return samples, ""


def timed_run(src: Path, cfg: PipelineConfig, work: Path) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one `mmfs run` over `src` into a fresh store, and its summary."""
    store = Path(tempfile.mkdtemp(dir=work))
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_pipeline([str(src)], cfg, store, show_progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(store)
    return wall, cpu, summary


def speech_free_cost(src: Path, repeat: int, work: Path) -> dict[str, Any]:
    """Default config (ASR on) vs `asr: none` on the speech-free corpus, alternating."""
    from mmfs.encoders import speech_asr

    configs = {"asr_default": _cfg({}), "asr_none": _cfg({"audio": {"asr": "none"}})}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
    before = dict(speech_asr.CALLS)
    for cfg in configs.values():  # warm-up: models load, caches fill
        timed_run(src, cfg, work)
    for _ in range(repeat):
        for name, cfg in configs.items():
            wall, cpu, summary = timed_run(src, cfg, work)
            times[name].append((wall, cpu))
    out: dict[str, Any] = {
        "files": len(list(src.iterdir())),
        "media_s": round(summary.media_seconds, 1),
        "asr_utterances": speech_asr.CALLS["utterances"] - before["utterances"],
        "asr_seconds": round(speech_asr.CALLS["seconds"] - before["seconds"], 2),
    }
    for name, pairs in times.items():
        out[f"{name}_wall_s"] = round(min(w for w, _ in pairs), 3)
        out[f"{name}_cpu_s"] = round(min(c for _, c in pairs), 3)
        out[f"{name}_wall_median_s"] = round(statistics.median(w for w, _ in pairs), 3)
    out["overhead_wall"] = round(out["asr_default_wall_s"] / out["asr_none_wall_s"] - 1, 4)
    out["overhead_cpu"] = round(out["asr_default_cpu_s"] / out["asr_none_cpu_s"] - 1, 4)
    return out


def _cfg(extra: dict[str, Any]) -> PipelineConfig:
    return config_from_dict({"runner": {"isolate_decode": False}, **extra})


def references() -> dict[str, list[str]]:
    """The LibriVox transcription, words per clip."""
    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        words, _, name = line.rpartition("(")
        refs[name.rstrip(") ")] = [w for w in words.split() if w not in ("<s>", "</s>")]
    return refs


def wer(pairs: list[tuple[list[str], list[str]]]) -> float:
    """Word error rate over (reference, hypothesis) pairs: edits over reference words."""
    edits = sum(_edits(ref, hyp) for ref, hyp in pairs)
    return edits / sum(len(ref) for ref, _ in pairs)


def _edits(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def pocketsphinx_own(clips: dict[str, np.ndarray]) -> dict[str, dict[str, list[str]]]:
    """pocketsphinx alone on each clip: one utterance (`single`), and its endpointer + decoder (`live`)."""
    import io

    from pocketsphinx import Decoder, Segmenter

    from mmfs.transforms.audio.asr import clean_word

    decoder = Decoder(samprate=SR, loglevel="FATAL")

    def decode(pcm: bytes) -> list[str]:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        return [w for seg in decoder.seg() if (w := clean_word(seg.word)) is not None]

    out: dict[str, dict[str, list[str]]] = {"single": {}, "live": {}}
    for name, samples in clips.items():
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        out["single"][name] = decode(pcm)
        regions = Segmenter(sample_rate=SR).segment(io.BytesIO(pcm))
        out["live"][name] = [w for region in regions for w in decode(region.pcm)]
    return out


def speech_figures(repeat: int, work: Path) -> dict[str, Any]:
    """WER of mmfs and of pocketsphinx alone on the LibriVox clips; real-time factors of ASR and the run."""
    from mmfs.encoders.speech_asr import recognizer
    from mmfs.encoders.speech_vad import CHUNK, VAD_RATE, chunk_probs
    from mmfs.stages.speech import utterance_params
    from mmfs.transforms.audio.utterances import utterances

    paths = sorted(LIBRIVOX.glob("*.wav"))
    clips = {p.stem: sf.read(p, dtype="float32")[0] for p in paths}
    refs = references()
    audio_s = sum(len(c) for c in clips.values()) / SR
    src = work / "librivox"
    src.mkdir()
    for p in paths:
        shutil.copy(p, src / p.name)
    cfg = _cfg({})
    run_pipeline([str(src)], cfg, work / "warm", show_progress=False)  # models load
    best_run, store_dir = float("inf"), work / "speech_store"
    for k in range(repeat):
        store_dir = work / f"speech_store{k}"
        start = time.perf_counter()
        run_pipeline([str(src)], cfg, store_dir, show_progress=False)
        best_run = min(best_run, time.perf_counter() - start)
    store = Store(store_dir)
    names = {r["media_id"]: Path(r["uri"]).stem for r in store.read("media", ["media_id", "uri"]).to_pylist()}
    rows = sorted(
        (r for r in store.read("text").to_pylist() if r["source"] == "asr"), key=lambda r: r["start_s"]
    )
    ours: dict[str, list[str]] = {name: [] for name in clips}
    for r in rows:
        ours[names[r["media_id"]]] += r["text"].lower().split()
    theirs = pocketsphinx_own(clips)

    rec, params = recognizer("pocketsphinx"), utterance_params(cfg.audio)

    def asr_stage() -> None:  # what the stage does per item: VAD chunks, utterances, one decode each
        for samples in clips.values():
            probs = chunk_probs([samples], SR)[0]
            for u in utterances(probs, CHUNK / VAD_RATE, len(samples) / SR, params):
                rec.transcribe(samples[round(u.start_s * SR) : round(u.end_s * SR)])

    def single() -> None:  # pocketsphinx alone, one utterance per clip
        decoder = rec.decoder  # type: ignore[attr-defined]
        for samples in clips.values():
            decoder.start_utt()
            decoder.process_raw((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
            decoder.end_utt()

    asr_s = _best(asr_stage, repeat)
    return {
        "clips": len(clips),
        "audio_s": round(audio_s, 2),
        "reference_words": sum(len(refs[n]) for n in clips),
        "wer_mmfs": round(wer([(refs[n], ours[n]) for n in clips]), 4),
        "wer_pocketsphinx_single": round(wer([(refs[n], theirs["single"][n]) for n in clips]), 4),
        "wer_pocketsphinx_live": round(wer([(refs[n], theirs["live"][n]) for n in clips]), 4),
        "asr_x_realtime": round(audio_s / asr_s, 2),
        "run_x_realtime": round(audio_s / best_run, 2),
        "pocketsphinx_single_x_realtime": round(audio_s / _best(single, repeat), 2),
        "mmfs_text": {n: " ".join(ours[n]) for n in clips},
        "pocketsphinx_single_text": {n: " ".join(theirs["single"][n]) for n in clips},
    }


def _best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmfs-bench-asr-") as tmp:
        work = Path(tmp)
        free = work / "speech_free"
        notes = speech_free_corpus(free)
        doc: dict[str, Any] = {"notes": notes, "speech_free": speech_free_cost(free, args.repeat, work)}
        if (LIBRIVOX / "transcription").is_file():
            doc["speech"] = speech_figures(args.repeat, work)
        else:
            doc["notes"].append(f"speech figures left out: {LIBRIVOX} is absent (make speech-data)")
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    f = doc["speech_free"]
    print(f"speech-free corpus: {f['files']} files, {f['audio_s']} s of audio")
    print(f"  asr default: {f['asr_default_wall_s']} s wall, {f['asr_default_cpu_s']} s CPU (best)")
    print(f"  asr none:    {f['asr_none_wall_s']} s wall, {f['asr_none_cpu_s']} s CPU (best)")
    print(
        f"  overhead: {f['overhead_wall']:+.1%} wall, {f['overhead_cpu']:+.1%} CPU; "
        f"{f['asr_utterances']} utterances ({f['asr_seconds']} s) handed to the recogniser"
    )
    if "speech" in doc:
        s = doc["speech"]
        print(f"LibriVox: {s['clips']} clips, {s['audio_s']} s, {s['reference_words']} reference words")
        print(
            f"  WER mmfs {s['wer_mmfs']:.3f}; pocketsphinx alone: single {s['wer_pocketsphinx_single']:.3f}, "
            f"live {s['wer_pocketsphinx_live']:.3f}"
        )
        print(
            f"  ASR stage {s['asr_x_realtime']}x realtime (pocketsphinx alone, one utterance a clip: "
            f"{s['pocketsphinx_single_x_realtime']}x); whole run {s['run_x_realtime']}x realtime"
        )
    for note in doc["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
