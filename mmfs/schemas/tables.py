"""Arrow schemas of every store table: the one place a table and its key columns are defined.

Column names are a contract with tools outside mmfs (DESIGN.md): add columns freely, rename none
without a migration. Embedding widths depend on the configured encoders, so vector columns are
built from the dimensions passed in; everything else is fixed here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1"
MOTION_DIM = 16  # see MOTION_FEATURES: the flow statistics pooled into segments.motion

MOTION_FEATURES: tuple[str, ...] = (
    "mean_mag",
    "median_mag",
    "p95_mag",
    "max_mag",
    "moving_frac",
    "mean_dx",
    "mean_dy",
    "dt_s",
    *tuple(f"orient_{i}" for i in range(8)),
)


@dataclass(frozen=True)
class Dims:
    """Embedding widths of the configured encoders."""

    image: int
    text: int
    audio: int
    video: int = 0  # the clip encoder's width; 0: no video encoder, no `segments.video` column
    joint_learned: int = 256  # segments.joint_learned: the trained fusion projection's width


def vector(dim: int) -> pa.DataType:
    """A float32 vector column of a fixed width (what LanceDB indexes and searches)."""
    return pa.list_(pa.float32(), dim)


_PROVENANCE = [
    pa.field("feature_version", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
]


# Lance's marker for key columns. With it, two merge-inserts that race to insert the same new key
# conflict (one retries and updates) instead of both inserting: concurrent runs never duplicate rows.
PRIMARY_KEY_META = {"lance-schema:unenforced-primary-key": "true"}


def _schema(table: str, fields: list[pa.Field]) -> pa.Schema:
    meta = {
        "mmfs.schema_version": SCHEMA_VERSION,
        "mmfs.table": table,
        "mmfs.keys": json.dumps(list(KEYS[table])),
    }
    keys = set(KEYS[table])
    marked = [
        f.with_metadata({**(f.metadata or {}), **PRIMARY_KEY_META}) if f.name in keys else f for f in fields
    ]
    names = {f.name for f in fields}
    return pa.schema(marked + [f for f in _PROVENANCE if f.name not in names], metadata=meta)


KEYS: dict[str, tuple[str, ...]] = {
    "media": ("media_id",),
    "frames": ("media_id", "frame_index"),
    "flow": ("media_id", "frame_index"),
    "shots": ("media_id", "shot_index"),
    "audio": ("media_id", "window_index"),
    "text": ("media_id", "segment_index"),
    "segments": ("media_id", "segment_index"),
    "quarantine": ("media_id", "stage"),
    "vocabulary": ("term",),
    "runs": ("run_id",),
}

TABLES: tuple[str, ...] = tuple(KEYS)

# Vector columns per table: what `with_provenance` annotates and search may target.
VECTOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "frames": ("embedding", "label_embedding"),
    "audio": ("embedding",),
    "text": ("embedding",),
    "segments": (
        "visual",
        "motion",
        "audio",
        "text",
        "labels",
        "fused",
        "clip",
        "video",
        "joint",
        "joint_learned",
    ),
}


def clip_dim(dims: Dims) -> int:
    """Width of `segments.clip`: frame-embedding mean and std, then motion-vector mean and max."""
    return 2 * dims.image + 2 * MOTION_DIM


URI_STAT = pa.struct(
    [
        pa.field("uri", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("inode", pa.int64()),
    ]
)


def media_schema() -> pa.Schema:
    """One row per source item (distinct bytes)."""
    return _schema(
        "media",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("uri", pa.string(), nullable=False),
            pa.field("uris", pa.list_(pa.string())),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("container", pa.string()),
            pa.field("bytes", pa.int64()),
            pa.field("duration_s", pa.float64()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("fps", pa.float64()),
            pa.field("n_frames", pa.int64()),
            pa.field("rotation", pa.int32()),
            pa.field("sample_rate", pa.int32()),
            pa.field("channels", pa.int32()),
            pa.field("has_video", pa.bool_()),
            pa.field("has_audio", pa.bool_()),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("quality_flags", pa.list_(pa.string())),
            pa.field("metadata", pa.string()),
            pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
            pa.field("process_s", pa.float32()),  # CPU-stage seconds for this item in its run
            pa.field("decoder", pa.string()),  # what decoded its frames: decord, pyav, opencv, pillow
            pa.field("language", pa.string()),  # ISO 639-1 of its main text (document, captions, speech)
            pa.field("language_confidence", pa.float32()),  # how sure that tag is, 0 to 1
            # the ledger of the item's feature rows: JSON {table: [feature_version, ...]} (plan reads it)
            pa.field("row_versions", pa.string()),
            # the hash cache: each path's (size, mtime_ns, inode) when it was hashed to this media_id
            pa.field("uri_stats", pa.list_(URI_STAT)),
        ],
    )


def frames_schema(dims: Dims) -> pa.Schema:
    """One row per sampled video frame, or per image (frame_index 0, t_s 0)."""
    return _schema(
        "frames",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("frame_index", pa.int64(), nullable=False),
            pa.field("t_s", pa.float64(), nullable=False),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("thumbnail", pa.binary()),
            pa.field("labels", pa.list_(pa.string())),
            pa.field("label_scores", pa.list_(pa.float32())),
            pa.field("embedding", vector(dims.image)),
            pa.field("label_embedding", vector(dims.text)),
            *IMAGE_ANALYSIS_FIELDS,
            *IMAGE_CUE_FIELDS,
        ],
    )


# Image analysis of a frame (docs/image-analysis.md); null where that analysis is switched off.
IMAGE_ANALYSIS_FIELDS = (
    pa.field("color_hist", pa.list_(pa.float32())),  # H, S, V histograms (8 bins each, each sums to 1)
    pa.field("edge_density", pa.float32()),  # fraction of Canny edge pixels
    pa.field("sharpness", pa.float32()),  # variance of the Laplacian at decode size
    pa.field("brightness", pa.float32()),  # mean grey, 0..1
    pa.field("contrast", pa.float32()),  # grey standard deviation, 0..1
    pa.field("quality_flags", pa.list_(pa.string())),  # blurry, dark, bright, low_contrast
    pa.field("n_faces", pa.int32()),  # MTCNN faces
    pa.field("face_boxes", pa.list_(pa.list_(pa.float32()))),  # x0, y0, x1, y1 as fractions of the frame
    pa.field("nsfw", pa.bool_()),  # nsfw_score >= image.nsfw_threshold
    pa.field("nsfw_score", pa.float32()),  # NudeNet's highest explicit-class score, 0 when none
)


# The label bridge's cues of a frame (encoders/label_bridge.py); null where CLIP made the text vector.
IMAGE_CUE_FIELDS = (
    pa.field("colours", pa.list_(pa.string())),  # named colours covering >= 8% of the frame, most first
    pa.field("style", pa.string()),  # photo, black and white photo, drawing
    pa.field("has_text", pa.bool_()),  # OCR read words in it (false when image.ocr is off)
    pa.field("bridge_text", pa.string()),  # the bridge's words: likely classes, then the cues
)


FLOW_UNITS = (
    "pixels of the work-size frame (work_width x work_height columns: the decoded frame resized to "
    "flow.work_width, aspect kept), per frame pair; x right, y down; rotation in degrees, "
    "counter-clockwise on screen > 0"
)


def flow_schema() -> pa.Schema:
    """One row per pair of consecutive sampled frames; every length in pixels of the work-size frame.

    `field` is the downsampled flow (rows, cols, 2) as little-endian float16 bytes (DuckDB cannot
    read Arrow float16 lists); its shape is in `field_shape`. `global_*` is the camera motion (a
    similarity fit: centre shift, rotation, scale), `residual_*` the object motion left beside it.
    """
    schema = _schema(
        "flow",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("frame_index", pa.int64(), nullable=False),
            pa.field("next_frame_index", pa.int64()),
            pa.field("t_s", pa.float64(), nullable=False),
            pa.field("dt_s", pa.float64()),
            pa.field("mean_mag", pa.float32()),
            pa.field("median_mag", pa.float32()),
            pa.field("p95_mag", pa.float32()),
            pa.field("max_mag", pa.float32()),
            pa.field("mean_dx", pa.float32()),
            pa.field("mean_dy", pa.float32()),
            pa.field("orient_hist", pa.list_(pa.float32())),
            pa.field("moving_frac", pa.float32()),
            pa.field("field", pa.binary()),
            pa.field("field_shape", pa.list_(pa.int32())),
            pa.field("method", pa.string()),  # flow.method: farneback, dis_fast or dis_medium
            pa.field("work_width", pa.int32()),  # the frame size every length here is measured at
            pa.field("work_height", pa.int32()),
            pa.field("global_dx", pa.float32()),  # camera motion: shift of the frame centre
            pa.field("global_dy", pa.float32()),
            pa.field("global_rotation_deg", pa.float32()),  # counter-clockwise on screen > 0
            pa.field("global_scale", pa.float32()),  # > 1: zoom in
            pa.field("global_inlier_frac", pa.float32()),  # grid cells the camera model explains
            pa.field("residual_mean_mag", pa.float32()),  # object motion: flow minus camera motion
            pa.field("residual_moving_frac", pa.float32()),
        ],
    )
    return schema.with_metadata({**(schema.metadata or {}), b"mmfs.units": FLOW_UNITS.encode()})


MATRIX = pa.list_(pa.list_(pa.float32()))  # (rows, n_frames), frames innermost
PER_CHANNEL = pa.list_(MATRIX)  # (channels, rows, n_frames): the channel axis outermost


def _shape(shape: str, **meta: str) -> dict[str, str]:
    """Field metadata: the stored array's axes, outermost first."""
    return {"mmfs.shape": shape, **meta}


def shots_schema() -> pa.Schema:
    """One row per detected shot (hard cuts): [start_s, end_s) and the histogram score of the cut into it."""
    return _schema(
        "shots",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("shot_index", pa.int64(), nullable=False),
            pa.field("start_s", pa.float64(), nullable=False),
            pa.field("end_s", pa.float64(), nullable=False),
            pa.field("start_frame", pa.int64()),  # decoder index of the shot's first frame
            pa.field("cut_score", pa.float32()),  # 0 for the first shot
        ],
    )


def audio_schema(dims: Dims) -> pa.Schema:
    """One row per audio window on the segment grid; log_mel is (n_mels, n_frames), mfcc likewise.

    Matrices are of the mixdown; `*_channels` columns hold each channel under `audio.channels: keep`.
    The feature parameters are in the schema metadata (`audio_features_metadata`).
    """
    return _schema(
        "audio",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("window_index", pa.int64(), nullable=False),
            pa.field("start_s", pa.float64(), nullable=False),
            pa.field("end_s", pa.float64(), nullable=False),
            pa.field("n_frames", pa.int32()),
            pa.field("log_mel", MATRIX, metadata=_shape("n_mels x n_frames", unit="dB")),
            pa.field("mfcc", MATRIX, metadata=_shape("n_mfcc x n_frames")),
            pa.field("rms", pa.float32()),
            pa.field("flags", pa.list_(pa.string())),
            pa.field("embedding", vector(dims.audio)),
            pa.field("mfcc_delta", MATRIX, metadata=_shape("n_mfcc x n_frames")),
            pa.field("mfcc_delta2", MATRIX, metadata=_shape("n_mfcc x n_frames")),
            pa.field("spectrogram_power", MATRIX, metadata=_shape("(n_fft/2+1) x n_frames")),
            pa.field("spectrogram_magnitude", MATRIX, metadata=_shape("(n_fft/2+1) x n_frames")),
            pa.field("zcr", pa.float32()),  # zero crossings per sample pair over the window
            pa.field("centroid_hz", pa.float32(), metadata={"mmfs.reduce": "mean over frames"}),
            pa.field("bandwidth_hz", pa.float32(), metadata={"mmfs.reduce": "mean over frames"}),
            pa.field("rolloff_hz", pa.float32(), metadata={"mmfs.reduce": "mean over frames"}),
            pa.field("n_channels", pa.int32()),  # 1: downmixed; else the channels in *_channels
            pa.field("log_mel_channels", PER_CHANNEL, metadata=_shape("channels x n_mels x n_frames")),
            pa.field("mfcc_channels", PER_CHANNEL, metadata=_shape("channels x n_mfcc x n_frames")),
            pa.field(
                "stats_channels",
                MATRIX,
                metadata=_shape("channels x 5", columns="rms,zcr,centroid_hz,bandwidth_hz,rolloff_hz"),
            ),
            # speech and sound (stages/speech.py); null when the stage is off
            pa.field("snr_db", pa.float32()),  # against the item's noise floor (quietest frames)
            pa.field("snr_db_denoised", pa.float32()),  # the same after spectral gating (audio.denoise)
            pa.field("speech_prob", pa.float32()),  # silero-vad, mean over the window (audio.vad)
            pa.field("f0_hz", pa.float32()),  # torchcrepe median f0 of voiced frames (audio.pitch)
            pa.field("voiced_frac", pa.float32()),  # share of voiced CREPE frames (audio.pitch)
        ],
    )


FEATURES_META = "mmfs.features"  # schema metadata: the current feature parameters, with their version


def with_feature_params(schema: pa.Schema, version: str, params: Mapping[str, object]) -> pa.Schema:
    """Record the parameters that made a table's features: under `mmfs.features` (the current ones,
    with their feature_version) and under `mmfs.features.<version>` (kept for rows of older versions)."""
    meta = dict(schema.metadata or {})
    text = json.dumps(dict(params), sort_keys=True)
    meta[FEATURES_META] = json.dumps({"feature_version": version, **dict(params)}, sort_keys=True)
    meta[f"{FEATURES_META}.{version}"] = text
    return schema.with_metadata(meta)


ENTITY_TYPE = pa.struct(
    [
        pa.field("text", pa.string()),
        pa.field("label", pa.string()),
        pa.field("start_char", pa.int32()),
        pa.field("end_char", pa.int32()),
    ]
)
# card and iban were added later: stores made before get them as nulls (store/db.py migrates structs)
PII_COUNTS_TYPE = pa.struct(
    [pa.field(k, pa.int32()) for k in ("email", "url", "phone", "person", "card", "iban")]
)


def text_schema(dims: Dims) -> pa.Schema:
    """One row per text segment: sentence, caption line, chunk or image-label line."""
    return _schema(
        "text",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("segment_index", pa.int64(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("start_s", pa.float64()),
            pa.field("end_s", pa.float64()),
            pa.field("text", pa.string(), nullable=False),
            pa.field("tokens", pa.list_(pa.string())),
            pa.field("lemmas", pa.list_(pa.string())),
            pa.field("stems", pa.list_(pa.string())),
            pa.field("is_stop", pa.list_(pa.bool_())),
            pa.field("embedding", vector(dims.text)),
            pa.field("charset", pa.string()),  # what the source bytes were decoded with
            pa.field("language", pa.string()),  # ISO 639-1, per source document (py3langid)
            pa.field("pos", pa.list_(pa.string())),  # universal POS per token (spaCy backend)
            pa.field("entities", pa.list_(ENTITY_TYPE)),  # named entities (spaCy backend)
            pa.field("pii_counts", PII_COUNTS_TYPE),  # placeholders in this row (text.redact_pii)
            # bag of words over the corpus vocabulary (`vocabulary` table): sorted term ids, counts,
            # and L2-normalised TF-IDF values at the same ids; filled by the run's corpus step
            pa.field("bow_indices", pa.list_(pa.int32())),
            pa.field("bow_counts", pa.list_(pa.float32())),
            pa.field("tfidf", pa.list_(pa.float32())),
            pa.field("vocab_version", pa.string()),
        ],
    )


def vocabulary_schema() -> pa.Schema:
    """One row per term of the corpus vocabulary (word n-grams) that `text.bow_indices` refer to."""
    return _schema(
        "vocabulary",
        [
            pa.field("term", pa.string(), nullable=False),
            pa.field("term_id", pa.int32(), nullable=False),
            pa.field("df", pa.int64()),  # text rows holding the term
            pa.field("idf", pa.float64()),  # ln((1 + n_docs) / (1 + df)) + 1
            pa.field("n_docs", pa.int64()),
            pa.field("vocab_version", pa.string()),
        ],
    )


def segments_schema(dims: Dims) -> pa.Schema:
    """One row per aligned window: a vector per modality present, and `fused` in the text space."""
    return _schema(
        "segments",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("segment_index", pa.int64(), nullable=False),
            pa.field("start_s", pa.float64()),  # null for the chunks of an untimed document
            pa.field("end_s", pa.float64()),
            pa.field("kind", pa.string()),
            pa.field("visual", vector(dims.image)),
            pa.field("motion", vector(MOTION_DIM)),
            pa.field("audio", vector(dims.audio)),
            pa.field("text", vector(dims.text)),
            pa.field("labels", vector(dims.text)),
            pa.field("fused", vector(dims.text)),
            pa.field("modalities", pa.list_(pa.string())),
            # fusion: the normalised concatenation of visual/motion/audio/text and which blocks it holds;
            # with encoders.fusion = learned, also its trained projection (`mmfs train-fusion`)
            pa.field("joint", vector(dims.image + MOTION_DIM + dims.audio + dims.text)),
            pa.field("joint_mask", pa.list_(pa.bool_())),
            pa.field("joint_learned", vector(dims.joint_learned)),
            pa.field("transcript", pa.string()),
            pa.field("label_text", pa.string()),
            # from the frames inside the segment (image analysis); null where not analysed
            pa.field("nsfw", pa.bool_()),  # any frame flagged
            pa.field("nsfw_score", pa.float32()),  # highest frame score
            pa.field("faces", pa.int32()),  # most faces in one frame
            pa.field("clip", vector(clip_dim(dims))),  # clip-level features (video/action_pooling.py)
            # the video encoder's clip vectors pooled per window (encoders.video)
            *([pa.field("video", vector(dims.video))] if dims.video else []),
        ],
    )


def quarantine_schema() -> pa.Schema:
    """One row per failed item per stage; `media_id` is `uri:<uri>` when the bytes were unreadable."""
    return _schema(
        "quarantine",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("stage", pa.string(), nullable=False),
            pa.field("uri", pa.string()),
            pa.field("error_code", pa.int32()),
            pa.field("error_type", pa.string()),
            pa.field("message", pa.string()),
            pa.field("retryable", pa.bool_()),
            pa.field("attempts", pa.int32()),
            pa.field("first_seen", pa.timestamp("us", tz="UTC")),
            pa.field("last_seen", pa.timestamp("us", tz="UTC")),
            # JSON: what the probe saw (kind, container, codecs, duration, size, rate, channels, bytes)
            pa.field("detail", pa.string()),
            pa.field("error_name", pa.string()),  # the code by name (EMPTY_FILE), as media.error shows it
        ],
    )


def runs_schema() -> pa.Schema:
    """One row per pipeline run: its config, timing and counts."""
    return _schema(
        "runs",
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("config", pa.string()),
            pa.field("config_hash", pa.string()),
            pa.field("runner", pa.string()),
            pa.field("status", pa.string()),
            pa.field("started_at", pa.timestamp("us", tz="UTC")),
            pa.field("ended_at", pa.timestamp("us", tz="UTC")),
            pa.field("n_items", pa.int64()),
            pa.field("n_ok", pa.int64()),
            pa.field("n_quarantined", pa.int64()),
            pa.field("n_skipped", pa.int64()),
            pa.field("rows", pa.string()),
            pa.field("stage_seconds", pa.string()),
            pa.field("table_versions", pa.string()),
            pa.field("versions_before", pa.string()),
            pa.field("mmfs_version", pa.string()),
            pa.field("vocabulary", pa.string()),  # JSON: what the corpus step did to the vocabulary
        ],
    )


def all_schemas(dims: Dims) -> dict[str, pa.Schema]:
    """Every table's schema for the given encoder widths."""
    return {
        "media": media_schema(),
        "frames": frames_schema(dims),
        "flow": flow_schema(),
        "shots": shots_schema(),
        "audio": audio_schema(dims),
        "text": text_schema(dims),
        "segments": segments_schema(dims),
        "quarantine": quarantine_schema(),
        "vocabulary": vocabulary_schema(),
        "runs": runs_schema(),
    }


def with_provenance(schema: pa.Schema, provenance: Mapping[str, Mapping[str, object]]) -> pa.Schema:
    """Record, per vector column, which encoder and parameters made it (schema metadata)."""
    meta = dict(schema.metadata or {})
    for column, info in provenance.items():
        if column not in schema.names:
            raise KeyError(f"{column!r} is not a column of {meta.get(b'mmfs.table')!r}")
        meta[f"mmfs.provenance.{column}"] = json.dumps(dict(info), sort_keys=True)
    return schema.with_metadata(meta)
