"""Spectral-gating noise reduction and a per-window SNR estimate, both from one noise profile.

The noise profile is taken from the quietest STFT frames of the item (the lowest `noise_quantile` by
frame energy): pauses between words, gaps between sounds. Per frequency bin it holds the mean power
(the SNR's noise floor) and the mean and spread of the power in dB (the gate's threshold, as
noisereduce's stationary mode sets it). A sound that lasts the whole item is, by this definition,
part of the noise floor: no method that learns the noise from the item itself can tell them apart.
scipy.signal is imported where it is used: importing it costs a second of start-up, and the modules
that name this one (the speech stages, the decoder) load in processes that may never denoise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_FFT = 512
HOP = 128
AMIN = 1e-10  # power floor: digital silence gives finite dB
SNR_FLOOR_DB = -30.0  # a window no louder than the noise floor
SNR_CEIL_DB = 100.0  # a window over digital silence


@dataclass(frozen=True)
class NoiseProfile:
    """Per-bin noise power (linear mean), and its mean and standard deviation in dB."""

    power: np.ndarray
    mean_db: np.ndarray
    std_db: np.ndarray


def _stft(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Complex STFT (bins, frames), Hann window, centred frames every HOP samples."""
    from scipy import signal

    x = np.asarray(samples, dtype=np.float32)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    _, _, z = signal.stft(x, fs=sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even")
    return np.asarray(z)


def noise_profile(power: np.ndarray, noise_quantile: float) -> NoiseProfile:
    """The profile of the quietest frames of a power spectrogram (bins, frames)."""
    energy = power.sum(axis=0)
    cut = np.quantile(energy, noise_quantile)
    quiet = power[:, energy <= cut]
    db = 10.0 * np.log10(np.maximum(quiet, AMIN))
    return NoiseProfile(quiet.mean(axis=1), db.mean(axis=1), db.std(axis=1))


def spectral_gate(
    samples: np.ndarray,
    sample_rate: int,
    *,
    noise_quantile: float = 0.2,
    n_std: float = 1.5,
    prop_decrease: float = 1.0,
) -> np.ndarray:
    """Attenuate time-frequency cells below the noise threshold (mean + n_std * std dB, per bin).

    The mask is soft: it rises linearly over 6 dB above the threshold, is dilated over ±2 bins and
    frames (a tone's main lobe and onset stay whole) and smoothed, so gating leaves no musical
    speckle. Returns float32 of the input's length.
    """
    from scipy import ndimage, signal

    z = _stft(samples, sample_rate)
    power = np.abs(z) ** 2
    profile = noise_profile(power, noise_quantile)
    threshold = (profile.mean_db + n_std * profile.std_db)[:, None]
    db = 10.0 * np.log10(np.maximum(power, AMIN))
    mask = np.clip((db - threshold) / 6.0, 0.0, 1.0)
    mask = ndimage.maximum_filter(mask, size=(5, 5), mode="nearest")  # keep a tone's whole main lobe
    mask = ndimage.uniform_filter(mask, size=(3, 3), mode="nearest")
    gain = 1.0 - prop_decrease * (1.0 - mask)
    _, out = signal.istft(z * gain, fs=sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)
    out = np.asarray(out[: len(samples)], dtype=np.float32)
    if len(out) < len(samples):
        out = np.pad(out, (0, len(samples) - len(out)))
    return np.clip(out, -1.0, 1.0)


def window_snr_db(
    samples: np.ndarray,
    sample_rate: int,
    bounds: list[tuple[float, float]],
    *,
    noise_quantile: float = 0.2,
) -> list[float]:
    """SNR (dB) of each [start, end) window against the item's noise floor: 10 log10((P - N) / N).

    P is the window's mean frame power, N the noise profile's; a window at or under the floor gives
    SNR_FLOOR_DB, one over digital silence SNR_CEIL_DB. Frames are assigned by their centre time.
    """
    if not bounds:
        return []
    power = np.abs(_stft(samples, sample_rate)) ** 2
    noise = max(float(noise_profile(power, noise_quantile).power.sum()), AMIN)
    frame_power = power.sum(axis=0)
    centres = np.arange(power.shape[1]) * HOP / sample_rate
    out = []
    for start, end in bounds:
        inside = frame_power[(centres >= start) & (centres < end)]
        if inside.size == 0:  # a window shorter than a hop: the frame nearest its middle
            inside = frame_power[[int(np.argmin(np.abs(centres - (start + end) / 2)))]]
        excess = float(inside.mean()) - noise
        snr = SNR_FLOOR_DB if excess <= 0 else 10.0 * np.log10(excess / noise)
        out.append(float(np.clip(snr, SNR_FLOOR_DB, SNR_CEIL_DB)))
    return out
