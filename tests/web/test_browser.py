"""The pages in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Each test loads a page from the app served on loopback, checks what a person would see (hits with
loaded thumbnails, drawn plots, tables), that nothing was fetched from outside the app, and saves a
screenshot under artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import SampleStore

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"
    ),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CAPTION = "The cockatoo looks straight into the camera with its grey beak"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh page that records every URL it requests and every console error."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.requested = []
    tab.errors = []
    tab.on("request", lambda request: tab.requested.append(request.url))
    tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    yield tab
    outside = [u for u in tab.requested if not u.startswith(live_server) and not u.startswith("data:")]
    assert outside == [], "the page fetched something from outside the app"
    assert tab.errors == []
    context.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _loaded(page: Any, selector: str) -> list[int]:
    """naturalWidth of every image matching `selector` (0 means it did not load)."""
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")


def test_search_shows_the_video_first_with_its_thumbnail(
    page: Any, live_server: str, sample_store: SampleStore
) -> None:
    page.goto(live_server + "/")
    page.fill("#q", CAPTION)
    page.click("#search-button")
    page.wait_for_selector("#hits .hit", timeout=180_000)  # the first query loads the text encoder
    first = page.locator("#hits .hit").first
    assert first.get_attribute("data-media-id") == sample_store.ids["cockatoo.mp4"]
    assert first.locator("a.name").inner_text() == "cockatoo.mp4"
    assert "3.0–4.0 s" in first.inner_text() or "4.0–5.0 s" in first.inner_text()
    assert CAPTION in first.locator(".text").inner_text()
    thumb = first.locator("img.thumb")
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert thumb.evaluate("img => img.naturalWidth") > 0 and thumb.is_visible()
    _shot(page, "search")


def test_search_by_image_upload(page: Any, live_server: str, sample_store: SampleStore) -> None:
    page.goto(live_server + "/")
    page.set_input_files("#image-search input[type=file]", str(sample_store.data / "chelsea_cat.jpg"))
    page.click("#image-search button[type=submit]")
    page.wait_for_selector("#hits .hit", timeout=180_000)  # and the first image query the image encoder
    assert (
        page.locator("#hits .hit").first.get_attribute("data-media-id") == sample_store.ids["chelsea_cat.jpg"]
    )


def test_media_page_draws_its_plots(page: Any, live_server: str, sample_store: SampleStore) -> None:
    page.goto(f"{live_server}/media/{sample_store.ids['cockatoo.mp4']}")
    assert page.inner_text("#media-name") == "cockatoo.mp4"
    page.wait_for_load_state("load")
    widths = _loaded(page, "#thumbs img")
    assert len(widths) == 14 and all(w > 0 for w in widths)
    motion = page.locator("svg.plot-motion polyline")
    assert motion.count() == 1 and len(motion.get_attribute("points").split()) == 13
    assert page.locator("svg.plot-motion").bounding_box()["width"] > 300
    assert page.locator("svg.plot-loudness polyline").count() == 1
    assert _loaded(page, "#mel")[0] == 800
    assert page.locator("#text-segments tr").count() == 6  # header + 5 captions
    assert page.locator("svg.plot-text g.span").count() == 5
    assert page.locator("#probe").inner_text().count("1280") >= 1
    _shot(page, "media")


def test_media_page_plays_a_segment(page: Any, live_server: str, sample_store: SampleStore) -> None:
    page.goto(f"{live_server}/media/{sample_store.ids['dashwood_speech.wav']}")
    page.locator("button.play").nth(1).click()
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    duration = page.evaluate("() => document.getElementById('player').duration")
    assert duration == pytest.approx(1.0, abs=0.05)
    assert page.inner_text("#playing") == "1.0–2.0 s"


def test_runs_pages_render(page: Any, live_server: str, sample_store: SampleStore) -> None:
    page.goto(live_server + "/runs")
    page.click(f"text={sample_store.run_id}")
    page.wait_for_selector("#run-id")
    assert page.inner_text("#run-id") == sample_store.run_id
    assert page.locator("svg.plot-stages rect.bar").count() >= 4
    assert page.locator("#stages tr").count() >= 5
    assert '"segment_s": 1.0' in page.inner_text("#config")
    _shot(page, "run")
    page.goto(live_server + "/runs")
    assert page.locator("#runs tr").count() == 2
    _shot(page, "runs")


def test_quarantine_and_dataset_pages_render(page: Any, live_server: str) -> None:
    page.goto(live_server + "/quarantine")
    assert "CONTAINER_CORRUPT" in page.inner_text("#groups")
    assert "broken_clip.mp4" in page.inner_text("#quarantine")
    assert page.locator("svg.plot-quarantine rect.bar").count() == 1
    _shot(page, "quarantine")
    page.goto(live_server + "/dataset")
    assert page.locator("#by-kind tr").count() == 6  # header + 5 kinds
    assert page.locator("svg.plot-kind rect.bar").count() == 5
    _shot(page, "dataset")
