"""The Whisper loading and decoding path, end to end on a tiny Whisper with random weights that the
test builds and saves itself (a byte-level BPE tokenizer made offline, Whisper's special and time
tokens added). Random weights say nothing about accuracy: this proves loading, block decoding, time
parsing and clipping, and agreement with transformers' own decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.errors import ConfigError, EncoderError, ErrorCode
from mmfs.transforms.audio.asr import timestamped_pieces

SR = 16_000
SPECIALS = [
    *("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>"),
    *("<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"),
]


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    import transformers as tf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder = tmp_path_factory.mktemp("whisper")
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = tf.WhisperTokenizer(vocab=vocab, merges=merges)
    tok.add_tokens(SPECIALS + [f"<|{i * 0.02:.2f}|>" for i in range(1501)], special_tokens=True)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    dims = {"d_model": 32, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "max_target_positions": 48}
    layers = {
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
    }
    cfg = tf.WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, **dims, **layers,
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
    )  # fmt: skip
    torch.manual_seed(0)
    model = tf.WhisperForConditionalGeneration(cfg)
    model.generation_config = tf.GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        no_timestamps_token_id=ids["<|notimestamps|>"], max_initial_timestamp_index=50,
        lang_to_id={"<|en|>": ids["<|en|>"]}, is_multilingual=True, max_length=40,
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
    )  # fmt: skip
    model.save_pretrained(folder, safe_serialization=True)
    tf.WhisperProcessor(
        feature_extractor=tf.WhisperFeatureExtractor(feature_size=80), tokenizer=tok
    ).save_pretrained(folder)
    return folder


def test_whisper_recognizer_loads_a_local_model_and_times_its_output(tiny_whisper: Path) -> None:
    import torch

    from mmfs.encoders.speech_asr import WhisperRecognizer, recognizer

    rec = recognizer("whisper", str(tiny_whisper))
    assert isinstance(rec, WhisperRecognizer) and recognizer("whisper", str(tiny_whisper)) is rec  # cached
    samples = (0.1 * np.random.default_rng(0).standard_normal(SR * 35)).astype(np.float32)  # two blocks
    words = rec.transcribe(samples)
    assert words, "the random model emits text"
    assert all(0 <= w.start_s <= w.end_s <= 35.0 for w in words)
    assert all(w.text and "<|" not in w.text for w in words)
    first = [w for w in words if w.end_s <= 30.0]
    # transformers' own decode of the first block, without times, has the same characters
    inputs = rec.processor(samples[: 30 * SR], sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        ids = rec.model.generate(inputs.input_features, return_timestamps=True)
    plain = rec.processor.tokenizer.decode(ids[0], skip_special_tokens=True)
    assert "".join(w.text for w in first).replace(" ", "") == plain.replace(" ", "")
    assert len(rec.provenance()["weights_sha256"]) == 64


def test_whisper_without_a_local_model_fails_clearly(tmp_path: Path) -> None:
    from mmfs.encoders.speech_asr import WhisperRecognizer, recognizer

    with pytest.raises(EncoderError) as err:
        WhisperRecognizer(str(tmp_path))
    assert err.value.code == ErrorCode.ENCODER_UNAVAILABLE and "never downloaded" in err.value.message
    with pytest.raises(ConfigError):
        recognizer("whisper", None)


def test_timestamped_pieces_parse_whisper_time_tokens() -> None:
    decoded = "<|startoftranscript|><|en|><|0.00|> Hello there.<|1.50|><|1.50|> Again<|3.00|><|endoftext|>"
    assert timestamped_pieces(decoded) == [("Hello there.", 0.0, 1.5), ("Again", 1.5, 3.0)]
    assert timestamped_pieces("<|notimestamps|> no times<|endoftext|>") == [("no times", 0.0, None)]


def test_whisper_through_the_speech_stage_gives_timed_asr_text(tiny_whisper: Path, tmp_path: Path) -> None:
    """Config -> real decode (extract) -> speech stages: the item gains `asr` text segments with times."""
    import soundfile as sf

    from mmfs.config import PipelineConfig
    from mmfs.pipelines.sources import SourceItem
    from mmfs.stages.base import apply_stages
    from mmfs.stages.decode import extract
    from mmfs.stages.items import Item, PendingItem
    from mmfs.stages.speech import speech_stages
    from mmfs.stages.versions import feature_versions

    wav = tmp_path / "noise.wav"
    sf.write(wav, (0.1 * np.random.default_rng(1).standard_normal(SR * 3)).astype(np.float32), SR)
    # threshold 0: the whole clip is one utterance (noise has no speech for the VAD to find)
    audio = {"asr": "whisper", "asr_model_dir": str(tiny_whisper), "asr_threshold": 0.0}
    cfg = PipelineConfig.model_validate({"audio": audio})
    ex = extract(PendingItem("m" * 64, SourceItem(wav, str(wav)), [str(wav)], wav.stat().st_size), cfg)
    assert not ex.failures and len(ex.audio_windows) == 3
    (item,) = apply_stages(speech_stages(cfg), [Item(ex)])
    assert not item.failures and not ex.texts  # the decoded item is not changed: the stage adds its own
    asr = [t for t in item.texts if t.source == "asr"]
    assert asr and all(
        0 <= t.start_s <= t.end_s <= 3.0 for t in asr if t.start_s is not None and t.end_s is not None
    )
    assert all(t.start_s is not None for t in asr)
    assert len(item.audio_columns["speech_prob"]) == 3 and len(item.audio_columns["snr_db"]) == 3
    # turning ASR on makes the text rows stale, never the audio rows
    plain = feature_versions(PipelineConfig.model_validate({"audio": {"asr": "none"}}))
    versions = feature_versions(cfg)
    assert versions["text"] != plain["text"] and versions["audio"] == plain["audio"]
    with pytest.raises(ConfigError):
        speech_stages(PipelineConfig.model_validate({"audio": {"asr": "whisper"}}))
