"""Audio throughput of mmfs next to librosa alone, on the same 60 s signal, in the same run.

Run with `make bench-audio` (or `python benchmarks/bench_audio.py [--seconds N] [--repeat N]`). The
signal is the sample speech recording (`dashwood_speech.wav`, 16 kHz) tiled to N seconds, with a chirp
and noise under it. Printed as a table, in x realtime (seconds of audio per second of wall time):
- mmfs `window_features` (librosa backend) vs librosa alone computing the same features on the same
  1 s segment windows (log-mel, MFCC, deltas and delta-deltas, centroid, bandwidth, roll-off, RMS,
  zero-crossing rate): once window by window as a loop, once with all windows stacked in one call;
  the ratio is taken against the faster of the two (target >= 0.85);
- the torchaudio backend (batched over windows; CPU, and CUDA when present) vs the same librosa;
- decoding and resampling a 44.1 kHz stereo FLAC to 16 kHz mono: mmfs `decode_audio` (PyAV + soxr)
  vs `librosa.load(sr=16000, res_type="soxr_hq")` (soundfile + soxr).
Timings alternate (librosa, mmfs, librosa, ...) and the best of `--repeat` is kept for each. Every
side runs with `--threads` BLAS/OpenMP/torch threads (default 1, as in the pipeline's decode workers).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import scipy.signal
import soundfile as sf

from mmfs.config import AudioConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.transforms.audio.windows import DecodedAudio, decode_audio, window_features

SR = 16000
SEGMENT_S = 1.0


def signal(seconds: float) -> np.ndarray:
    """Speech tiled to `seconds`, over a quiet chirp and noise: spectra that change every window."""
    speech, rate = sf.read(str(SAMPLE_DIR / "dashwood_speech.wav"), dtype="float32")
    assert rate == SR
    n = round(seconds * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(0)
    under = 0.05 * scipy.signal.chirp(t, 50, seconds, 7000) + 0.01 * rng.standard_normal(n)
    return (np.resize(speech, n) + under).astype(np.float32)


def librosa_window(y: np.ndarray, cfg: AudioConfig) -> list[Any]:
    """The same features as mmfs, with librosa alone: one STFT shared by the spectral features."""
    kw = {"n_fft": cfg.n_fft, "hop_length": cfg.hop_length}
    magnitude = np.abs(librosa.stft(y, center=True, pad_mode="constant", **kw))
    mel = librosa.feature.melspectrogram(
        S=magnitude**2, sr=SR, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    peak = log_mel.max(axis=(-2, -1), keepdims=True)
    mfcc = librosa.feature.mfcc(S=np.maximum(log_mel, peak - 80.0), n_mfcc=cfg.n_mfcc)
    delta = librosa.feature.delta(mfcc, width=cfg.delta_width, order=1, mode="nearest")
    delta2 = librosa.feature.delta(mfcc, width=cfg.delta_width, order=2, mode="nearest")
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SR, **kw)
    bandwidth = librosa.feature.spectral_bandwidth(S=magnitude, sr=SR, centroid=centroid, **kw)
    rolloff = librosa.feature.spectral_rolloff(S=magnitude, sr=SR, roll_percent=cfg.rolloff_percent, **kw)
    rms = np.sqrt(np.mean(np.square(y, dtype=np.float64), axis=-1))
    zcr = np.mean(np.signbit(y[..., 1:]) != np.signbit(y[..., :-1]), axis=-1)
    return [log_mel, mfcc, delta, delta2, centroid.mean(-1), bandwidth.mean(-1), rolloff.mean(-1), rms, zcr]


def windows_of(y: np.ndarray) -> list[np.ndarray]:
    step = round(SEGMENT_S * SR)
    return [y[i : i + step] for i in range(0, len(y), step)]


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each function, timed in turn so that load changes weigh on all alike."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()  # warm-up: numba JIT, torch kernels, file cache
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_features(y: np.ndarray, repeat: int) -> list[dict[str, Any]]:
    """x realtime of each way of computing the window features."""
    cfg = AudioConfig()
    audio = DecodedAudio(y, SR, SR, 1, len(y) / SR)
    chunks = windows_of(y)
    full = np.stack([c for c in chunks if len(c) == len(chunks[0])])
    fns: dict[str, Callable[[], object]] = {
        "librosa, window by window": lambda: [librosa_window(c, cfg) for c in chunks],
        "librosa, windows stacked": lambda: librosa_window(full, cfg),
        "mmfs, librosa backend": lambda: window_features(audio, segment_s=SEGMENT_S, cfg=cfg),
        "mmfs, torchaudio backend (cpu)": lambda: window_features(
            audio, segment_s=SEGMENT_S, cfg=AudioConfig(backend="torchaudio", device="cpu")
        ),
    }
    import torch

    if torch.cuda.is_available():
        gpu = AudioConfig(backend="torchaudio", device="cuda")
        fns["mmfs, torchaudio backend (cuda)"] = lambda: window_features(audio, segment_s=SEGMENT_S, cfg=gpu)
    best = interleaved(fns, repeat)
    raw = min(best["librosa, window by window"], best["librosa, windows stacked"])
    seconds = len(y) / SR
    return [
        {"what": name, "x_realtime": seconds / t, "vs_librosa": raw / t if name.startswith("mmfs") else None}
        for name, t in best.items()
    ]


def bench_decode(y: np.ndarray, repeat: int) -> list[dict[str, Any]]:
    """x realtime of decoding + downmix + resampling a 44.1 kHz stereo FLAC to 16 kHz mono."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stereo_44k.flac"
        high = librosa.resample(y, orig_sr=SR, target_sr=44100, res_type="soxr_hq")
        sf.write(str(path), np.stack([high, 0.5 * high], axis=1), 44100, subtype="PCM_16")
        fns: dict[str, Callable[[], object]] = {
            "librosa.load(sr=16000, soxr_hq)": lambda: librosa.load(
                str(path), sr=SR, mono=True, res_type="soxr_hq"
            ),
            "mmfs decode_audio (PyAV + soxr HQ)": lambda: decode_audio(
                path, sample_rate=SR, max_duration_s=1e5
            ),
        }
        best = interleaved(fns, repeat)
    seconds = len(y) / SR
    raw = best["librosa.load(sr=16000, soxr_hq)"]
    return [
        {"what": name, "x_realtime": seconds / t, "vs_librosa": raw / t if name.startswith("mmfs") else None}
        for name, t in best.items()
    ]


def bench_memory(seconds: float) -> dict[str, Any]:
    """Peak traced memory of `window_features` on `seconds` of audio, beside what its windows keep."""
    import tracemalloc

    cfg = AudioConfig()
    window_features(DecodedAudio(signal(2.0), 16000, 16000, 1, 2.0), segment_s=1.0, cfg=cfg)  # imports
    y = np.tile(signal(60.0), math.ceil(seconds / 60.0))[: round(seconds * 16000)]
    tracemalloc.start()
    start = time.perf_counter()
    windows = window_features(DecodedAudio(y, 16000, 16000, 1, len(y) / 16000), segment_s=1.0, cfg=cfg)
    elapsed = time.perf_counter() - start
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mb = 1e6
    return {
        "seconds": seconds,
        "windows": len(windows),
        "input_mb": y.nbytes / mb,
        "peak_mb": peak / mb,
        "kept_mb": kept / mb,
        "overhead_mb": (peak - kept) / mb,
        "elapsed_s": elapsed,
    }


def table(title: str, rows: list[dict[str, Any]]) -> str:
    lines = [title, f"  {'':<40} {'x realtime':>12} {'÷ librosa':>10}"]
    for r in rows:
        ratio = "" if r["vs_librosa"] is None else f"{r['vs_librosa']:.2f}"
        lines.append(f"  {r['what']:<40} {r['x_realtime']:>12.0f} {ratio:>10}")
    return "\n".join(lines)


def main() -> None:
    """Run both comparisons; print the tables (stdout) and one JSON document (stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS, OpenMP and torch threads")
    parser.add_argument(
        "--memory-seconds",
        type=float,
        default=0.0,
        help="only measure the feature step's memory on this long",
    )
    args = parser.parse_args()
    if args.memory_seconds:
        print(json.dumps(bench_memory(args.memory_seconds)))
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    y = signal(args.seconds)
    features = bench_features(y, args.repeat)
    decode = bench_decode(y, args.repeat)
    print(
        table(
            f"Window features, {args.seconds:g} s at 16 kHz, 1 s windows, {args.threads} thread(s)", features
        )
    )
    print(table("Decode + downmix + resample, 44.1 kHz stereo FLAC to 16 kHz mono", decode))
    print(json.dumps({"seconds": args.seconds, "features": features, "decode": decode}), file=sys.stderr)


if __name__ == "__main__":
    main()
