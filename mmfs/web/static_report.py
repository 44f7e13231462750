"""`mmfs report RUN_ID --html FILE`: one self-contained HTML file (inline CSS, SVG, data-URI images).

It draws the same plots as the live pages (`mmfs.web.charts`), reading the tables as the run left
them, so the file can be shared and opened anywhere without a server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.web import charts, summary, timeline
from mmfs.web.pages import environment, static_dir

MAX_ITEMS = 50  # items drawn in full; the rest are counted
MAX_THUMBS = 12  # thumbnails per item, spread over its timeline


def _spread(frames: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """At most `count` frames, evenly spaced over the list."""
    if len(frames) <= count:
        return frames
    step = (len(frames) - 1) / (count - 1)
    return [frames[round(i * step)] for i in range(count)]


def _item(view: Store, media_id: str) -> dict[str, Any] | None:
    """One item's timeline with its thumbnails and spectrogram inlined as data URIs."""
    row = timeline.media_row(view, media_id)
    if row is None:
        return None
    line = timeline.timeline(view, media_id)
    thumbs = []
    for frame in _spread(line["frames"], MAX_THUMBS):
        jpeg = timeline.thumbnail(view, media_id, frame["frame_index"])
        if jpeg:
            src = charts.data_uri(jpeg, "image/jpeg")
            thumbs.append({"t_s": frame["t_s"], "src": src, "labels": frame["labels"]})
    mel = charts.mel_image(view, media_id) if line["loudness"] else None
    return {
        "media": row,
        "line": line,
        "thumbs": thumbs,
        "plots": charts.media_plots(row, line),
        "mel_src": None if mel is None else charts.data_uri(mel, "image/png"),
    }


def build(store_uri: str, run_id: str) -> str:
    """The report's HTML for one run of the store at `store_uri`."""
    doc = summary.run_detail(store_uri, run_id)
    view = Store.at_run(store_uri, run_id)
    ids = []
    if view.has("media"):
        rows = view.read("media", ["media_id", "uri"], where=in_list("run_id", [run_id])).to_pylist()
        ids = [r["media_id"] for r in sorted(rows, key=lambda r: r["uri"])]
    items = [item for item in (_item(view, i) for i in ids[:MAX_ITEMS]) if item is not None]
    return (
        environment()
        .get_template("report.html")
        .render(
            run=doc,
            plots=charts.run_plots(doc),
            items=items,
            items_left_out=max(len(ids) - MAX_ITEMS, 0),
            css=Markup((static_dir() / "style.css").read_text()),  # our own file
            store=store_uri,
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )


def write(store_uri: str, run_id: str, out: Path) -> Path:
    """Write the report to `out` (parent folders created) and return the path."""
    html = build(store_uri, run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
