"""Spectral gating and the SNR estimate on a tone in white noise at known SNRs."""

from __future__ import annotations

import numpy as np
import pytest

from mmfs.transforms.audio.denoise import SNR_FLOOR_DB, spectral_gate, window_snr_db

SR = 16_000
SNR_TOLERANCE_DB = 1.5  # estimate vs the SNR the signal was built with, in the tone's windows


def _tone_bursts(snr_db: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """6 s of white noise with a 440 Hz tone in seconds 1, 3 and 5, at snr_db over the noise power."""
    t = np.arange(6 * SR) / SR
    amplitude = 0.3
    sigma = np.sqrt(amplitude**2 / 2 / 10 ** (snr_db / 10))
    tone = (amplitude * np.sin(2 * np.pi * 440 * t) * (t.astype(int) % 2 == 1)).astype(np.float32)
    noise = (sigma * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)
    return tone + noise, tone


BOUNDS = [(float(k), float(k + 1)) for k in range(6)]


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_snr_estimate_is_within_tolerance_in_tone_windows(snr_db: float) -> None:
    noisy, _ = _tone_bursts(snr_db)
    est = window_snr_db(noisy, SR, BOUNDS)
    for k in (1, 3, 5):
        assert abs(est[k] - snr_db) < SNR_TOLERANCE_DB, (k, est)
    for k in (0, 2, 4):  # noise alone: far below the tone windows
        assert est[k] < snr_db - 8, (k, est)


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_denoising_raises_true_and_estimated_snr(snr_db: float) -> None:
    noisy, tone = _tone_bursts(snr_db, seed=1)
    clean = spectral_gate(noisy, SR)
    assert clean.shape == noisy.shape and clean.dtype == np.float32
    for k in (1, 3, 5):
        part = slice(k * SR, (k + 1) * SR)
        residual = clean[part] - tone[part]  # what is left that is not the tone: noise and distortion
        true_after = 10 * np.log10(np.mean(tone[part] ** 2) / np.mean(residual**2))
        assert true_after > snr_db + 5, (k, true_after)
    before, after = window_snr_db(noisy, SR, BOUNDS), window_snr_db(clean, SR, BOUNDS)
    assert all(after[k] > before[k] + 5 for k in (1, 3, 5)), (before, after)
    # the gate takes the noise-only seconds far down
    quiet = slice(SR // 8, 7 * SR // 8)  # noise alone, away from the tone's onset
    assert np.std(clean[quiet]) < 0.2 * np.std(noisy[quiet])


def test_silence_and_short_input_give_finite_values() -> None:
    silence = np.zeros(SR, dtype=np.float32)
    assert window_snr_db(silence, SR, [(0.0, 1.0)]) == [SNR_FLOOR_DB]
    assert np.all(spectral_gate(silence, SR) == 0)
    short = np.random.default_rng(2).standard_normal(100).astype(np.float32) * 0.1
    out = spectral_gate(short, SR)
    assert out.shape == (100,) and np.isfinite(out).all()
    assert np.isfinite(window_snr_db(short, SR, [(0.0, 100 / SR)])).all()
