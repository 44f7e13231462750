"""`mmfs report RUN_ID --html FILE`: a self-contained page with the run's plots, beside the text report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmfs.cli import app
from tests.web.conftest import SampleStore

pytestmark = pytest.mark.slow


def test_html_report_is_self_contained(sample_store: SampleStore, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "run.html"
    args = ["report", sample_store.run_id, "--store", str(sample_store.store), "--html", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "outcomes: failed 1, ok 6, skipped 0" in result.output  # the text report is still printed
    assert f"HTML report: {out}" in result.output
    html = out.read_text()
    assert sample_store.run_id in html and "Seconds per stage" in html
    assert html.count("<svg") >= 4 + 2 * 6  # run plots, then motion and loudness per item
    assert html.count("data:image/jpeg;base64,") == 12 + 3  # 12 of the video's 14 frames, 3 photos
    assert "data:image/png;base64," in html  # spectrograms
    assert "cockatoo.mp4" in html and CAPTION in html
    # nothing to fetch: no stylesheet, script, image or link to any other file or host
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert "<link" not in html and "<script" not in html


def test_html_report_json_names_the_file(sample_store: SampleStore, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = ["report", sample_store.run_id, "--store", str(sample_store.store), "--html", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["html"] == str(out) and out.stat().st_size > 10_000


def test_unknown_run_is_one_line(sample_store: SampleStore, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        app, ["report", "nope", "--store", str(sample_store.store), "--html", str(out)]
    )
    assert result.exit_code == 2 and not out.exists()
    assert result.output.strip().splitlines()[-1].startswith("mmfs: error: no run 'nope'")


CAPTION = "The cockatoo looks straight into the camera with its grey beak."
