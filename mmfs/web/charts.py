"""The plots of each page from its data: one place, so the live pages and the static report match."""

from __future__ import annotations

import base64
from typing import Any

from mmfs.store.db import Store
from mmfs.web import plots, spectrogram, timeline


def media_plots(row: dict[str, Any], line: dict[str, Any]) -> dict[str, str]:
    """SVG over the item's time: motion (flow `mean_mag`), loudness (audio `rms`) and timed text."""
    times = [p["t_s"] for p in line["motion"]] + [p["t_s"] for p in line["loudness"]]
    end = row.get("duration_s") or (max(times) if times else 1.0)
    x_range = (0.0, float(end))
    timed = [
        (t["start_s"], t["end_s"] or t["start_s"], t["text"])
        for t in line["text"]
        if t["start_s"] is not None
    ]
    return {
        "text": plots.spans_chart(
            timed, title="Text at its times (s)", x_range=x_range, css_class="plot plot-text"
        )
        if timed
        else "",
        "motion": plots.line_chart(
            [(p["t_s"], p["mean_mag"]) for p in line["motion"] if p["mean_mag"] is not None],
            title="Motion: mean optical-flow magnitude",
            x_label="time (s)",
            y_label="pixels",
            x_range=x_range,
            css_class="plot plot-motion",
        ),
        "loudness": plots.line_chart(
            [(p["t_s"], p["rms"]) for p in line["loudness"] if p["rms"] is not None],
            title="Loudness: RMS per window",
            x_label="time (s)",
            y_label="RMS",
            x_range=x_range,
            css_class="plot plot-loudness",
        ),
    }


def mel_image(store: Store, media_id: str) -> bytes | None:
    """PNG of the item's log-mel spectrogram, or None when it has no audio windows."""
    matrix = spectrogram.mel_matrix(timeline.log_mel_windows(store, media_id))
    return None if matrix is None else spectrogram.mel_png(matrix)


def data_uri(data: bytes, media_type: str) -> str:
    """A `data:` URI, for images inside the self-contained report."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def run_plots(doc: dict[str, Any]) -> dict[str, str]:
    """SVG of a run's seconds per stage, items per second per stage, rows per table and outcomes."""
    stages = doc.get("stages", [])
    return {
        "stage_seconds": plots.bar_chart(
            [(s["stage"], s["seconds"]) for s in stages],
            title="Seconds per stage",
            unit="s",
            css_class="plot plot-stages",
        ),
        "stage_rates": plots.bar_chart(
            [(s["stage"], s["items_per_s"]) for s in stages if s["items_per_s"] is not None],
            title="Items per second per stage",
            unit="items/s",
            css_class="plot plot-rates",
        ),
        "rows": plots.bar_chart(
            sorted(((t, float(n)) for t, n in doc.get("rows", {}).items()), key=lambda kv: -kv[1]),
            title="Rows written per table",
            css_class="plot plot-rows",
        ),
        "outcomes": plots.bar_chart(
            [(k, float(v)) for k, v in sorted(doc.get("outcomes", {}).items())],
            title="Items by outcome",
            css_class="plot plot-outcomes",
        ),
    }


def composition_plots(doc: dict[str, Any]) -> dict[str, str]:
    """SVG bars of item counts per facet value (kind, source, language, status)."""
    return {
        facet: plots.bar_chart(
            [(name, float(v["items"])) for name, v in values.items()],
            title=f"Items by {facet}",
            unit="items",
            css_class=f"plot plot-{facet}",
        )
        for facet, values in doc.get("by", {}).items()
    }


def quarantine_plot(doc: dict[str, Any]) -> str:
    """SVG bars of quarantine rows per error code and stage."""
    return plots.bar_chart(
        [(f"{g['code_name']} @ {g['stage']}", float(g["count"])) for g in doc.get("groups", [])],
        title="Quarantined by error code",
        unit="rows",
        css_class="plot plot-quarantine",
    )
