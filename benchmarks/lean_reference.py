"""A lean, sequential pipeline on the raw libraries doing mmfs's default work: the reference to beat.

`python benchmarks/lean_reference.py CORPUS OUT` walks CORPUS one file at a time, in one thread of
Python (the libraries use their own threads as they do by default), and writes every row with one
Lance write per table at the end. What it does per file, as mmfs does it by default:
- video: decord frames at 1 fps decoded at 256 px short side; OpenCV Farneback between consecutive
  frames in grey at 160 px wide; the audio track through PyAV, resampled to 16 kHz mono;
- photo: Pillow, 256 px short side;
- frames and photos: EfficientNet-Lite0 (same weights, crop and scaling), pooled vector and top-5
  ImageNet labels, the labels embedded as a sentence by MiniLM (mmfs's label bridge, simplified);
- audio: 1 s windows, librosa log-mel, MFCC + deltas and spectral statistics
  (`bench_audio.librosa_window`), the windows embedded by resemblyzer's LSTM, batched per file;
- text (sidecars, documents): spaCy (tagger, lemmas, NER) and MiniLM over ~1,000-character chunks.
It prints one JSON line: items, media-seconds, wall seconds and peak RSS. No error handling, no
ledger, no provenance, no quarantine: a script, not a pipeline.
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_audio import librosa_window  # librosa alone, the same features as mmfs

VIDEO = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".m4a"}
IMAGE = {".jpg", ".jpeg", ".png", ".webp"}
TEXT = {".txt", ".md"}
SIDECAR = {".srt", ".vtt"}
SHORT_SIDE, FPS, FLOW_WIDTH, SR, CHUNK = 256, 1.0, 160, 16_000, 1000


class Models:
    """The three models, loaded once from the files mmfs's encoders point at (no download)."""

    def __init__(self) -> None:
        import spacy
        import torch
        from efficientnet_lite_pytorch import EfficientNet
        from resemblyzer import VoiceEncoder
        from sentence_transformers import SentenceTransformer

        from mmfs.config import TextConfig
        from mmfs.encoders.image_efficientnet import imagenet_categories
        from mmfs.encoders.registry import create

        self.torch = torch
        image = create("image.efficientnet_lite0", device="cpu")
        state = torch.load(image.weight_files()[0], map_location="cpu", weights_only=True)
        self.effnet = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
        self.effnet.load_state_dict(state)
        self.effnet.eval()
        self.crop_fraction, self.input_size = image.crop_fraction, image.input_size
        self.categories = imagenet_categories()
        text = create("text.minilm", device="cpu")
        self.minilm = SentenceTransformer(str(text.model_dir()), device="cpu", local_files_only=True)
        self.voice = VoiceEncoder(device="cpu", verbose=False)
        self.nlp = spacy.load(TextConfig().spacy_model, disable=["parser"])

    def images(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled EfficientNet vectors, and MiniLM vectors of each frame's top-5 labels as a sentence."""
        import torch.nn.functional as F

        torch = self.torch
        vectors, sentences = [], []
        with torch.inference_mode():
            for start in range(0, len(frames), 32):
                batch = []
                for image in frames[start : start + 32]:
                    h, w = image.shape[:2]
                    side = round(min(h, w) * self.crop_fraction)
                    top, left = (h - side) // 2, (w - side) // 2
                    x = torch.from_numpy(np.ascontiguousarray(image[top : top + side, left : left + side]))
                    x = x.permute(2, 0, 1)[None].float()
                    size = (self.input_size, self.input_size)
                    x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
                    batch.append(x[0].clamp_(0, 255))
                x = (torch.stack(batch) - 127.0) / 128.0
                pooled = self.effnet._avg_pooling(self.effnet.extract_features(x)).flatten(1)
                top5 = torch.softmax(self.effnet._fc(pooled), dim=1).topk(5, dim=1).indices.tolist()
                sentences += ["a photo of " + ", ".join(self.categories[i] for i in row) for row in top5]
                vectors.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        labels = self.minilm.encode(sentences, batch_size=32, normalize_embeddings=True)
        return np.concatenate(vectors), labels

    def voices(self, windows: list[np.ndarray]) -> np.ndarray:
        """resemblyzer vectors of each window: its partial mels through the LSTM in one batch, averaged."""
        from resemblyzer import audio

        torch = self.torch
        mels, owners = [], []
        for i, wav in enumerate(windows):
            wav = audio.normalize_volume(wav, -30, increase_only=True)
            wav_slices, mel_slices = self.voice.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
            if wav_slices[-1].stop > len(wav):
                wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
            mel = audio.wav_to_mel_spectrogram(wav)
            for s in mel_slices:
                mels.append(mel[s])
                owners.append(i)
        with torch.inference_mode():
            partial = self.voice(torch.from_numpy(np.stack(mels))).numpy()
        out = np.zeros((len(windows), partial.shape[1]), np.float32)
        for row, owner in zip(partial, owners, strict=True):
            out[owner] += row
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def texts(self, text: str) -> tuple[list[str], np.ndarray]:
        """~1,000-character chunks, analysed by spaCy and embedded by MiniLM."""
        chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [text]
        for doc in self.nlp.pipe(chunks):
            _ = [(t.lemma_, t.pos_) for t in doc], [(e.text, e.label_) for e in doc.ents]
        return chunks, self.minilm.encode(chunks, batch_size=32, normalize_embeddings=True)


def video_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """Frames at 1 fps (the frame on screen at each second) at 256 px short side, and the duration."""
    import av
    import decord

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        w, h = stream.width, stream.height
    scale = SHORT_SIDE / min(w, h)
    vr = decord.VideoReader(str(path), width=round(w * scale) // 2 * 2, height=round(h * scale) // 2 * 2)
    stamps = vr.get_frame_timestamp(range(len(vr)))[:, 0]
    duration = float(vr.get_frame_timestamp(len(vr) - 1)[1])
    targets = np.arange(0, duration, 1.0 / FPS)
    idx = np.unique(np.clip(np.searchsorted(stamps, targets + 1e-6, side="right") - 1, 0, len(vr) - 1))
    return list(vr.get_batch(list(idx)).asnumpy()), duration


def flow(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Farneback between consecutive frames, grey at 160 px wide (mmfs's default parameters)."""
    import cv2

    h, w = frames[0].shape[:2]
    size = (FLOW_WIDTH, round(h * FLOW_WIDTH / w))
    grey = [
        cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA) for f in frames
    ]
    return [
        cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        for a, b in itertools.pairwise(grey)
    ]


def audio_track(path: Path) -> np.ndarray | None:
    """The first audio stream through PyAV, 16 kHz mono float32 (None without one)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        parts = []
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts) if parts else None


def audio_rows(models: Models, samples: np.ndarray, uri: str) -> list[dict[str, Any]]:
    """One row per 1 s window: librosa features and the voice vector."""
    from mmfs.config import AudioConfig

    cfg = AudioConfig()
    windows = [samples[i : i + SR] for i in range(0, len(samples), SR)]
    windows = [np.pad(w, (0, max(0, cfg.n_fft - len(w)))) for w in windows]
    features = [librosa_window(w, cfg) for w in windows]
    voices = models.voices(windows)
    return [
        {
            "uri": uri,
            "start_s": float(i),
            "mfcc": np.asarray(f[1], np.float32).ravel().tolist()[:20],
            "voice": v,
        }
        for i, (f, v) in enumerate(zip(features, voices, strict=True))
    ]


def frame_rows(models: Models, frames: list[np.ndarray], uri: str) -> list[dict[str, Any]]:
    vectors, labels = models.images(frames)
    return [
        {"uri": uri, "index": i, "embedding": v, "label_embedding": lab}
        for i, (v, lab) in enumerate(zip(vectors, labels, strict=True))
    ]


def main(argv: list[str]) -> int:
    corpus, out = Path(argv[0]), Path(argv[1])
    start = time.perf_counter()
    models = Models()
    rows: dict[str, list[dict[str, Any]]] = {"frames": [], "audio": [], "text": [], "flow": []}
    media_s, items = 0.0, 0
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        suffix, uri = path.suffix.lower(), str(path)
        items += 1
        if suffix in VIDEO:
            frames, duration = video_frames(path)
            media_s += duration
            rows["frames"] += frame_rows(models, frames, uri)
            rows["flow"] += [
                {"uri": uri, "index": i, "mean_px": float(np.linalg.norm(f, axis=2).mean())}
                for i, f in enumerate(flow(frames))
            ]
            samples = audio_track(path)
            if samples is not None:
                rows["audio"] += audio_rows(models, samples, uri)
        elif suffix in AUDIO:
            samples = audio_track(path)
            if samples is not None:
                media_s += len(samples) / SR
                rows["audio"] += audio_rows(models, samples, uri)
        elif suffix in IMAGE:
            from PIL import Image

            image = Image.open(path).convert("RGB")
            scale = SHORT_SIDE / min(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
            rows["frames"] += frame_rows(models, [np.asarray(image)], uri)
        elif suffix in TEXT | SIDECAR:
            chunks, vectors = models.texts(path.read_text(encoding="utf-8", errors="replace"))
            rows["text"] += [
                {"uri": uri, "chunk": c, "embedding": v} for c, v in zip(chunks, vectors, strict=True)
            ]
    _write(out, rows)
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "items": items,
                "media_s": round(media_s, 2),
                "wall_s": round(wall, 2),
                "peak_rss_mb": round(rss),
            }
        )
    )
    return 0


def _write(out: Path, rows: dict[str, list[dict[str, Any]]]) -> None:
    """One Lance write per table (vectors as fixed-size lists)."""
    import lance
    import pyarrow as pa

    out.mkdir(parents=True, exist_ok=True)
    for name, table_rows in rows.items():
        if not table_rows:
            continue
        columns: dict[str, Any] = {}
        for key in table_rows[0]:
            values = [r[key] for r in table_rows]
            if isinstance(values[0], np.ndarray):
                flat = pa.array(np.stack(values).astype(np.float32).ravel())
                columns[key] = pa.FixedSizeListArray.from_arrays(flat, values[0].shape[0])
            else:
                columns[key] = pa.array(values)
        lance.write_dataset(pa.table(columns), str(out / f"{name}.lance"), mode="overwrite")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
