"""Voice activity (silero-vad), speech recognition (pocketsphinx) and pitch (torchcrepe) on real
LibriVox speech (Debian pocketsphinx-testdata) and generated tones, noise and silence."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SAMPLE_SPEECH = Path(__file__).resolve().parents[2] / "mmfs" / "data" / "sample" / "dashwood_speech.wav"
SR = 16_000
needs_librivox = pytest.mark.skipif(
    not (LIBRIVOX / "transcription").is_file(),
    reason=f"{LIBRIVOX} is absent: install Debian pocketsphinx-testdata (make speech-data, as root)",
)


def _librivox() -> list[tuple[str, np.ndarray, list[str]]]:
    """(file id, 16 kHz samples, reference words) of each LibriVox clip."""
    out = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if m:
            samples, rate = sf.read(LIBRIVOX / f"{m.group(2)}.wav", dtype="float32")
            assert rate == SR
            out.append((m.group(2), samples, m.group(1).split()))
    return out


@needs_librivox
def test_vad_speech_scores_high_noise_and_silence_low() -> None:
    from mmfs.encoders.speech_vad import chunk_probs, window_speech_prob

    clips = _librivox()
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    silence = np.zeros(3 * SR, dtype=np.float32)
    probs = chunk_probs([c[1] for c in clips] + [noise, silence], SR)  # one batch, padded rows
    for (name, samples, _), p in zip(clips, probs, strict=False):
        bounds = [(k, min(k + 1.0, len(samples) / SR)) for k in range(int(np.ceil(len(samples) / SR)))]
        scores = window_speech_prob(p, bounds)
        inner = [s for s in scores[1:-1] if s is not None] or scores  # the clips' edges hold pauses
        assert min(inner) > 0.6 and max(scores) > 0.8, (name, scores)  # type: ignore[type-var]
    for p in probs[-2:]:
        assert max(window_speech_prob(p, [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)])) < 0.1  # type: ignore[type-var]
    alone = chunk_probs([clips[0][1]], SR)[0]  # batching pads rows: each row's result is its own
    np.testing.assert_allclose(alone, probs[0], atol=1e-5)


@needs_librivox
def test_vad_onnx_matches_silero_own_torchscript_model() -> None:
    """mmfs runs silero's ONNX graph in onnxruntime; silero's own TorchScript model is the reference."""
    import torch
    from silero_vad import load_silero_vad

    from mmfs.encoders.speech_vad import chunk_probs

    samples = _librivox()[0][1]
    ours = chunk_probs([samples], SR)[0]
    with torch.inference_mode():
        theirs = load_silero_vad().audio_forward(torch.from_numpy(samples), SR).numpy()[0]
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


@needs_librivox
def test_pocketsphinx_transcribes_known_words_with_times_inside_the_clip() -> None:
    from mmfs.encoders.speech_asr import recognizer

    rec = recognizer("pocketsphinx")
    heard_all, spoken_all = set(), set()
    for name, samples, reference in _librivox()[1:]:  # the four shorter clips
        words = rec.transcribe(samples)
        duration = len(samples) / SR
        assert words and all(0 <= w.start_s < w.end_s <= duration + 0.01 for w in words), name
        assert [w.start_s for w in words] == sorted(w.start_s for w in words)
        heard = {w.text.lower() for w in words}
        spoken = {w for w in reference if len(w) > 3}
        assert len(heard & spoken) >= len(spoken) / 3, (name, heard, spoken)  # a rough recogniser
        heard_all |= heard
        spoken_all |= spoken
    assert {"young", "amiable", "himself", "selfish", "respectable"} <= heard_all & spoken_all


def _tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_torchcrepe_pitch_and_embedding_match_torchcrepe() -> None:
    import torch
    import torchcrepe

    from mmfs.encoders import get_cached
    from mmfs.encoders.audio_torchcrepe import FMAX, FMIN, HOP

    enc = get_cached("audio.torchcrepe", device="cpu", batch_size=8)
    noise = (0.3 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    windows = [_tone(220.0), _tone(440.0), noise, _tone(110.0, 0.2)]
    stats = enc.pitch(windows)
    for (f0, voiced), expected in zip(stats, (220.0, 440.0, None, 110.0), strict=True):
        if expected is None:
            assert voiced < 0.2
        else:
            assert f0 is not None and abs(f0 - expected) / expected < 0.02 and voiced > 0.7, stats
    ref_f0, ref_period = torchcrepe.predict(
        torch.from_numpy(windows[0])[None],
        SR,
        HOP,
        FMIN,
        FMAX,
        "tiny",
        decoder=torchcrepe.decode.weighted_argmax,
        return_periodicity=True,
        device="cpu",
    )
    assert stats[0][0] == pytest.approx(float(ref_f0[0][ref_period[0] >= 0.5].median()), rel=1e-3)
    vectors = enc.embed(windows)
    assert vectors.shape == (4, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        frames = torchcrepe.embed(torch.from_numpy(windows[1])[None], SR, HOP, "tiny", device="cpu")[0]
    ref = frames.permute(0, 2, 1).reshape(len(frames), -1).mean(0).numpy()
    assert float(vectors[1] @ (ref / np.linalg.norm(ref))) > 0.999
    one = get_cached("audio.torchcrepe", device="cpu", batch_size=1).embed(windows)  # batched == one by one
    np.testing.assert_allclose(one, vectors, atol=1e-4)
    prov = enc.provenance()
    assert prov["weights_sha256"] == enc.pinned_sha256 and prov["name"] == "audio.torchcrepe"


def test_resemblyzer_is_batched_and_batching_changes_nothing() -> None:
    from mmfs.encoders import get_cached

    rng = np.random.default_rng(3)
    windows = [_tone(220.0), (0.1 * rng.standard_normal(SR // 2)).astype(np.float32), _tone(330.0, 2.5)]
    together = get_cached("audio.resemblyzer", device="cpu", batch_size=8).embed(windows)  # one LSTM pass
    alone = get_cached("audio.resemblyzer", device="cpu", batch_size=1).embed(windows)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_pocketsphinx_gives_the_same_words_whatever_it_decoded_before() -> None:
    """The decoder's feature front end adapts its cepstral mean across utterances; mmfs resets it,
    so a transcript does not depend on which items a process (a Ray actor, a Beam worker) saw first."""
    pytest.importorskip("pocketsphinx", reason="pocketsphinx is an optional speech dependency")
    from mmfs.encoders.speech_asr import PocketsphinxRecognizer
    from mmfs.stages.speech import at_model_rate

    samples, rate = sf.read(SAMPLE_SPEECH, dtype="float32")
    speech = at_model_rate(samples if samples.ndim == 1 else samples.mean(axis=1), rate)
    fresh = [w.text for w in PocketsphinxRecognizer().transcribe(speech)]
    used = PocketsphinxRecognizer()
    used.transcribe(speech[: len(speech) // 2])
    used.transcribe(speech[::-1].copy())
    assert fresh and [w.text for w in used.transcribe(speech)] == fresh
