"""Speech and sound stages around the audio features: denoising and SNR (CPU, in extraction), then
voice activity, pitch and speech recognition (models, in the batch stage before text analysis, so
transcripts are redacted, analysed, embedded and aligned like captions).

Denoising feeds the features and embeddings only: VAD, pitch and ASR hear the recording as it was,
since spectral gating cost pocketsphinx words on LibriVox speech. Each stage adds per-window columns
to `Extracted.audio_columns` (`snr_db`, `speech_prob`, `f0_hz`, ...) or text segments with
`source = "asr"`; a failure degrades its item only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mmfs.config import AudioConfig, PipelineConfig
from mmfs.errors import ConfigError, EncoderError
from mmfs.pipelines.batch_stage import run_stage
from mmfs.transforms.captions import TextSegment
from mmfs.transforms.denoise import spectral_gate, window_snr_db
from mmfs.transforms.utterances import Utterance, UtteranceParams, utterances

if TYPE_CHECKING:
    from mmfs.encoders.speech_asr import Recognizer
    from mmfs.pipelines.enrich import Enriched
    from mmfs.pipelines.items import Extracted
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


def add_snr(out: Extracted, raw: np.ndarray, cfg: AudioConfig) -> None:
    """`snr_db` of each window of the source audio, and `snr_db_denoised` after gating when on."""
    bounds = [(w.start_s, w.end_s) for w in out.audio_windows]
    rate, q = out.audio_rate, cfg.noise_quantile
    out.audio_columns["snr_db"] = window_snr_db(mono(raw), rate, bounds, noise_quantile=q)
    if cfg.denoise and out.audio_samples is not None:
        out.audio_raw = raw  # speech models hear the recording as it was (gating costs ASR words)
        gated = mono(out.audio_samples)
        out.audio_columns["snr_db_denoised"] = window_snr_db(gated, rate, bounds, noise_quantile=q)


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


class SpeechStage:
    """VAD, pitch and ASR over a batch of enriched items, as `audio.vad / pitch / asr` ask.

    ASR decodes only the utterances that the VAD finds (`transforms/utterances.py`): an item with no
    speech makes no recogniser call and loads no recogniser.
    """

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        if cfg.audio.asr == "whisper" and not cfg.audio.asr_model_dir:
            raise ConfigError("audio.asr = whisper needs audio.asr_model_dir (a local model directory)")

    def run(self, items: list[Enriched]) -> None:
        """Fill speech columns and transcripts; an item whose model fails is degraded, not lost."""
        live = [it for it in items if it.ex.audio_samples is not None and it.ex.audio_windows]
        if not live:
            return
        a = self.cfg.audio
        asr = a.asr != "none"
        probs: dict[int, np.ndarray] = {}  # each item's VAD chunk probabilities, by id(item)
        stages = (
            ("speech", a.vad or asr, lambda batch: self._vad(batch, probs)),
            ("speech", a.pitch, self._pitch),
            ("asr", asr, lambda batch: self._asr(batch, probs)),
        )
        for stage, enabled, fn in stages:
            if enabled:
                run_stage(stage, fn, live)

    def _vad(self, items: list[Enriched], probs: dict[int, np.ndarray]) -> None:
        from mmfs.encoders.speech_vad import chunk_probs, window_speech_prob

        found = (
            chunk_probs([_samples(it.ex) for it in items], items[0].ex.audio_rate)
            if _same_rate(items)
            else [chunk_probs([_samples(it.ex)], it.ex.audio_rate)[0] for it in items]
        )
        for it, p in zip(items, found, strict=True):
            probs[id(it)] = p
            if self.cfg.audio.vad:  # off: the VAD still finds the utterances, its column stays empty
                it.ex.audio_columns["speech_prob"] = window_speech_prob(p, _bounds(it.ex))

    def _crepe(self) -> Any:
        from mmfs.encoders import get_cached

        enc = self.cfg.encoders
        return get_cached("audio.torchcrepe", device=enc.device, batch_size=enc.batch_size)

    def _pitch(self, items: list[Enriched]) -> None:
        windows = [
            at_model_rate(
                _samples(it.ex)[round(lo * it.ex.audio_rate) : round(hi * it.ex.audio_rate)], it.ex.audio_rate
            )
            for it in items
            for lo, hi in _bounds(it.ex)
        ]
        stats = iter(self._crepe().pitch([w if len(w) else np.zeros(1, np.float32) for w in windows]))
        for it in items:
            pairs = [next(stats) for _ in it.ex.audio_windows]
            it.ex.audio_columns["f0_hz"] = [f0 for f0, _ in pairs]
            it.ex.audio_columns["voiced_frac"] = [v for _, v in pairs]

    def _asr(self, items: list[Enriched], probs: dict[int, np.ndarray]) -> None:
        """Transcribe each item's utterances; its lines land only when every item of the call worked."""
        todo = [(it, self._utterances(it, probs)) for it in items if "text" in it.ex.computed]
        todo = [(it, utts) for it, utts in todo if utts]
        if not todo:  # music, noise, silence: no recogniser is loaded or called
            return
        from mmfs.encoders import speech_asr
        from mmfs.encoders.devices import resolve_device

        a = self.cfg.audio
        rec = speech_asr.recognizer(a.asr, a.asr_model_dir, device=resolve_device(self.cfg.encoders.device))
        lines: list[tuple[Enriched, list[TextSegment]]] = []
        for it, utts in todo:
            samples = at_model_rate(_samples(it.ex), it.ex.audio_rate)
            lines.append((it, [line for u in utts if (line := _transcribe(rec, samples, u)) is not None]))
        # all or nothing: when one item fails, `run_stage` retries each item alone, and an item whose
        # lines were already added would get them twice
        for it, transcript in lines:
            it.ex.texts.extend(transcript)

    def _utterances(self, it: Enriched, probs: dict[int, np.ndarray]) -> list[Utterance]:
        """The item's speech spans; none when its VAD failed (that failure is already recorded)."""
        from mmfs.encoders.speech_vad import CHUNK, VAD_RATE

        p = probs.get(id(it))
        if p is None:
            return []
        duration = len(_samples(it.ex)) / it.ex.audio_rate
        return utterances(p, CHUNK / VAD_RATE, duration, utterance_params(self.cfg.audio))


def utterance_params(cfg: AudioConfig) -> UtteranceParams:
    """The `audio.asr_*` keys as utterance parameters."""
    return UtteranceParams(
        threshold=cfg.asr_threshold,
        min_speech_s=cfg.asr_min_speech_s,
        merge_gap_s=cfg.asr_merge_gap_s,
        pad_s=cfg.asr_pad_s,
        max_s=cfg.asr_max_utterance_s,
    )


def _transcribe(rec: Recognizer, samples: np.ndarray, utt: Utterance) -> TextSegment | None:
    """One utterance's words as one `asr` text row with the utterance's times (None: no words)."""
    from mmfs.encoders import speech_asr

    piece = samples[round(utt.start_s * MODEL_RATE) : round(utt.end_s * MODEL_RATE)]
    speech_asr.count(len(piece))
    try:
        words = rec.transcribe(piece)
    except (RuntimeError, ValueError) as err:  # the recogniser's own failures
        raise EncoderError(f"asr: {rec.name} failed: {err}") from err
    text = " ".join(w.text for w in words).strip()
    return TextSegment(text, utt.start_s, utt.end_s, "asr") if text else None


def _samples(ex: Extracted) -> np.ndarray:
    """What the speech models hear: the samples before denoising (features use the gated ones)."""
    samples = ex.audio_raw if ex.audio_raw is not None else ex.audio_samples
    assert samples is not None
    return mono(samples)


def _bounds(ex: Extracted) -> list[tuple[float, float]]:
    return [(w.start_s, w.end_s) for w in ex.audio_windows]


def _same_rate(items: list[Enriched]) -> bool:
    return len({it.ex.audio_rate for it in items}) == 1
