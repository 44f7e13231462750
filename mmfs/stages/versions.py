"""Each table's `feature_version` for a config: a short hash of exactly the config that shapes its rows
and the encoder names, so a later change of one parameter identifies the rows it makes stale.

Light on purpose (the config, hashes and constants only): the planner and `mmfs plan` / `status`
compute versions without importing the stages' transforms (OpenCV, numba, PyAV, decord).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmfs.config import PipelineConfig, short_hash
from mmfs.encoders.registry import identity
from mmfs.media.hashing import sha256_file
from mmfs.stages.recompute import MODALITY_TABLES
from mmfs.transforms.audio.spec import ANALYSIS as AUDIO_ANALYSIS


def feature_versions(cfg: PipelineConfig) -> dict[str, str]:
    """The feature_version of every table for this config."""
    c = cfg.model_dump(mode="json")
    off = _switched_off(c)  # the stage switches leave the versions of a default config as they were
    if not c["flow"]["enabled"]:  # (an older switch: it stays in the flow section's hash as well)
        off["align"].append("flow.enabled=off")
    enc = {m: encoder_identity(cfg, m) for m in ("image", "text", "audio")}
    frames = short_hash("frames", c["video"], c["image"], enc["image"], enc["text"], c["quality"])
    if off["frames"]:  # no labels or no thumbnails: other frame rows
        frames = short_hash(frames, off["frames"])
    e = c["encoders"]
    if e.get("video"):  # clip vectors come from the frames: a video encoder shapes them too
        frames = short_hash(
            frames, (e["video"], e["video_weights"], e["video_clip_len"], c["align"]["segment_s"])
        )
    flow = short_hash("flow", c["video"], c["flow"]) if c["flow"]["enabled"] else FLOW_OFF
    # where (device), not what, is computed; ASR makes text rows, not audio rows
    audio_cfg = {k: v for k, v in c["audio"].items() if k != "device" and not k.startswith("asr")}
    audio = short_hash("audio", audio_cfg, c["align"]["segment_s"], enc["audio"], AUDIO_ANALYSIS)
    # text.vocabulary is the corpus step's policy; it does not shape the rows an item makes
    text_cfg = {k: v for k, v in c["text"].items() if k != "vocabulary"}
    ocr = [_ocr_params(c["image"])] if c["image"]["ocr"] else []  # OCR rows are text rows
    text = short_hash("text", text_cfg, c["align"]["chunk_chars"], enc["text"], *ocr)
    if c["audio"]["asr"] != "none":  # transcripts are text rows; versions without ASR stay as they were
        text = short_hash(text, {k: v for k, v in c["audio"].items() if k.startswith("asr")})
    align_v = short_hash("align", c["align"], fusion_identity(cfg))
    if off["align"]:  # a video's audio or flow off: every item's segments are redone when it is switched
        align_v = short_hash(align_v, off["align"])
    versions = {"frames": frames, "flow": flow, "audio": audio, "text": text, "align": align_v}
    versions["shots"] = short_hash("shots", {k: c["video"][k] for k in SHOT_KEYS})
    versions["segments"] = segments_version(versions, MODALITY_TABLES)
    if not cfg.align.segments:  # no segment rows: an item's old ones are stale and go
        versions["align"] = versions["segments"] = SEGMENTS_OFF
    # how often a retryable failure is tried again decides no row's content
    limits = {k: v for k, v in c["limits"].items() if k != "max_attempts"}
    versions["media"] = versions["quarantine"] = short_hash("media", versions["segments"], limits)
    return versions


SEGMENTS_OFF = "segments-off"  # the segments version (and align's) of a config with align.segments off
FLOW_OFF = "flow-off"  # the flow version of a config with flow.enabled off

# Stage switches (section, key) and the table version each one enters when off (docs/config.md)
_SWITCHES = {
    ("image", "labels"): "frames",
    ("image", "thumbnails"): "frames",
    ("video", "audio"): "align",
    ("align", "segments"): "align",
}


def _switched_off(c: dict[str, Any]) -> dict[str, list[str]]:
    """Take the stage switches out of the dumped config `c`; per table version, those that are off."""
    off: dict[str, list[str]] = {"frames": [], "align": []}
    for (section, key), table in _SWITCHES.items():
        if not c[section].pop(key, True):
            off[table].append(f"{section}.{key}=off")
    return off


SHOT_KEYS = ("shot_threshold", "min_shot_s", "shot_size", "backend")  # the video options shots depend on


def encoder_identity(cfg: PipelineConfig, modality: str) -> str:
    """The configured encoder of a modality as it decides vectors (name, pinned weights, options)."""
    name = getattr(cfg.encoders, modality)
    if name is None:  # switched off (encoders.text: null): its vectors are null
        return "off"
    return identity(name, cfg.encoders.options(name))


def fusion_identity(cfg: PipelineConfig) -> str:
    """The fusion method as it decides `segments.joint`: its name, and the projection file's sha256."""
    weights = cfg.encoders.fusion_weights
    if cfg.encoders.fusion == "concat" or not weights:
        return cfg.encoders.fusion
    try:
        return f"learned@{sha256_file(Path(weights))}"
    except OSError:  # reported with its reason when the run loads the projection
        return f"learned@{weights}"


def segments_version(versions: dict[str, str], tables: Iterable[str]) -> str:
    """An item's segments depend on the grid and on the modality tables it has rows in, only."""
    if versions["align"] == SEGMENTS_OFF:
        return SEGMENTS_OFF
    present = sorted(t for t in set(tables) if t in MODALITY_TABLES)
    return short_hash("segments", versions["align"], {t: versions[t] for t in present})


def _ocr_params(image: dict[str, Any]) -> dict[str, Any]:
    """The image settings that shape OCR text rows."""
    return {k: image[k] for k in ("ocr", "ocr_min_confidence", "ocr_det_side")}
