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
    "segments": ("visual", "motion", "audio", "text", "labels", "fused", "joint", "joint_learned"),
}


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
        ],
    )


def flow_schema() -> pa.Schema:
    """One row per pair of consecutive sampled frames; magnitudes in pixels at the work width.

    `field` is the downsampled flow (rows, cols, 2) as little-endian float16 bytes (DuckDB cannot
    read Arrow float16 lists); its shape is in `field_shape`.
    """
    return _schema(
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
        ],
    )


def audio_schema(dims: Dims) -> pa.Schema:
    """One row per audio window on the segment grid; log_mel is (n_mels, n_frames), mfcc likewise."""
    return _schema(
        "audio",
        [
            pa.field("media_id", pa.string(), nullable=False),
            pa.field("window_index", pa.int64(), nullable=False),
            pa.field("start_s", pa.float64(), nullable=False),
            pa.field("end_s", pa.float64(), nullable=False),
            pa.field("n_frames", pa.int32()),
            pa.field("log_mel", pa.list_(pa.list_(pa.float32()))),
            pa.field("mfcc", pa.list_(pa.list_(pa.float32()))),
            pa.field("rms", pa.float32()),
            pa.field("flags", pa.list_(pa.string())),
            pa.field("embedding", vector(dims.audio)),
        ],
    )


ENTITY_TYPE = pa.struct(
    [
        pa.field("text", pa.string()),
        pa.field("label", pa.string()),
        pa.field("start_char", pa.int32()),
        pa.field("end_char", pa.int32()),
    ]
)
PII_COUNTS_TYPE = pa.struct([pa.field(k, pa.int32()) for k in ("email", "url", "phone", "person")])


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
