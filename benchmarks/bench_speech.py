"""Speed of the speech stages (× realtime) on the LibriVox clips of Debian pocketsphinx-testdata, each
beside the raw library doing the same work in the same run.

    python benchmarks/bench_speech.py [--repeat N]

VAD: mmfs (all clips as one padded batch) vs silero's own ONNX `audio_forward`, clip by clip. ASR: mmfs
(pocketsphinx per speech region) vs one pocketsphinx utterance per clip. Pitch: mmfs's torchcrepe
windows vs `torchcrepe.predict`. Denoise and SNR: numpy/scipy only (no raw library to compare).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import soundfile as sf

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SR = 16_000


def best(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` timed calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(LIBRIVOX.glob("*.wav"))]
    if not clips:
        raise SystemExit(f"no clips under {LIBRIVOX}: install Debian pocketsphinx-testdata")
    seconds = sum(len(c) for c in clips) / SR
    import torch

    torch.set_num_threads(1)
    from silero_vad import load_silero_vad

    from mmfs.encoders.speech_asr import recognizer
    from mmfs.encoders.speech_vad import chunk_probs
    from mmfs.transforms.audio.denoise import spectral_gate, window_snr_db

    model = load_silero_vad(onnx=True)  # the same ONNX graph mmfs runs, through silero's own wrapper
    rec = recognizer("pocketsphinx")

    def raw_vad() -> None:
        for c in clips:
            model.audio_forward(torch.from_numpy(c), SR)

    def raw_asr() -> None:
        d = rec.decoder  # type: ignore[attr-defined]
        for c in clips:
            d.start_utt()
            d.process_raw((c * 32767).astype("<i2").tobytes(), full_utt=True)
            d.end_utt()

    figures = {
        "vad_mmfs": best(lambda: chunk_probs(clips, SR), args.repeat),
        "vad_raw": best(raw_vad, args.repeat),
        "asr_mmfs": best(lambda: [rec.transcribe(c) for c in clips], args.repeat),
        "asr_raw": best(raw_asr, args.repeat),
        "denoise": best(lambda: [spectral_gate(c, SR) for c in clips], args.repeat),
        "snr": best(lambda: [window_snr_db(c, SR, [(0.0, len(c) / SR)]) for c in clips], args.repeat),
    }
    out: dict[str, object] = {"audio_s": round(seconds, 2), "torch_threads": 1}
    for name, secs in figures.items():
        out[f"{name}_x_realtime"] = round(seconds / secs, 1)
    out["vad_ratio_to_raw"] = round(figures["vad_raw"] / figures["vad_mmfs"], 2)
    out["asr_ratio_to_raw"] = round(figures["asr_raw"] / figures["asr_mmfs"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
