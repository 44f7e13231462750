"""The image-analysis models on real pictures: RapidOCR, MTCNN faces (and blurred thumbnails), NudeNet.

Each model loads once for the module (they are cached per process); the pictures are small.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mmfs.config import PipelineConfig
from mmfs.pipelines.sources import SourceItem
from mmfs.stages.analysis import analyse, frame_columns, thumbnail_source
from mmfs.stages.decode import extract
from mmfs.stages.items import PendingItem
from mmfs.transforms.image.features import laplacian_variance
from mmfs.transforms.image.pixels import resize_short_side, thumbnail_jpeg

data = pytest.importorskip("skimage.data", reason="scikit-image provides the real test photos")


def text_image(words: str, width: int = 360, height: int = 120) -> np.ndarray:
    """Black words on white at a legible size (OpenCV's Hershey font), RGB."""
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, words, (12, height // 2 + 14), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def ocr():  # type: ignore[no-untyped-def]
    pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is installed by `make setup`")
    from mmfs.encoders.ocr_rapid import load_ocr

    return load_ocr()


@pytest.fixture(scope="module")
def faces():  # type: ignore[no-untyped-def]
    pytest.importorskip("facenet_pytorch", reason="facenet-pytorch is installed by `make setup`")
    from mmfs.encoders.faces_mtcnn import load_faces

    return load_faces("cpu")


@pytest.fixture(scope="module")
def nudenet():  # type: ignore[no-untyped-def]
    pytest.importorskip("nudenet", reason="nudenet is installed by `make setup`")
    from mmfs.encoders.nsfw_nudenet import load_nudenet

    return load_nudenet()


def test_ocr_reads_rendered_words(ocr) -> None:  # type: ignore[no-untyped-def]
    lines = ocr.read(text_image("PELICAN HARBOUR"), min_confidence=0.6)
    words = " ".join(ln.text for ln in lines).upper()
    assert "PELICAN" in words and "HARBOUR" in words
    x0, y0, x1, y1 = lines[0].box
    assert 0 <= x0 < x1 <= 1 and 0.2 < (y0 + y1) / 2 < 0.8  # the line is where it was drawn
    assert ocr.read(np.full((120, 360, 3), 255, np.uint8), min_confidence=0.6) == []  # blank: nothing
    assert ocr.read(text_image("PELICAN"), min_confidence=1.01) == []  # the confidence floor applies
    prov = ocr.provenance()
    assert prov["name"] == "ocr.rapidocr" and "ch_PP-OCRv4_rec_infer.onnx" in prov["weights_sha256"]


def test_mtcnn_finds_the_astronauts_face(faces) -> None:  # type: ignore[no-untyped-def]
    photo = resize_short_side(data.astronaut(), 256)  # 512 px original: her face is near (0.44, 0.23)
    (boxes,) = faces.detect([photo])
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    assert 0.38 < (x0 + x1) / 2 < 0.50 and 0.15 < (y0 + y1) / 2 < 0.30
    assert 0.1 < x1 - x0 < 0.3
    assert faces.detect([resize_short_side(data.coffee(), 256)]) == [[]]  # no face in a coffee cup


def _image_item(tmp_path: Path, pixels: np.ndarray) -> PendingItem:
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return PendingItem("m" * 64, SourceItem(path=path, uri=str(path)), [str(path)], path.stat().st_size)


def _decode_jpeg(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.uint8)


def test_blur_faces_smooths_the_face_in_the_thumbnail_only(faces, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = PipelineConfig.model_validate({"image": {"blur_faces": True, "thumbnail_size": 256}})
    ex = extract(_image_item(tmp_path, data.astronaut()), cfg)
    analysed = analyse(ex, cfg)
    assert analysed is not None and ex.frames is not None
    analysis = analysed.analysis
    cols = frame_columns(analysis, 0)
    assert cols["n_faces"] == 1 and len(cols["face_boxes"]) == 1
    frame = ex.frames.frames[0]
    plain = _decode_jpeg(thumbnail_jpeg(frame, longest_side=256, quality=90))
    blurred = _decode_jpeg(thumbnail_jpeg(thumbnail_source(analysis, frame, 0), longest_side=256, quality=90))
    h, w = plain.shape
    x0, y0, x1, y1 = cols["face_boxes"][0]
    face = (slice(int(y0 * h), int(y1 * h)), slice(int(x0 * w), int(x1 * w)))
    assert laplacian_variance(blurred[face]) < laplacian_variance(plain[face]) / 10
    rest = (slice(int(0.6 * h), h), slice(0, w))  # well below the padded face box
    assert np.abs(blurred[rest].astype(int) - plain[rest].astype(int)).max() <= 2  # JPEG rounding only
    assert np.array_equal(ex.frames.frames[0], frame)  # the embedding still sees the original


def test_nudenet_on_a_benign_photo(nudenet) -> None:  # type: ignore[no-untyped-def]
    from mmfs.encoders.nsfw_nudenet import EXPLICIT_CLASSES, is_nsfw, nsfw_score

    detections = nudenet.detect(resize_short_side(data.astronaut(), 256))
    assert detections, "the detector finds labelled parts (a face) in a portrait"
    for d in detections:
        assert isinstance(d.label, str) and 0.2 <= d.score <= 1 and len(d.box) == 4
    assert not any(d.label in EXPLICIT_CLASSES for d in detections)
    assert nsfw_score(detections) == 0.0 and not is_nsfw(nsfw_score(detections), 0.5)
    # the threshold rule on the detector's real output, with every class it reported counted
    labels = {d.label for d in detections}
    top = nsfw_score(detections, labels)
    assert top == max(d.score for d in detections)
    assert is_nsfw(top, top) and not is_nsfw(top, min(1.0, top + 0.01))


def test_analyse_image_with_every_option(ocr, faces, nudenet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = PipelineConfig.model_validate({"image": {"ocr": True, "faces": True, "nsfw": True}})
    ex = extract(_image_item(tmp_path, text_image("LIGHTHOUSE KEEPER", 480, 160)), cfg)
    analysed = analyse(ex, cfg)
    assert analysed is not None
    cols = frame_columns(analysed.analysis, 0)
    assert cols["n_faces"] == 0 and cols["nsfw"] is False and cols["nsfw_score"] == 0.0
    assert set(cols) >= {"color_hist", "edge_density", "sharpness", "brightness", "contrast", "quality_flags"}
    assert not ex.texts  # OCR text is the analysis stage's result, beside the decoded item
    (seg,) = analysed.ocr
    assert seg.source == "ocr" and "LIGHTHOUSE" in seg.text.upper() and seg.start_s is None


def sign(size: int) -> np.ndarray:
    """A 1280x720 poster, 'PURPLE ELEPHANT / GARDEN PARTY' at `size` px, decoded at 256 px as frames are."""
    from PIL import ImageDraw, ImageFont

    img = Image.new("RGB", (1280, 720), (250, 240, 200))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)  # Pillow's bundled FreeType font: no system font needed
    draw.text((30, 150), "PURPLE ELEPHANT", font=font, fill=(80, 20, 120))
    draw.text((30, 150 + int(size * 1.5)), "GARDEN PARTY", font=font, fill=(20, 90, 20))
    return resize_short_side(np.asarray(img), 256)


@pytest.mark.parametrize("size", [40, 70, 110])
def test_ocr_keeps_the_gaps_between_words_at_every_print_size(ocr, size: int) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(ln.text for ln in ocr.read(sign(size), min_confidence=0.5)).upper()
    assert "GARDEN PARTY" in text and "PURPLE ELEPHANT" in text, text
