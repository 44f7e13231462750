"""CLIP-class text-image encoders (Hugging Face transformers `CLIPModel`): one model, two towers.

`image.clip` embeds images and `text.clip` embeds text into the same space, so a text query ranks
frames by their image vectors. Both names share one loaded model per (checkpoint, device). The
checkpoint is `encoders.clip_model_dir` (a folder in `save_pretrained` layout, read with
`local_files_only` and safetensors only) or a hub id looked up in the Hugging Face cache first and
downloaded only when the hub is reachable (`HF_HUB_OFFLINE=1` makes that fail fast, as in tests).
No CLIP checkpoint installs offline here, so the defaults stay EfficientNet + MiniLM (the label bridge).
Labels for `frames.labels` come from CLIP itself: zero-shot over the 1000 ImageNet class names.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.image_efficientnet import NUM_CLASSES, Labels, _as_rgb, imagenet_categories
from mmfs.encoders.registry import register
from mmfs.encoders.text_minilm import _quiet_progress_bars
from mmfs.errors import EncoderError, ErrorCode

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
PROMPT = "a photo of a {}."  # CLIP's zero-shot prompt for the ImageNet class names

_SHARED: dict[tuple[str, str], tuple[Any, Any]] = {}  # (checkpoint, device) -> (model, processor)
_SHARED_LOCK = threading.Lock()


def checkpoint_folder(model: str) -> Path:
    """The local folder holding `model`: the directory itself, or its snapshot in the HF cache."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not cached (any hub error): fetch it when the hub can be reached
        try:
            return Path(snapshot_download(model, allow_patterns=["*.json", "*.txt", "*.safetensors"]))
        except Exception as err:  # offline, unknown repo, no network: one clear line
            raise EncoderError(
                f"CLIP checkpoint '{model}' is neither a local folder nor in the Hugging Face cache, and "
                f"cannot be downloaded ({type(err).__name__}); set encoders.clip_model_dir",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            ) from err


def load_clip(model: str, device: str) -> tuple[Any, Any]:
    """(CLIPModel in eval mode on `device`, CLIPProcessor) for a checkpoint, loaded once per process."""
    key = (model, device)
    with _SHARED_LOCK:
        if key not in _SHARED:
            from transformers import CLIPModel, CLIPProcessor

            folder = checkpoint_folder(model)
            try:
                with _quiet_progress_bars():
                    clip = CLIPModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
                    processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
            except (OSError, ValueError) as err:
                raise EncoderError(
                    f"cannot load CLIP from {folder}: {err}", code=ErrorCode.ENCODER_UNAVAILABLE
                ) from err
            _SHARED[key] = (clip.eval().to(device), processor)
        return _SHARED[key]


class _ClipTower(Encoder):
    """What both towers share: the checkpoint option, loading, weight files and the shared space."""

    model_name = "CLIP (transformers CLIPModel)"
    package = "transformers"
    approx_memory_mb = 600
    batch_size_hint: ClassVar[dict[str, int]] = {"cpu": 32, "cuda": 512}

    @property
    def checkpoint(self) -> str:
        """The configured folder or hub id (`options['model']`)."""
        return self.options.get("model") or DEFAULT_MODEL

    def weight_files(self) -> list[Path]:
        """The checkpoint's weight files (safetensors, or pytorch_model*.bin), sorted."""
        folder = checkpoint_folder(self.checkpoint)
        safetensors = sorted(folder.glob("*.safetensors"))
        files = safetensors or sorted(folder.glob("pytorch_model*.bin"))
        if not files:
            raise EncoderError(
                f"{self.name}: no weight files in {folder}", code=ErrorCode.ENCODER_UNAVAILABLE
            )
        return files

    def describe(self) -> None:
        """Width and name from the checkpoint's `config.json`: no weights loaded."""
        try:
            config = json.loads((checkpoint_folder(self.checkpoint) / "config.json").read_text())
            self.dim = int(config["projection_dim"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise EncoderError(
                f"{self.name}: cannot read the width of {self.checkpoint} ({err})",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            ) from err
        self.model_name = f"CLIP {self.checkpoint}"

    def _load(self) -> None:
        self.model, self.processor = load_clip(self.checkpoint, self.device)
        self.dim = int(self.model.config.projection_dim)
        self.model_name = f"CLIP {self.checkpoint}"

    def space(self) -> str:
        """Both towers of one checkpoint embed into the same space."""
        return f"clip:{self.checkpoint}"

    def _text_features(self, texts: list[str]) -> Any:
        """Projected text features of a list of strings (truncated to the model's context)."""
        tokens = self.processor.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=int(self.model.config.text_config.max_position_embeddings),
            return_tensors="pt",
        ).to(self.device)
        return _pooled(self.model.get_text_features(**tokens))


@register("text.clip")
class ClipTextEncoder(_ClipTower):
    """CLIP's text tower: strings into the shared text-image space."""

    modality = "text"

    def preprocessing(self) -> dict[str, Any]:
        """The tokenizer and its context length."""
        self.load()
        return {
            "tokenizer": type(self.processor.tokenizer).__name__,
            "max_length": int(self.model.config.text_config.max_position_embeddings),
            "projection": "text_projection of the pooled EOS token",
        }

    def input_problem(self, item: Any) -> str | None:
        """Only str is accepted."""
        return None if isinstance(item, str) else f"expected str, got {type(item).__name__}"

    def _embed_batch(self, batch: Any) -> np.ndarray:
        return self._text_features(list(batch)).float().cpu().numpy()


@register("image.clip")
class ClipImageEncoder(_ClipTower):
    """CLIP's image tower: HxWx3 uint8 RGB images into the shared text-image space."""

    modality = "image"
    _label_vectors: Any = None

    def preprocessing(self) -> dict[str, Any]:
        """The checkpoint's image processor settings (resize, crop, mean/std)."""
        self.load()
        ip = self.processor.image_processor
        return {
            "input": "HxWx3 uint8 RGB (HxW grey and HxWx4 RGBA accepted)",
            "resize_shortest_edge": _jsonable(ip.size),
            "center_crop": _jsonable(ip.crop_size),
            "resample": str(ip.resample),
            "image_mean": list(ip.image_mean),
            "image_std": list(ip.image_std),
            "labels": f"zero-shot over ImageNet-1k class names, prompt {PROMPT!r}",
        }

    def input_problem(self, item: Any) -> str | None:
        """Only uint8 images with 1, 3 or 4 channels and at least one pixel are accepted."""
        if not isinstance(item, np.ndarray) or item.dtype != np.uint8:
            return f"expected a uint8 numpy image, got {type(item).__name__} {getattr(item, 'dtype', '')}"
        if not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (1, 3, 4))) or 0 in item.shape:
            return f"expected HxWx3 RGB (or HxW, HxWx4), got shape {item.shape}"
        return None

    def _prepare(self, chunk: Sequence[np.ndarray]) -> Any:
        """The processor's pixel values (CPU; pinned on CUDA so the copy is asynchronous)."""
        pixels = self.processor.image_processor(
            images=[_writable(_as_rgb(image)) for image in chunk], return_tensors="pt"
        )["pixel_values"]
        return pixels.pin_memory() if self.device.startswith("cuda") else pixels

    def _embed_batch(self, batch: Any) -> np.ndarray:
        return self._image_features(batch).float().cpu().numpy()

    def _image_features(self, pixels: Any) -> Any:
        return _pooled(self.model.get_image_features(pixel_values=pixels.to(self.device, non_blocking=True)))

    def embed_and_classify(self, batch: Sequence[np.ndarray], top_k: int) -> tuple[np.ndarray, Labels]:
        """Normalised image vectors and CLIP's zero-shot top-k ImageNet labels, one image pass."""
        import torch

        self.check_inputs(batch)
        if not 1 <= top_k <= NUM_CLASSES:
            raise EncoderError(f"{self.name}: top_k must be in 1..{NUM_CLASSES}, got {top_k}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), []
        vectors = self.finish(np.concatenate(self.run_batches(batch, self._embed_batch)))
        classes = self.label_vectors()
        scale = float(self.model.logit_scale.exp().item())
        logits = torch.from_numpy(vectors @ classes.T) * scale
        probs, idx = torch.softmax(logits, dim=1).topk(top_k, dim=1)
        names = imagenet_categories()
        labels = [
            [(names[int(i)], float(p)) for p, i in zip(p_row, i_row, strict=True)]
            for p_row, i_row in zip(probs.tolist(), idx.tolist(), strict=True)
        ]
        return vectors, labels

    def label_vectors(self) -> np.ndarray:
        """Normalised text vectors of the 1000 class prompts, computed once per encoder."""
        if self._label_vectors is None:
            import torch

            prompts = [PROMPT.format(name) for name in imagenet_categories()]
            with torch.inference_mode():
                parts = [
                    self._text_features(prompts[i : i + self.batch_size]).float().cpu().numpy()
                    for i in range(0, len(prompts), self.batch_size)
                ]
            self._label_vectors = self.finish(np.concatenate(parts))
        return np.asarray(self._label_vectors)


def _writable(image: np.ndarray) -> np.ndarray:
    """The image, copied only when read-only (torch refuses to wrap read-only arrays without a warning)."""
    return image if image.flags.writeable else image.copy()


def _pooled(output: Any) -> Any:
    """The projected features: a tensor (transformers 4) or the output's pooler_output (5)."""
    return getattr(output, "pooler_output", output)


def _jsonable(value: Any) -> Any:
    """A processor size setting as plain JSON (a SizeDict or a dict)."""
    return {k: v for k, v in dict(value).items() if v is not None} if value is not None else None
