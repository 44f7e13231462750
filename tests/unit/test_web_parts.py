"""The analyst page's pure parts: SVG plots, the spectrogram image, typed IN filters, clip sources."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from mmfs.errors import ConfigError
from mmfs.store.filters import one_of
from mmfs.web import audio_clip, plots, spectrogram

SVG = "{http://www.w3.org/2000/svg}"


def test_line_chart_is_valid_svg_with_escaped_labels() -> None:
    svg = plots.line_chart(
        [(0, 1.0), (1, 3.0), (2, float("nan")), (3, 2.0)],
        title="<b>a & b</b>",
        x_label="time (s)",
        y_label="px",
        x_range=(0, 4),
    )
    root = ET.fromstring(svg)  # well-formed, so the labels were escaped
    assert root.find(f"{SVG}title").text == "<b>a & b</b>"
    points = root.find(f"{SVG}polyline").get("points").split()
    assert len(points) == 3  # the NaN point is left out
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs) and xs[-1] - xs[0] == pytest.approx((640 - 52 - 12) * 3 / 4, abs=0.2)
    assert "no data" in plots.line_chart([], title="t", x_label="x", y_label="y")


def test_bar_chart_lengths_follow_values() -> None:
    root = ET.fromstring(plots.bar_chart([("a", 1.0), ("b", 4.0), ("<c>", 2.0)], title="bars", unit="s"))
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[1] == max(widths) and widths[0] == pytest.approx(widths[1] / 4)
    assert "<c>" in [t.text for t in root.iter(f"{SVG}text")]


def test_spectrogram_puts_high_bands_on_top() -> None:
    windows = [np.zeros((64, 100), dtype=np.float32) for _ in range(3)]
    windows[1][48:, :] = 10.0  # loud high bands in the middle window only
    matrix = spectrogram.mel_matrix([*windows, None, []])
    assert matrix is not None and matrix.shape == (64, 300)
    image = np.asarray(Image.open(io.BytesIO(spectrogram.mel_png(matrix, width=300, height=64))))
    assert image.shape == (64, 300, 3)
    assert image[5, 150].sum() > image[60, 150].sum() + 300  # bright at the top, dark at the bottom
    assert image[5, 20].sum() < 60  # quiet elsewhere
    assert spectrogram.mel_matrix([None, []]) is None


def test_one_of_is_typed() -> None:
    schema = pa.schema([pa.field("media_id", pa.string()), pa.field("n", pa.int64())])
    sql = one_of(schema, "media_id", ["x' OR 1=1 --", "b"]).to_sql()
    assert sql.startswith("media_id IN (") and "'x'' OR 1=1 --'" in sql
    with pytest.raises(ConfigError):
        one_of(schema, "n", ["1 OR 1=1"])
    with pytest.raises(ConfigError):
        one_of(schema, "media_id; DROP", ["a"])
    assert one_of(schema, "n", []).to_sql().lower() == "false"


def test_clip_source_is_only_a_recorded_local_file_of_the_recorded_size(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 40)
    assert audio_clip.source_file({"uri": str(audio), "uris": [str(audio)], "bytes": 44}) == audio
    assert audio_clip.source_file({"uri": "s3://bucket/a.wav", "uris": [], "bytes": 44}) is None
    assert audio_clip.source_file({"uri": str(audio), "uris": [], "bytes": 45}) is None  # other bytes
    assert audio_clip.source_file({"uri": str(tmp_path), "uris": [], "bytes": None}) is None  # a folder
    moved = {"uri": str(tmp_path / "gone.wav"), "uris": [str(tmp_path / "gone.wav"), str(audio)], "bytes": 44}
    assert audio_clip.source_file(moved) == audio
    with pytest.raises(ConfigError):
        audio_clip.check_span(2.0, 1.0, 10.0)
    with pytest.raises(ConfigError):
        audio_clip.check_span(0.0, 31.0, 100.0)
    assert audio_clip.check_span(9.0, 12.0, 10.0) == (9.0, 10.0)


def test_spans_chart_places_text_by_time() -> None:
    spans = [(0.0, 3.0, "A white <bird>"), (3.0, 5.0, "grey beak")]
    root = ET.fromstring(plots.spans_chart(spans, title="text", x_range=(0.0, 10.0)))
    boxes = [r for r in root.iter(f"{SVG}rect")]
    assert [float(b.get("x")) for b in boxes] == [52.0, pytest.approx(52 + 576 * 0.3, abs=0.1)]
    assert float(boxes[0].get("width")) == pytest.approx(576 * 0.3 - 1, abs=0.1)
    assert "0.0–3.0 s: A white <bird>" in [t.text for t in root.iter(f"{SVG}title")]
