"""Search that says why, end to end: real photos and a poster run through mmfs, then `mmfs search`.

The bridge's cue columns land in `frames`, a phrase reaches its photo through the bridge, OCR words
keep their gaps and are matched, `--explain` / `--json` / the analyst page give each hit's reasons,
and `--weights` steers the ranking.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from mmfs.cli import app
from mmfs.config import PipelineConfig
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store

pytestmark = pytest.mark.slow
data = pytest.importorskip("skimage.data", reason="scikit-image provides the real test photos")
pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is installed by `make setup`")


def _poster(path: Path) -> None:
    img = Image.new("RGB", (1280, 720), (250, 240, 200))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=70)
    draw.text((30, 150), "PURPLE ELEPHANT", font=font, fill=(80, 20, 120))
    draw.text((30, 255), "GARDEN PARTY", font=font, fill=(20, 90, 20))
    img.save(path)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain")
    media = root / "media"
    media.mkdir()
    Image.fromarray(data.chelsea()).save(media / "cat.jpg")
    Image.fromarray(data.coffee()).save(media / "coffee.jpg")
    Image.fromarray((~data.horse()).astype(np.uint8) * 255).save(media / "horse.png")
    _poster(media / "poster.png")
    cfg = PipelineConfig.model_validate({"image": {"ocr": True}})
    run_pipeline([str(media)], cfg, root / "store", show_progress=False)
    return root / "store"


def _search(store_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["search", "--store", str(store_dir), *args])
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def _names(hits: list[dict[str, object]]) -> list[str]:
    return [Path(str(h["uri"])).name for h in hits]


def test_cue_columns_and_bridge_words_land_in_frames(store_dir: Path) -> None:
    rows = {Path(r["uri"]).name: r["media_id"] for r in Store(store_dir).read("media").to_pylist()}
    frames = {r["media_id"]: r for r in Store(store_dir).read("frames").to_pylist()}
    horse, poster, cat = frames[rows["horse.png"]], frames[rows["poster.png"]], frames[rows["cat.jpg"]]
    assert horse["style"] == "drawing" and "drawing" in horse["bridge_text"]
    assert poster["has_text"] is True and cat["has_text"] is False
    assert cat["style"] == "photo" and cat["colours"] and cat["bridge_text"].split(";")[0]


def test_explain_says_why_in_text_and_json(store_dir: Path) -> None:
    code, out = _search(store_dir, "--text", "a drawing of a horse", "-k", "2", "--explain")
    assert code == 0, out
    lines = out.splitlines()
    assert "horse.png" in lines[0] and lines[1].strip().startswith("scores: visual")
    assert any(line.strip().startswith("labels:") and "matched: drawing" in line for line in lines[:6])
    code, out = _search(store_dir, "--text", "garden party", "--json")
    hits = json.loads(out)["hits"]
    assert _names(hits)[0] == "poster.png"
    why = hits[0]["why"]
    assert why["matched_words"] == ["garden", "party"] and "GARDEN PARTY" in why["transcript"]
    assert set(why["scores"]) == {"visual", "text", "words"} and why["scores"]["words"] == 1.0
    assert why["weights"] == {"visual": 1.0, "text": 0.5, "words": 0.25}


def test_weights_steer_the_ranking_and_bad_weights_are_usage_errors(store_dir: Path) -> None:
    code, out = _search(store_dir, "--text", "a cup of coffee", "--weights", "text=0,words=0", "--json")
    assert code == 0, out
    hits = json.loads(out)["hits"]
    assert _names(hits)[0] == "coffee.jpg"
    assert all(h["why"]["weights"]["text"] == 0.0 for h in hits)
    code, out = _search(store_dir, "--text", "a cup of coffee", "--weights", "visual=0,words=0", "--json")
    assert code == 0, out
    assert _names(json.loads(out)["hits"])[0] == "poster.png"  # text alone: only the poster has any
    for bad in ("smell=1", "visual=-1", "visual=0,text=0,words=0", "visual"):
        assert _search(store_dir, "--text", "cat", "--weights", bad)[0] == 2, bad


def test_the_analyst_page_shows_why(store_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from mmfs.web.app import create_app

    client = TestClient(create_app(store_dir))
    hits = client.get("/api/search", params={"text": "garden party", "k": 3}).json()["hits"]
    assert hits[0]["why"]["matched_words"] == ["garden", "party"]
    steered = client.get("/api/search", params={"text": "garden party", "weights": "visual=0,words=0"})
    assert steered.json()["hits"][0]["why"]["weights"] == {"visual": 0.0, "text": 0.5, "words": 0.0}
    assert client.get("/api/search", params={"text": "cat", "weights": "smell=1"}).status_code == 400
    page = client.get("/", params={"text": "garden party"}).text
    assert 'class="why"' in page and "matched: garden, party" in page
