"""Start-up stays light: which libraries each process of a run imports, checked from outside.

`mmfs plan` and `mmfs status` (whole CLI processes) import no model or decoder library; the run's own
process imports no decoder library (they load in the decode workers), nor does a run over clips with
sound unpickle its way into numba, decord, librosa or PyAV; a decode worker that sees only a
photo and a note imports no torch, OpenCV, numba, decord or librosa; and warming the encoders a photo
needs (EfficientNet and the label bridge's MiniLM) on a CPU imports no torch.
Each case is a fresh interpreter, so an earlier test's imports cannot hide a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import media_factory as mf

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"torch", "torchvision", "transformers", "sentence_transformers", "spacy", "sklearn", "nltk"}
DECODERS = {"cv2", "librosa", "numba", "decord", "av", "scipy.signal"}


def _heavy_after(code: str, watched: set[str]) -> list[str]:
    """Run `code` in a fresh interpreter, then list which of `watched` it left in sys.modules."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    script = (
        "import json, sys\n_watched = set(json.loads(sys.argv[1]))\n"
        f"{code}\nprint(json.dumps(sorted(_watched & set(sys.modules))))"
    )
    argv = [sys.executable, "-c", script, json.dumps(sorted(watched))]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def _cli(*args: str) -> str:
    """Code that runs `mmfs ARGS` in-process (exit code 0 required) before the report."""
    return (
        "import sys\nfrom mmfs.cli import main\n"
        f"sys.argv = ['mmfs', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    mf.write_image(folder / "photo.png", width=96, height=64, seed=3)
    mf.write_text(folder / "note.txt", "The ferry leaves the pier at noon.")
    return folder


def test_plan_and_status_import_no_model_or_decoder(inputs: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert _heavy_after(_cli("plan", str(inputs), "--store", store), MODELS | DECODERS) == []
    assert _heavy_after(_cli("status", "--store", store), MODELS | DECODERS) == []


def test_the_run_process_imports_no_decoder_library() -> None:
    """What a run's own process imports before its first batch: the plan, the executor, the stages
    it runs itself (encode, rows, commit); the decoders are the workers'."""
    code = "import mmfs.cli, mmfs.pipelines.run, mmfs.runners.local, mmfs.stages.decode_pool"
    assert _heavy_after(code, MODELS | DECODERS) == []


def test_a_run_over_clips_with_sound_leaves_the_video_and_audio_decoders_to_the_workers(
    tmp_path: Path,
) -> None:
    """Decoded items reach the run's process pickled, and unpickling imports the module that defines each
    class they hold: flow pairs, audio windows and probe results are defined in numpy-only modules, so
    the run's process imports no numba, decord, librosa or PyAV. (OpenCV it does import: the frame
    analysis and label-bridge stages run there and compute with it.)"""
    folder = tmp_path / "clips"
    for i, tone in enumerate((330.0, 440.0)):
        times = mf.constant_rate_times(20, 10.0)
        mf.write_video(folder / f"clip_{i}.mp4", times_s=times, audio_tone_hz=tone)
    code = _cpu_run_code(
        tmp_path,
        folder,
        "db.open_table('flow').count_rows() > 0 and db.open_table('audio').count_rows() > 0",
        "db.open_table('media').count_rows('status = \\'ok\\'') == 2",
    )
    assert _heavy_after(code, DECODERS - {"cv2"}) == []


def test_a_worker_decoding_a_photo_and_a_note_imports_no_video_audio_or_model_library(
    inputs: Path,
) -> None:
    code = (
        "from pathlib import Path\n"
        "from mmfs.config import PipelineConfig\n"
        "from mmfs.pipelines.plan import hash_items\n"
        "from mmfs.pipelines.sources import discover\n"
        "from mmfs.stages.decode import extract\n"
        "cfg = PipelineConfig()\n"
        f"found, _ = discover([{str(inputs)!r}], cfg.sources)\n"
        "pending, failed, _ = hash_items(found, cfg, show_progress=False)\n"
        "assert len(pending) == 2 and not failed, (pending, failed)\n"
        "assert all(not extract(p, cfg).failed for p in pending)\n"
    )
    assert _heavy_after(code, (MODELS | DECODERS) - {"av"}) == []  # PyAV probes every file


def test_warming_a_photos_encoders_on_a_cpu_imports_no_torch() -> None:
    """EfficientNet and MiniLM both run in NumPy on a CPU (device pinned: on a GPU host 'auto' is CUDA)."""
    code = (
        "from mmfs.config import PipelineConfig\n"
        "from mmfs.runners.warm import load_needed\n"
        "from mmfs.stages.encode import Enricher\n"
        "enricher = Enricher(PipelineConfig.model_validate({'encoders': {'device': 'cpu'}}))\n"
        "load_needed(enricher, {'image', 'labels'})\n"
        "assert enricher.encoder('image').categories[0] == 'tench'\n"
    )
    found = _heavy_after(code, {"torch", "torchvision", "transformers", "sentence_transformers"})
    assert found == []


def _cpu_run_code(tmp_path: Path, folder: Path, *checks: str) -> str:
    """A quiet CLI run over `folder` with the encoders pinned to the CPU (on a GPU host 'auto' asks torch
    for CUDA), then each of `checks` asserted on the store (`db`)."""
    config = tmp_path / "cpu.yaml"
    config.write_text("encoders:\n  device: cpu\n")
    code = _cli("run", str(folder), "--store", str(tmp_path / "store"), "--config", str(config), "-q")
    code += f"import lancedb\ndb = lancedb.connect({str(tmp_path / 'store')!r})\n"
    return code + "".join(f"assert {check}\n" for check in checks)


def test_a_run_over_a_photo_imports_no_torch(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    mf.write_image(folder / "p.jpg", width=160, height=120, seed=3)
    code = _cpu_run_code(tmp_path, folder, "db.open_table('frames').count_rows('embedding IS NOT NULL') == 1")
    assert _heavy_after(code, {"torch", "torchvision", "transformers"}) == []


def test_a_run_over_notes_imports_no_torch(tmp_path: Path) -> None:
    """Text needs no torch on a CPU: MiniLM runs in NumPy, spaCy's thinc is imported without torch
    for a pipeline with no torch layer, NLTK without scikit-learn. The device is pinned to the CPU
    so this holds on a GPU host too (there 'auto' asks torch for CUDA)."""
    folder = tmp_path / "notes"
    folder.mkdir()
    mf.write_text(folder / "a.txt", "The ferry leaves the pier at noon. Gulls follow it out.")
    mf.write_text(folder / "b.txt", "Owls hunt at night and see well in the dark.")
    code = _cpu_run_code(tmp_path, folder, "db.open_table('segments').count_rows('text IS NOT NULL') == 2")
    assert _heavy_after(code, {"torch", "sklearn", "scipy.stats", "transformers"}) == []
