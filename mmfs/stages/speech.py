"""Speech and sound stages around the audio features: denoising and SNR (CPU, in extraction), then
voice activity, pitch and speech recognition (models, in the batch stage before text analysis, so
transcripts are redacted, analysed, embedded and aligned like captions).

Denoising feeds the features and embeddings only: VAD, pitch and ASR hear the recording as it was,
since spectral gating cost pocketsphinx words on LibriVox speech. Decoding records `snr_db`; each
speech stage returns the item with a new `Heard` result (per-window columns `speech_prob`, `f0_hz`,
... and text segments with `source = "asr"`); a failure degrades its item only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mmfs.config import AudioConfig, PipelineConfig
from mmfs.errors import ConfigError, EncoderError
from mmfs.stages.base import Resources, StageBase, StageOutput
from mmfs.stages.items import Extracted, Heard, Item
from mmfs.transforms.captions import TextSegment
from mmfs.transforms.denoise import spectral_gate, window_snr_db

if TYPE_CHECKING:
    from mmfs.transforms.audio import DecodedAudio

MODEL_RATE = 16_000  # silero-vad, CREPE and both recognisers take 16 kHz


def maybe_denoise(audio: DecodedAudio, cfg: AudioConfig) -> DecodedAudio:
    """The decoded audio, spectrally gated when `audio.denoise` is on (the mixdown and kept channels)."""
    if not cfg.denoise:
        return audio

    def gate(samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples)
        rows = x if x.ndim == 2 else x[None, :]  # (channels, time) when kept apart
        opts = {"noise_quantile": cfg.noise_quantile, "n_std": cfg.denoise_n_std}
        gated = np.stack([spectral_gate(c, audio.sample_rate, **opts) for c in rows])
        return gated if x.ndim == 2 else gated[0]

    kept = None if audio.channel_samples is None else gate(audio.channel_samples)
    return dataclasses.replace(audio, samples=gate(audio.samples), channel_samples=kept)


def snr_columns(
    bounds: list[tuple[float, float]],
    raw: np.ndarray,
    samples: np.ndarray | None,
    rate: int,
    cfg: AudioConfig,
) -> dict[str, list[Any]]:
    """`snr_db` of each window of the source audio, and `snr_db_denoised` after gating when on."""
    q = cfg.noise_quantile
    out: dict[str, list[Any]] = {"snr_db": window_snr_db(mono(raw), rate, bounds, noise_quantile=q)}
    if cfg.denoise and samples is not None:
        out["snr_db_denoised"] = window_snr_db(mono(samples), rate, bounds, noise_quantile=q)
    return out


def mono(samples: np.ndarray) -> np.ndarray:
    """One channel: the mean of a (channels, time) array, or the samples as they are."""
    x = np.asarray(samples, dtype=np.float32)
    return x.mean(axis=0) if x.ndim == 2 else x


def at_model_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """Samples at 16 kHz (polyphase resampling when the pipeline runs at another rate)."""
    if rate == MODEL_RATE:
        return samples
    from scipy.signal import resample_poly

    g = math.gcd(MODEL_RATE, rate)
    return resample_poly(samples, MODEL_RATE // g, rate // g).astype(np.float32)


def speech_stages(cfg: PipelineConfig) -> list[Any]:
    """The switched-on speech stages, in order: VAD, pitch (stage `speech`), then ASR (stage `asr`)."""
    a = cfg.audio
    if a.asr == "whisper" and not a.asr_model_dir:
        raise ConfigError("audio.asr = whisper needs audio.asr_model_dir (a local model directory)")
    stages: list[Any] = []
    if a.vad:
        stages.append(VadStage(cfg))
    if a.pitch:
        stages.append(PitchStage(cfg))
    if a.asr != "none":
        stages.append(AsrStage(cfg))
    return stages


def _heard(
    item: Item, columns: dict[str, list[Any]] | None = None, transcript: tuple[TextSegment, ...] = ()
) -> Item:
    """The item with a new speech result: the earlier speech stages' columns and lines, plus these."""
    old = item.heard or Heard()
    return item.with_(heard=Heard({**old.columns, **(columns or {})}, (*old.transcript, *transcript)))


def _hears(item: Item) -> bool:
    return item.ex.audio_samples is not None and bool(item.ex.audio_windows)


class VadStage(StageBase):
    """Voice activity per audio window (`speech_prob`), silero-vad over the batch's tracks."""

    name, timing = "speech", "speech"
    resources = Resources(models=("speech.silero_vad",))

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with audio gets `speech_prob` per window."""
        from mmfs.encoders.speech_vad import chunk_probs, window_speech_prob

        live = [it for it in batch if _hears(it)]
        rates = {it.ex.audio_rate for it in live}
        probs = (
            chunk_probs([_samples(it.ex) for it in live], live[0].ex.audio_rate) if len(rates) == 1 else None
        )
        found: dict[int, list[float | None]] = {}
        for i, it in enumerate(live):
            p = probs[i] if probs is not None else chunk_probs([_samples(it.ex)], it.ex.audio_rate)[0]
            found[id(it)] = window_speech_prob(p, _bounds(it.ex))
        return StageOutput(
            [_heard(it, {"speech_prob": found[id(it)]}) if id(it) in found else it for it in batch]
        )


class PitchStage(StageBase):
    """Pitch per audio window (`f0_hz`, `voiced_frac`), CREPE over every window of the batch at once."""

    name, timing = "speech", "speech"
    resources = Resources(models=("audio.torchcrepe",))

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with audio gets its windows' pitch columns."""
        from mmfs.encoders import get_cached

        live = [it for it in batch if _hears(it)]
        windows = [
            at_model_rate(
                _samples(it.ex)[round(lo * it.ex.audio_rate) : round(hi * it.ex.audio_rate)], it.ex.audio_rate
            )
            for it in live
            for lo, hi in _bounds(it.ex)
        ]
        if not windows:
            return StageOutput(list(batch))
        enc = self.cfg.encoders
        crepe: Any = get_cached("audio.torchcrepe", device=enc.device, batch_size=enc.batch_size)
        stats = iter(crepe.pitch([w if len(w) else np.zeros(1, np.float32) for w in windows]))
        columns: dict[int, dict[str, list[Any]]] = {}
        for it in live:
            pairs = [next(stats) for _ in it.ex.audio_windows]
            columns[id(it)] = {"f0_hz": [f0 for f0, _ in pairs], "voiced_frac": [v for _, v in pairs]}
        return StageOutput([_heard(it, columns[id(it)]) if id(it) in columns else it for it in batch])


class AsrStage(StageBase):
    """Speech recognition (`audio.asr`): transcript lines of each item, as `text` segments `source=asr`."""

    name, timing = "asr", "speech"

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.resources = Resources(models=(f"speech.{cfg.audio.asr}",))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with audio whose text table is computed gets its transcript (all or nothing)."""
        from mmfs.encoders.devices import resolve_device
        from mmfs.encoders.speech_asr import recognizer
        from mmfs.transforms.asr import transcript_lines

        live = [it for it in batch if _hears(it) and "text" in it.ex.computed]
        if not live:
            return StageOutput(list(batch))
        a = self.cfg.audio
        rec = recognizer(a.asr, a.asr_model_dir, device=resolve_device(self.cfg.encoders.device))
        lines: dict[int, tuple[TextSegment, ...]] = {}
        for it in live:
            try:
                words = rec.transcribe(at_model_rate(_samples(it.ex), it.ex.audio_rate))
            except (RuntimeError, ValueError) as err:  # the recogniser's own failures
                raise EncoderError(f"asr: {rec.name} failed: {err}") from err
            lines[id(it)] = tuple(transcript_lines(words))
        # new items only: when one item fails, the batch is retried item by item from the same
        # inputs, so no transcript can be added twice
        return StageOutput([_heard(it, transcript=lines[id(it)]) if id(it) in lines else it for it in batch])


def _samples(ex: Extracted) -> np.ndarray:
    """What the speech models hear: the samples before denoising (features use the gated ones)."""
    samples = ex.audio_raw if ex.audio_raw is not None else ex.audio_samples
    assert samples is not None
    return mono(samples)


def _bounds(ex: Extracted) -> list[tuple[float, float]]:
    return [(w.start_s, w.end_s) for w in ex.audio_windows]
