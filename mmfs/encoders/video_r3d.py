"""torchvision's R3D-18 (Kinetics-400 action recognition) as a clip encoder: 512-d features per clip.

No package ships video weights that install offline, so the weights come from a local file: by default
where torchvision itself caches them (`$TORCH_HOME/hub/checkpoints/r3d_18-b3b3357e.pth`, written by
`torchvision.models.video.r3d_18(weights="KINETICS400_V1")` on a machine with network), or the path in
`encoders.video_weights`. The file is read with `weights_only=True` (or as safetensors), never unpickled
freely; a file named like torchvision's (`name-<8 hex>.pth`) must hash to that prefix, as torch.hub checks.
A clip is any number of HxWx3 uint8 RGB frames: `clip_len` (16) frames are taken uniformly across it (a short
clip repeats frames), then torchvision's own Kinetics preprocessing (resize 128x171, centre crop 112).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder, sha256_files
from mmfs.encoders.registry import register
from mmfs.encoders.weights import load_into, load_state_dict
from mmfs.errors import ConfigError, EncoderError, ErrorCode

CLIP_LEN = 16  # frames per clip, as R3D-18 was trained on Kinetics-400
DEFAULT_FILE = "r3d_18-b3b3357e.pth"  # the name torchvision downloads R3D_18_Weights.KINETICS400_V1 to
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.")


def default_weights() -> Path:
    """Where torchvision caches the Kinetics-400 R3D-18 weights (torch.hub's checkpoint folder)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / DEFAULT_FILE


def uniform_indices(n_frames: int, clip_len: int = CLIP_LEN) -> np.ndarray:
    """`clip_len` frame indices spread evenly over n_frames (repeats when the clip is shorter)."""
    return np.floor((np.arange(clip_len) + 0.5) * n_frames / clip_len).astype(np.int64)


@register("video.r3d_18")
class R3D18VideoEncoder(Encoder):
    """R3D-18 features (the pooled 512-d vector before the Kinetics classifier) of RGB frame clips."""

    modality = "video"
    dim = 512
    model_name = "torchvision r3d_18 (Kinetics-400, KINETICS400_V1)"
    package = "torchvision"
    approx_memory_mb = 150

    def __init__(
        self,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        options: dict[str, str] | None = None,
        cpu_engine: str = "numpy",
    ) -> None:
        """options: `weights` (a local checkpoint; default torchvision's hub cache) and `clip_len`."""
        super().__init__(
            device=device, batch_size=batch_size, threads=threads, options=options, cpu_engine=cpu_engine
        )
        weights = self.options.get("weights")
        try:
            clip_len = int(self.options.get("clip_len", CLIP_LEN))
        except ValueError as err:
            raise ConfigError(
                f"{self.name}: clip_len must be an integer, got {self.options['clip_len']!r}"
            ) from err
        if clip_len < 1:
            raise ConfigError(f"{self.name}: clip_len must be >= 1, got {clip_len}")
        self.weights_path = Path(weights).expanduser() if weights else default_weights()
        self.clip_len = (
            clip_len  # fewer frames cost less (R3D's cost grows with them) but match training less
        )

    def weight_files(self) -> list[Path]:
        """The one checkpoint file; a clear error says how to get it when it is missing."""
        if not self.weights_path.is_file():
            raise EncoderError(
                f"{self.name}: no weights at {self.weights_path}; where there is network, run "
                "torchvision.models.video.r3d_18(weights='KINETICS400_V1') once and copy "
                f"{DEFAULT_FILE} from its torch hub cache there (or set encoders.video_weights)",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )
        return [self.weights_path]

    def _verify_pin(self) -> None:
        """A file named `name-<hex>.ext` must hash to that prefix (torch.hub's check_hash)."""
        match = _HASH_IN_NAME.search(self.weights_path.name)
        if match is None:
            return
        found = sha256_files(tuple(self.weight_files()))
        if not found.startswith(match.group(1)):
            raise EncoderError(
                f"{self.name}: {self.weights_path.name} hashes to {found[:12]}…, not {match.group(1)}…; "
                "refusing to load",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )

    def _load(self) -> None:
        import torch
        from torchvision.models.video import R3D_18_Weights, r3d_18

        state = load_state_dict(self.weight_files()[0], owner=self.name)  # weights_only: no pickled code
        model = load_into(r3d_18(weights=None), state, owner=self.name)  # architecture only: no download
        model.fc = torch.nn.Identity()  # the pooled features, not the 400 Kinetics logits
        self.model: Any = model.eval().to(self.device)
        self.transform = R3D_18_Weights.KINETICS400_V1.transforms()

    def preprocessing(self) -> dict[str, Any]:
        """Frame selection and torchvision's Kinetics-400 video preprocessing."""
        t = self.transform if self._loaded else None
        return {
            "input": "a clip: (T, H, W, 3) uint8 RGB frames, T >= 1",
            "frames": f"{self.clip_len} taken uniformly over the clip",
            "resize": [128, 171],
            "center_crop": [112, 112],
            "mean": list(t.mean) if t else [0.43216, 0.394666, 0.37645],
            "std": list(t.std) if t else [0.22803, 0.22145, 0.216989],
            "features": "global average pool before the classifier",
        }

    def input_problem(self, item: Any) -> str | None:
        """Only (T, H, W, 3) uint8 clips with at least one frame are accepted."""
        if not isinstance(item, np.ndarray) or item.dtype != np.uint8:
            return f"expected a uint8 numpy clip, got {type(item).__name__} {getattr(item, 'dtype', '')}"
        if item.ndim != 4 or item.shape[3] != 3 or 0 in item.shape:
            return f"expected (T, H, W, 3) RGB frames, got shape {item.shape}"
        return None

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        import torch

        clips = [self._clip_tensor(clip) for clip in batch]
        return self.model(torch.stack(clips).to(self.device)).float().cpu().numpy()

    def _clip_tensor(self, clip: np.ndarray) -> Any:
        """(3, clip_len, 112, 112) float input for one clip, by torchvision's own transform."""
        import torch

        frames = np.ascontiguousarray(clip[uniform_indices(len(clip), self.clip_len)])
        return self.transform(torch.from_numpy(frames).permute(0, 3, 1, 2))  # (T, C, H, W) uint8 in
