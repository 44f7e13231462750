"""Train a small fusion classifier on the store's `segments` with DistributedDataParallel.

    torchrun --nproc_per_node 2 examples/train_classifier.py --store ./mmfs-demo-store --out ./train-out

Each segment's visual, audio and text vectors (zeros where a modality is absent) and their masks go
into an MLP that predicts the item's kind (video, audio, image, text): a label the store records and
nobody has to annotate. The masks alone give much of it away, so it is a test of the plumbing, not
of the features. Every rank streams its own share of the `train` split from a `FeatureDataset`
pinned to one store version (rank 0 picks it and sends it to the others), so ingest during training
changes nothing. gloo on CPU, NCCL on GPU.

Every `--checkpoint-every` steps it saves the model, the optimiser and each rank's dataset
`state_dict()`; `--resume` continues from there, mid-epoch, with exactly the rows not yet seen.
`--stop-after N` stops after N steps of this process (as a crash would, after a checkpoint).
It writes `curve.png` (loss and accuracy per step) and `metrics.json`; `--log-rows` makes each rank
write the keys of the rows it trained on (`rows-rank{r}.jsonl`), which is how the test checks that
ranks see disjoint rows covering the split.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmfs.store.readers import VALID_KEY, FeatureDataset

KINDS = ["video", "audio", "image", "text"]
MODALITIES = ["visual", "audio", "text"]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="folder for checkpoints, curve.png and metrics.json")
    p.add_argument("--version", type=int, default=None, help="store version of segments; default: current")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", help="train / val / test; 'all' for every row")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers per rank")
    p.add_argument("--checkpoint-every", type=int, default=5, help="steps between checkpoints")
    p.add_argument(
        "--stop-after", type=int, default=None, help="stop after this many steps (a simulated crash)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--log-rows", action="store_true", help="write the keys of the rows each rank trained on")
    return p.parse_args()


class FusionClassifier(nn.Module):
    """Masked modality vectors, concatenated with their masks, through a two-layer MLP."""

    def __init__(self, widths: dict[str, int], n_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.widths = widths
        self.net = nn.Sequential(
            nn.Linear(sum(widths.values()) + len(widths), hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Logits for a `FeatureDataset` batch."""
        parts, masks = [], []
        for name in self.widths:
            valid = batch[VALID_KEY][name].float()
            parts.append(batch[name] * valid[:, None])
            masks.append(valid[:, None])
        return self.net(torch.cat([*parts, *masks], dim=1))


def setup() -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (a single process runs without one)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = torch.device(
        f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    )
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def pinned_version(store: str, asked: int | None, world: int) -> int:
    """The segments version every rank reads: asked, or the current one as rank 0 sees it."""
    version = [asked if asked is not None else FeatureDataset(store, "segments", ["media_id"]).version]
    if world > 1:
        dist.broadcast_object_list(version, src=0)
    return int(version[0])


def make_dataset(args: argparse.Namespace, version: int, rank: int, world: int) -> FeatureDataset:
    """This rank's stream of the split, pinned to `version`, in batches."""
    columns = ["media_id", "segment_index", "kind", *MODALITIES]
    return FeatureDataset(
        args.store, "segments", columns, version=version, rank=rank, world_size=world,
        batch_size=args.batch_size, shuffle=True, seed=args.seed,
        split=None if args.split == "all" else args.split,
    )  # fmt: skip


def load_checkpoint(out: Path, rank: int, model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Model and optimiser from rank 0's file, this rank's dataset state; returns the saved progress."""
    saved = torch.load(out / "checkpoint.pt", weights_only=True, map_location="cpu")
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    progress = json.loads((out / f"progress-rank{rank}.json").read_text())
    return {**progress, "history": json.loads((out / "history.json").read_text())}


def save_checkpoint(
    out: Path,
    rank: int,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    ds: FeatureDataset,
    progress: dict[str, Any],
) -> None:
    """Rank 0 saves weights and history; every rank saves where its stream stands (after a barrier)."""
    if rank == 0:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, out / "checkpoint.pt.tmp")
        os.replace(out / "checkpoint.pt.tmp", out / "checkpoint.pt")
        (out / "history.json").write_text(json.dumps(progress["history"]))
    state = {"dataset": ds.state_dict(), "step": progress["step"], "epoch": progress["epoch"]}
    (out / f"progress-rank{rank}.json").write_text(json.dumps(state))


def draw_curve(history: list[dict[str, float]], path: Path) -> None:
    """Loss and accuracy per step as a PNG (Pillow only: no plotting library needed)."""
    from PIL import Image, ImageDraw

    width, height, pad = 640, 360, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad, pad, width - pad, height - pad], outline="black")
    if history:
        top_loss = max(h["loss"] for h in history) or 1.0
        n = max(len(history) - 1, 1)
        for key, color, scale in (("loss", "firebrick", top_loss), ("accuracy", "steelblue", 1.0)):
            points = [
                (pad + i * (width - 2 * pad) / n, height - pad - h[key] / scale * (height - 2 * pad))
                for i, h in enumerate(history)
            ]
            draw.line(points, fill=color, width=2) if len(points) > 1 else draw.point(points, fill=color)
    draw.text(
        (pad, 10), f"loss (red, max {max((h['loss'] for h in history), default=0):.2f})", fill="firebrick"
    )
    draw.text((width // 2, 10), "accuracy (blue, 0..1)", fill="steelblue")
    draw.text((pad, height - pad + 10), f"{len(history)} steps", fill="black")
    image.save(path)


def train(args: argparse.Namespace) -> None:
    """The training loop: epochs of this rank's share, synchronised by DDP, checkpointed."""
    rank, world, device = setup()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    version = pinned_version(args.store, args.version, world)
    ds = make_dataset(args, version, rank, world)
    widths = {name: ds_width(ds, name) for name in MODALITIES}
    torch.manual_seed(args.seed)
    model: nn.Module = FusionClassifier(widths, len(KINDS)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    progress: dict[str, Any] = {"step": 0, "epoch": 0, "history": []}
    if args.resume:
        progress = load_checkpoint(out, rank, model, opt)
        ds.load_state_dict(progress.pop("dataset"))
    else:
        ds.set_epoch(0)
    ddp = DistributedDataParallel(model) if world > 1 else model
    rows_log = (out / f"rows-rank{rank}.jsonl").open("a") if args.log_rows else None
    steps_here = 0
    for epoch in range(progress["epoch"], args.epochs):
        if epoch != progress["epoch"]:
            ds.set_epoch(epoch)
        progress["epoch"] = epoch
        for batch in ds.loader(num_workers=args.workers):
            labels = torch.tensor([KINDS.index(k) for k in batch["kind"]], device=device)
            logits = ddp({k: _to(v, device) for k, v in batch.items()})
            loss = nn.functional.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            accuracy = (logits.argmax(1) == labels).float().mean()
            stats = torch.stack([loss.detach(), accuracy]).cpu()
            if world > 1:
                dist.all_reduce(stats)
                stats /= world
            progress["step"] += 1
            steps_here += 1
            progress["history"].append({"loss": float(stats[0]), "accuracy": float(stats[1])})
            if rows_log is not None:
                for key in zip(batch["media_id"], batch["segment_index"], strict=True):
                    rows_log.write(
                        json.dumps({"epoch": epoch, "step": progress["step"], "key": list(key)}) + "\n"
                    )
                rows_log.flush()
            if progress["step"] % args.checkpoint_every == 0:
                save_checkpoint(out, rank, model, opt, ds, progress)
            if args.stop_after is not None and steps_here >= args.stop_after:
                _finish(world)
                return
        progress["epoch"] = epoch + 1
        ds.set_epoch(epoch + 1)
        save_checkpoint(out, rank, model, opt, ds, progress)
    if rank == 0:
        draw_curve(progress["history"], out / "curve.png")
        (out / "metrics.json").write_text(
            json.dumps({"version": version, "steps": progress["step"], "last": progress["history"][-1:]})
        )
    _finish(world)


def ds_width(ds: FeatureDataset, name: str) -> int:
    """Width of a vector column at the pinned version (from one batch's tensor)."""
    first = next(iter(FeatureDataset(ds.store_uri, "segments", [name], version=ds.version, batch_size=1)))
    return int(first[name].shape[1])


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _finish(world: int) -> None:
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    train(parse_args())
