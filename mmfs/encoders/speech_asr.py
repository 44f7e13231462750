"""Offline speech recognisers: pocketsphinx (English model inside its wheel) and a Whisper-class model
from a local directory (transformers), both giving words or phrases with times in seconds.

Models load once per process (`recognizer()` caches them), and only when an item has speech. Each call
decodes one utterance (a span the VAD found, `transforms/audio/utterances.py`), so memory stays flat in the
item's duration; Whisper cuts anything over 30 s into blocks, its timestamps offset by each block's
start. `CALLS` counts the utterances and seconds that the speech stage handed to a recogniser in
this process (speech-free audio must add nothing to it).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from mmfs.errors import ConfigError, EncoderError, ErrorCode
from mmfs.transforms.audio.asr import Word, clean_word, timestamped_pieces

ASR_RATE = 16_000
WHISPER_BLOCK_S = 30.0
_CACHE: dict[tuple[str, str | None], Recognizer] = {}
_LOCK = threading.Lock()
CALLS: dict[str, float] = {"utterances": 0, "seconds": 0.0}  # decoded by any recogniser in this process


class Recognizer(Protocol):
    """Words with times (from the start of the samples) of one utterance: mono float32 at ASR_RATE."""

    name: str

    def transcribe(self, samples: np.ndarray) -> list[Word]: ...

    def provenance(self) -> dict[str, str]: ...


class PocketsphinxRecognizer:
    """CMU pocketsphinx 5 with its bundled US English acoustic model, dictionary and language model."""

    name = "asr.pocketsphinx"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=ASR_RATE, loglevel="FATAL")
        self.frame_rate = int(self.decoder.config["frate"])
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> list[Word]:
        """Decode the samples as one utterance (the decoder's own search over the whole span)."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        with self._lock:  # one decoder, one utterance at a time
            d = self.decoder
            # the feature front end keeps its cepstral mean from earlier utterances: reset it, so an
            # utterance gets the same words whatever the process decoded before (local = Ray = Beam)
            d.reinit_feat()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            segments = list(d.seg())
        out = []
        for seg in segments:
            word = clean_word(seg.word)
            if word is not None:
                start = seg.start_frame / self.frame_rate
                end = (seg.end_frame + 1) / self.frame_rate
                out.append(Word(word, start, end, float(min(1.0, seg.prob))))
        return out

    def provenance(self) -> dict[str, str]:
        import importlib.metadata

        return {
            "name": self.name,
            "package": f"pocketsphinx=={importlib.metadata.version('pocketsphinx')}",
            "model": "en-us (bundled)",
        }


class WhisperRecognizer:
    """A Whisper-class model (`WhisperForConditionalGeneration` + processor) from a local directory."""

    name = "asr.whisper"

    def __init__(self, model_dir: str, device: str = "cpu") -> None:
        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise EncoderError(
                f"asr: no Whisper model in {path} (config.json missing); weights are never downloaded",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.model_dir = path
        self.device = device
        try:
            self.processor = WhisperProcessor.from_pretrained(str(path), local_files_only=True)
            model = WhisperForConditionalGeneration.from_pretrained(
                str(path), local_files_only=True, use_safetensors=True
            )
        except (OSError, ValueError) as err:  # missing or broken files, a config of another model
            raise EncoderError(
                f"asr: cannot load a Whisper model from {path}: {err}", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err
        self.model = model.eval().to(device)
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> list[Word]:
        """Phrases with times: each 30 s block decoded with timestamps, offsets added."""
        words: list[Word] = []
        step = int(WHISPER_BLOCK_S * ASR_RATE)
        for start in range(0, max(1, len(samples)), step):
            block = samples[start : start + step]
            words.extend(self._block(block, start / ASR_RATE, len(block) / ASR_RATE))
        return words

    def _block(self, block: np.ndarray, offset_s: float, length_s: float) -> list[Word]:
        import torch

        inputs = self.processor(block, sampling_rate=ASR_RATE, return_tensors="pt")
        with self._lock, torch.inference_mode():
            ids = self.model.generate(inputs.input_features.to(self.device), return_timestamps=True)
        decoded = self.processor.tokenizer.decode(
            ids[0], skip_special_tokens=False, decode_with_timestamps=True
        )
        return [  # an untrained or confused model may stamp past the block: clipped to it
            Word(
                text, offset_s + min(lo, length_s), offset_s + (length_s if hi is None else min(hi, length_s))
            )
            for text, lo, hi in timestamped_pieces(decoded)
        ]

    def provenance(self) -> dict[str, str]:
        from mmfs.encoders.base import sha256_files

        weights = sorted(self.model_dir.glob("*.safetensors"))
        return {
            "name": self.name,
            "model": str(self.model_dir),
            "weights_sha256": sha256_files(tuple(weights)) if weights else "",
        }


def count(n_samples: int) -> None:
    """Record one utterance of `n_samples` decoded (the process-wide `CALLS`)."""
    with _LOCK:
        CALLS["utterances"] += 1
        CALLS["seconds"] += n_samples / ASR_RATE


def recognizer(kind: str, model_dir: str | None = None, device: str = "cpu") -> Recognizer:
    """The process-wide recogniser for `audio.asr` (`pocketsphinx` or `whisper`)."""
    key = (kind, model_dir)
    with _LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _build(kind, model_dir, device)
            _CACHE[key] = found
        return found


def _build(kind: str, model_dir: str | None, device: str) -> Recognizer:
    if kind == "pocketsphinx":
        try:
            return PocketsphinxRecognizer()
        except ImportError as err:
            raise EncoderError(
                "asr: pocketsphinx is not installed", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err
    if kind == "whisper":
        if not model_dir:
            raise ConfigError("audio.asr = whisper needs audio.asr_model_dir (a local model directory)")
        return WhisperRecognizer(model_dir, device)
    raise ConfigError(f"unknown audio.asr '{kind}'; known: none, pocketsphinx, whisper")


def load_pocketsphinx(**_: object) -> Recognizer:
    """The process's pocketsphinx recogniser (the `asr.pocketsphinx` model)."""
    return recognizer("pocketsphinx")


def load_whisper(model_dir: str | None = None, device: str = "cpu") -> Recognizer:
    """The process's Whisper-class recogniser from a local directory (the `asr.whisper` model)."""
    return recognizer("whisper", model_dir, device)
