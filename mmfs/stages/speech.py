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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mmfs.config import AudioConfig, PipelineConfig
from mmfs.encoders.keyed import Keyed, run_keyed
from mmfs.encoders.models import PitchTracker, Recognizer, VoiceActivity, load_model
from mmfs.errors import ConfigError, EncoderError
from mmfs.stages.base import Resources, StageBase, StageOutput
from mmfs.stages.items import Extracted, Heard, Item
from mmfs.transforms.audio.denoise import spectral_gate, window_snr_db
from mmfs.transforms.audio.utterances import Utterance, UtteranceParams, utterances
from mmfs.transforms.text.captions import TextSegment

if TYPE_CHECKING:
    from mmfs.transforms.audio.windows import DecodedAudio

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
    if a.vad or a.asr != "none":  # ASR transcribes the utterances the VAD finds
        stages.append(VadStage(cfg))
    if a.pitch:
        stages.append(PitchStage(cfg))
    if a.asr != "none":
        stages.append(AsrStage(cfg))
    return stages


def _heard(
    item: Item,
    columns: dict[str, list[Any]] | None = None,
    transcript: tuple[TextSegment, ...] = (),
    vad_chunks: np.ndarray | None = None,
) -> Item:
    """The item with a new speech result: the earlier speech stages' columns and lines, plus these."""
    old = item.heard or Heard()
    chunks = vad_chunks if vad_chunks is not None else old.vad_chunks
    return item.with_(heard=Heard({**old.columns, **(columns or {})}, (*old.transcript, *transcript), chunks))


def _hears(item: Item) -> bool:
    return item.ex.audio_samples is not None and bool(item.ex.audio_windows)


class VadStage(StageBase):
    """Voice activity: silero-vad over the batch's tracks; `speech_prob` per window (`audio.vad`), and
    the chunk probabilities the ASR stage cuts utterances from (it runs for ASR even with vad off)."""

    name, timing = "speech", "speech"
    resources = Resources(models=("vad.silero",))

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with audio gets its chunk probabilities, and `speech_prob` per window when on."""
        from mmfs.encoders.speech_vad import window_speech_prob

        live = [it for it in batch if _hears(it)]
        if not live:
            return StageOutput(list(batch))
        chunk_probs = load_model("vad.silero", VoiceActivity).chunk_probs
        pairs = [(it.media_id, _samples(it.ex)) for it in live]
        rates = {it.ex.audio_rate for it in live}
        if len(rates) == 1:
            found = run_keyed("vad.silero", pairs, lambda waves: chunk_probs(waves, live[0].ex.audio_rate))
        else:  # one call per rate: each item's waves at its own rate
            rate_of = {it.media_id: it.ex.audio_rate for it in live}
            found = Keyed([k for k, _ in pairs], [chunk_probs([w], rate_of[k])[0] for k, w in pairs])
        out = []
        for it in batch:
            p = found.get(it.media_id)
            if p is None:
                out.append(it)
                continue
            # off: the VAD still finds the utterances, its column stays empty
            columns = {"speech_prob": window_speech_prob(p, _bounds(it.ex))} if self.cfg.audio.vad else {}
            out.append(_heard(it, columns, vad_chunks=np.asarray(p)))
        return StageOutput(out)


class PitchStage(StageBase):
    """Pitch per audio window (`f0_hz`, `voiced_frac`), CREPE over every window of the batch at once."""

    name, timing = "speech", "speech"
    resources = Resources(models=("pitch.torchcrepe",))

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with audio gets its windows' pitch columns."""
        live = [it for it in batch if _hears(it)]
        pairs = [
            (
                (it.media_id, k),
                at_model_rate(
                    _samples(it.ex)[round(lo * it.ex.audio_rate) : round(hi * it.ex.audio_rate)],
                    it.ex.audio_rate,
                ),
            )
            for it in live
            for k, (lo, hi) in enumerate(_bounds(it.ex))
        ]
        if not pairs:
            return StageOutput(list(batch))
        enc = self.cfg.encoders
        crepe = load_model("pitch.torchcrepe", PitchTracker, device=enc.device, batch_size=enc.batch_size)
        stats = run_keyed(
            "pitch.torchcrepe",
            pairs,
            lambda windows: crepe.pitch([w if len(w) else np.zeros(1, np.float32) for w in windows]),
        )
        columns: dict[str, dict[str, list[Any]]] = {}
        for it in live:
            mine = stats.select((it.media_id, k) for k in range(len(it.ex.audio_windows)))
            columns[it.media_id] = {"f0_hz": [f0 for f0, _ in mine], "voiced_frac": [v for _, v in mine]}
        return StageOutput(
            [_heard(it, columns[it.media_id]) if it.media_id in columns else it for it in batch]
        )


class AsrStage(StageBase):
    """Speech recognition (`audio.asr`) of the utterances the VAD found: one timed `asr` text row each.

    An item with no speech makes no recogniser call and loads no recogniser (`transforms/audio/utterances.py`
    cuts the utterances from the VAD's chunk probabilities).
    """

    name, timing = "asr", "speech"

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.resources = Resources(models=(f"asr.{cfg.audio.asr}",))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with speech whose text table is computed gets its transcript (all or nothing)."""
        todo = [(it, self._utterances(it)) for it in batch if _hears(it) and "text" in it.ex.computed]
        todo = [(it, utts) for it, utts in todo if utts]
        if not todo:  # music, noise, silence: no recogniser is loaded or called
            return StageOutput(list(batch))
        from mmfs.encoders.devices import resolve_device

        a = self.cfg.audio
        local = {"model_dir": a.asr_model_dir, "device": resolve_device(self.cfg.encoders.device)}
        rec = load_model(f"asr.{a.asr}", Recognizer, **(local if a.asr == "whisper" else {}))
        lines: dict[str, tuple[TextSegment, ...]] = {}
        for it, utts in todo:
            said = run_keyed(rec.name, list(enumerate(utts)), _recognise(rec, it.ex))
            lines[it.media_id] = tuple(line for line in said.select(range(len(utts))) if line is not None)
        # new items only: when one item fails, the batch is retried item by item from the same
        # inputs, so no transcript can be added twice
        return StageOutput(
            [_heard(it, transcript=lines[it.media_id]) if it.media_id in lines else it for it in batch]
        )

    def _utterances(self, it: Item) -> list[Utterance]:
        """The item's speech spans; none when its VAD failed (that failure is already recorded)."""
        from mmfs.encoders.speech_vad import CHUNK, VAD_RATE

        p = it.heard.vad_chunks if it.heard is not None else None
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


def _recognise(rec: Recognizer, ex: Extracted) -> Callable[[list[Utterance]], list[TextSegment | None]]:
    """The recogniser as a batched call over one item's utterances (each an `asr` row or None)."""
    samples = at_model_rate(_samples(ex), ex.audio_rate)
    return lambda utts: [_transcribe(rec, samples, u) for u in utts]


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
