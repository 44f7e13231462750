"""What the configured models are, known without loading them: vector widths and provenance.

The driver lays out the store's schemas from this (`run_schemas`), so planning and committing load
no weights: a run whose items are all done, and a Ray or Beam driver, never pay for a model.
The workers that embed load the models themselves (`Enricher`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mmfs.config import EncodersConfig, PipelineConfig
from mmfs.encoders.registry import describe, import_plugins
from mmfs.schemas import Dims, all_schemas, with_provenance
from mmfs.schemas.tables import with_feature_params
from mmfs.stages.fusion import DEFAULT_LEARNED_DIM, Fusion, fusion_for
from mmfs.transforms.audio.spec import feature_params

MODALITIES = ("image", "text", "audio")
# the provenance of a column whose encoder is switched off: it holds nulls
OFF_PROVENANCE = {"name": "off", "state": "encoder switched off in the config: the column holds nulls"}


def video_options(cfg: PipelineConfig) -> dict[str, str]:
    """The clip encoder's options (clip length, local weights), as its provenance records them."""
    options = {"clip_len": str(cfg.encoders.video_clip_len)}
    if cfg.encoders.video_weights:
        options["weights"] = cfg.encoders.video_weights
    return options


class ModelMeta:
    """Widths, provenance and spaces of a config's encoders, from unloaded instances."""

    def __init__(self, cfg: PipelineConfig, off_width: int | None = None) -> None:
        self.cfg = cfg
        self.off_width = off_width  # a switched-off text encoder's columns: the store's width, if any
        import_plugins(cfg.encoders.plugins)

    def encoder(self, modality: str) -> Any:
        """The configured encoder of a modality, described (width, name, weights hash), not loaded.

        A switched-off encoder (`encoders.text: null`) is described by the default one: its columns
        keep that width (they hold nulls) so a store keeps one layout whichever stages run.
        """
        name = getattr(self.cfg.encoders, modality)
        if name is None:
            name = EncodersConfig.model_fields[modality].default
        return describe(name, self.cfg.encoders.options(name))

    def is_off(self, modality: str) -> bool:
        """Whether a modality's encoder is switched off in the config."""
        return getattr(self.cfg.encoders, modality) is None

    def video_encoder(self) -> Any:
        """The configured clip encoder, described; None when `encoders.video` is off."""
        if self.cfg.encoders.video is None:
            return None
        return describe(self.cfg.encoders.video, video_options(self.cfg))

    def widths(self) -> dict[str, int]:
        """Vector widths of the image, text and audio encoders."""
        widths = {m: int(self.encoder(m).dim) for m in MODALITIES}
        if self.is_off("text") and self.off_width is not None:
            widths["text"] = self.off_width
        return widths

    def fusion(self) -> Fusion:
        """The configured fusion method for `segments.joint` (a learned projection is a small file)."""
        return fusion_for(self.cfg, self.widths())

    def dims(self) -> dict[str, int]:
        """Vector widths of every column the encoders fill, for the table schemas."""
        dims: dict[str, int] = dict(self.widths())
        video = self.video_encoder()
        if video is not None:
            dims["video"] = int(video.dim)
        learned = self.fusion().projection
        return {**dims, "joint_learned": learned.out_dim if learned is not None else DEFAULT_LEARNED_DIM}

    def shared_space(self) -> bool:
        """Whether image and text encoders embed into one space (CLIP): frames then need no label bridge."""
        if self.is_off("text"):
            return False
        return bool(self.encoder("image").space() == self.encoder("text").space())

    def speech_provenance(self) -> dict[str, dict[str, str]]:
        """Provenance of the per-window speech columns (`audio.speech_prob`, `audio.f0_hz`)."""
        out: dict[str, dict[str, str]] = {}
        if self.cfg.audio.vad:
            from mmfs.encoders import speech_vad

            out["speech_prob"] = speech_vad.provenance()
        if self.cfg.audio.pitch:
            out["f0_hz"] = describe("audio.torchcrepe").provenance()
        return out

    def provenance(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per table and vector column, the provenance of the encoder that fills it."""
        image, text, audio = (self.encoder(m).provenance() for m in MODALITIES)
        if self.is_off("text"):
            text = dict(OFF_PROVENANCE, dim=str(self.widths()["text"]))
        motion = {"name": f"flow.{self.cfg.flow.method}", "preprocessing": self.cfg.flow.model_dump_json()}
        video = self.video_encoder()
        out = {
            "frames": {"embedding": image, "label_embedding": image if self.shared_space() else text},
            "audio": {"embedding": audio, **self.speech_provenance()},
            "text": {"embedding": text},
            "segments": {
                "visual": image,
                "motion": motion,
                "audio": audio,
                "text": text,
                "labels": text,
                "fused": text,
                "clip": {
                    "name": "clip.mean_std_motion_mean_max",
                    "frames": image["name"],
                    "motion": motion["name"],
                },
                **self.fusion().provenance(),
            },
        }
        if video is not None:
            out["segments"]["video"] = video.provenance()
        return out


# where a store keeps text-space vectors: a switched-off text encoder's columns keep that width
TEXT_SPACE_COLUMNS = (("text", "embedding"), ("segments", "fused"), ("frames", "label_embedding"))


def stored_text_width(store: Any) -> int | None:
    """The width of the store's text-space vectors (None in a new store): what a run with the text
    encoder off lays its null columns out at, so that switching it off never clashes with a store."""
    for table, column in TEXT_SPACE_COLUMNS:
        if store.has(table) and column in store.table(table).schema.names:
            kind = store.table(table).schema.field(column).type
            if pa.types.is_fixed_size_list(kind):
                return int(kind.list_size)
    return None


def run_schemas(cfg: PipelineConfig, versions: dict[str, str], store: Any = None) -> dict[str, pa.Schema]:
    """Every table's schema for a run: widths, encoders' provenance and the audio feature params."""
    off_width = stored_text_width(store) if store is not None and cfg.encoders.text is None else None
    meta = ModelMeta(cfg, off_width)
    schemas = all_schemas(Dims(**meta.dims()))
    for table, columns in meta.provenance().items():
        schemas[table] = with_provenance(schemas[table], columns)
    schemas["audio"] = with_feature_params(
        schemas["audio"], versions["audio"], feature_params(cfg.audio, cfg.align.segment_s)
    )
    return schemas
