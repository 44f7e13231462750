"""The JSON API and pages against a real store of the sample data (FastAPI's TestClient, no mocks)."""

from __future__ import annotations

import io
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.web.app import create_app
from tests.web.conftest import SampleStore

pytestmark = pytest.mark.slow
CAPTION = "The cockatoo looks straight into the camera with its grey beak."
INJECTION = "x' OR 1=1 --"


@pytest.fixture(scope="module")
def client(sample_store: SampleStore) -> TestClient:
    return TestClient(create_app(sample_store.store))


def test_caption_phrase_finds_the_video_at_that_caption(
    client: TestClient, sample_store: SampleStore
) -> None:
    hits = client.get("/api/search", params={"text": CAPTION, "k": 5}).json()["hits"]
    first = hits[0]
    assert first["media_id"] == sample_store.ids["cockatoo.mp4"] and first["name"] == "cockatoo.mp4"
    assert 3.0 <= first["start_s"] < 5.0 and first["text"] == CAPTION  # the caption's own 3-5 s
    assert "visual" in first["modalities"] and first["score"] > 0.5
    thumb = client.get(first["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] > 0
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_text_and_hybrid_modes(client: TestClient, sample_store: SampleStore) -> None:
    for mode in ("text", "hybrid"):
        hits = client.get("/api/search", params={"text": "grey beak", "mode": mode}).json()["hits"]
        assert hits and hits[0]["media_id"] == sample_store.ids["cockatoo.mp4"], mode
        assert "beak" in hits[0]["transcript"]


def test_typed_filters_narrow_the_hits(client: TestClient, sample_store: SampleStore) -> None:
    def ids(**params: object) -> set[str]:
        hits = client.get("/api/search", params={"text": "a cat", "k": 50, **params}).json()["hits"]
        return {h["media_id"] for h in hits}

    everything = ids()
    assert len(everything) >= 5
    assert ids(kind="image") == {
        sample_store.ids[n] for n in ("chelsea_cat.jpg", "coffee.jpg", "rocket_launch.jpg")
    }
    assert ids(min_duration=10) == {sample_store.ids["cockatoo.mp4"]}  # 14 s; the speech is 7.1 s
    assert sample_store.ids["cockatoo.mp4"] not in ids(max_duration=10)
    assert ids(source=str(sample_store.data)) == everything
    assert ids(source="/etc") == set()


def test_filter_values_are_values_not_sql(client: TestClient, sample_store: SampleStore) -> None:
    for params in ({"kind": INJECTION}, {"source": INJECTION}, {"kind": "video' --"}):
        response = client.get("/api/search", params={"text": CAPTION, **params})
        assert response.status_code == 200 and response.json()["hits"] == [], params
    assert client.get("/api/search", params={"text": INJECTION}).status_code == 200  # just words
    assert client.get("/api/search", params={"text": "x", "min_duration": "1 OR 1=1"}).status_code == 422
    # the store still holds every row: nothing was deleted or rewritten by the requests above
    assert Store(sample_store.store).count("segments") > 20


def test_image_upload_finds_the_same_photo(client: TestClient, sample_store: SampleStore) -> None:
    photo = (sample_store.data / "coffee.jpg").read_bytes()
    response = client.post(
        "/api/search/image", files={"image": ("q.jpg", photo, "image/jpeg")}, data={"k": "3"}
    )
    hits = response.json()["hits"]
    assert hits[0]["media_id"] == sample_store.ids["coffee.jpg"] and hits[0]["modality"] == "visual"
    assert hits[0]["score"] > 0.99
    empty = client.post("/api/search/image", files={"image": ("q.jpg", b"", "image/jpeg")})
    assert empty.status_code == 400 and empty.json() == {"error": "the uploaded image is empty"}
    junk = client.post("/api/search/image", files={"image": ("q.jpg", b"not an image", "image/jpeg")})
    assert junk.status_code == 500 and "not a decodable image" in junk.json()["error"]


def test_media_item_has_probe_data_and_a_timeline(client: TestClient, sample_store: SampleStore) -> None:
    media_id = sample_store.ids["cockatoo.mp4"]
    doc = client.get(f"/api/media/{media_id}").json()
    media, line = doc["media"], doc["timeline"]
    assert media["kind"] == "video" and (media["width"], media["height"]) == (1280, 720)
    assert media["duration_s"] == pytest.approx(14.0, abs=0.1)
    times = [f["t_s"] for f in line["frames"]]
    assert len(times) == 14 and times == sorted(times)
    assert len(line["motion"]) == 13 and all(m["mean_mag"] >= 0 for m in line["motion"])
    assert len(line["loudness"]) == 14 and len(line["text"]) == 5
    assert line["silent"]  # the sample video's mp3 track holds silence
    assert line["text"][1]["text"] == CAPTION and line["text"][1]["start_s"] == 3.0


def test_plots_and_spectrogram(client: TestClient, sample_store: SampleStore) -> None:
    speech = sample_store.ids["dashwood_speech.wav"]
    svg = client.get(f"/api/media/{speech}/plot/loudness.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and svg.text.count("<circle") == 8  # 8 windows
    motion = client.get(f"/api/media/{sample_store.ids['cockatoo.mp4']}/plot/motion.svg").text
    assert "<polyline" in motion and motion.count("<circle") == 13
    png = client.get(f"/api/media/{speech}/mel.png")
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (800, 128) and np.asarray(image).std() > 10  # speech is not a flat picture
    photo = sample_store.ids["coffee.jpg"]
    assert client.get(f"/api/media/{photo}/mel.png").status_code == 404  # no audio
    assert client.get(f"/api/media/{speech}/plot/other.svg").status_code == 422


def test_audio_clip_is_the_segment(client: TestClient, sample_store: SampleStore) -> None:
    speech = sample_store.ids["dashwood_speech.wav"]
    response = client.get(f"/api/media/{speech}/audio.wav", params={"start": 1.0, "end": 2.0})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as clip:
        assert (clip.getframerate(), clip.getnchannels()) == (16000, 1)
        samples = np.frombuffer(clip.readframes(clip.getnframes()), "<i2").astype(np.float32) / 32767
    assert len(samples) == pytest.approx(16000, abs=160)
    stored = (
        Store(sample_store.store)
        .read("audio", ["window_index", "rms"], where=in_list("media_id", [speech]))
        .to_pylist()
    )
    rms_window_1 = next(r["rms"] for r in stored if r["window_index"] == 1)
    assert float(np.sqrt(np.mean(samples**2))) == pytest.approx(rms_window_1, rel=0.1)


def test_no_path_reaches_files_outside_the_store(client: TestClient, sample_store: SampleStore) -> None:
    speech = sample_store.ids["dashwood_speech.wav"]
    for url in (
        "/api/media/..%2F..%2F..%2Fetc%2Fpasswd/audio.wav?start=0&end=1",
        "/api/media/../../../etc/passwd/audio.wav?start=0&end=1",
        "/api/media/%2Fetc%2Fpasswd/audio.wav?start=0&end=1",
        "/api/media/" + "0" * 64 + "/audio.wav?start=0&end=1",
        "/api/media/" + "0" * 64 + "/thumbnail/0",
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/static/..%2F..%2F..%2Fpyproject.toml",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
    ):
        response = client.get(url)
        assert response.status_code in (404, 422), url
        assert b"root:" not in response.content and b"[project]" not in response.content, url
    plain = client.get(f"/api/media/{speech}/audio.wav", params={"start": 0, "end": 1}).content
    sneaky = client.get(
        f"/api/media/{speech}/audio.wav",
        params={"start": 0, "end": 1, "path": "/etc/passwd", "uri": "/etc/passwd"},
    ).content
    assert sneaky == plain  # unknown parameters change nothing: the file comes from the media row only
    assert client.get(f"/api/media/{speech}/audio.wav", params={"start": 0, "end": 100}).status_code == 400


def test_clip_refused_when_the_source_file_is_gone_or_changed(
    client: TestClient, sample_store: SampleStore
) -> None:
    speech = sample_store.ids["dashwood_speech.wav"]
    source = sample_store.data / "dashwood_speech.wav"
    kept = source.with_suffix(".kept")
    shutil.copy(source, kept)
    try:
        source.unlink()
        gone = client.get(f"/api/media/{speech}/audio.wav", params={"start": 0, "end": 1})
        assert gone.status_code == 404 and gone.json() == {"error": "the source file is not available here"}
        source.write_bytes(kept.read_bytes() + b"\0" * 10)  # other bytes under the recorded path
        assert client.get(f"/api/media/{speech}/audio.wav", params={"start": 0, "end": 1}).status_code == 404
    finally:
        shutil.copy(kept, source)
        kept.unlink()
    assert client.get(f"/api/media/{speech}/audio.wav", params={"start": 0, "end": 1}).status_code == 200


def test_runs_quarantine_and_composition(client: TestClient, sample_store: SampleStore) -> None:
    runs = client.get("/api/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == [sample_store.run_id] and runs[0]["duration_s"] > 0
    run = client.get(f"/api/runs/{sample_store.run_id}").json()
    assert run["outcomes"]["ok"] == 6 and run["error_codes"] == {"1004 MediaDecodeError": 1}
    assert {s["stage"] for s in run["stages"]} >= {"probe", "frames", "audio", "embed"}
    assert all(s["items_per_s"] > 0 for s in run["stages"] if s["seconds"] > 0)
    assert run["config"]["align"]["segment_s"] == 1.0
    missing = client.get("/api/runs/no-such-run")
    assert missing.status_code == 404 and "no run 'no-such-run'" in missing.json()["error"]
    quarantine = client.get("/api/quarantine").json()
    assert quarantine["groups"] == [
        {"error_code": 1004, "code_name": "CONTAINER_CORRUPT", "stage": "probe", "count": 1}
    ]
    assert Path(quarantine["rows"][0]["uri"]).name == "broken_clip.mp4"
    comp = client.get("/api/composition").json()
    assert comp["items"] == 7
    assert {k: v["items"] for k, v in comp["by"]["kind"].items()} == {
        "audio": 1,
        "image": 3,
        "text": 1,
        "unknown": 1,
        "video": 1,
    }
    assert comp["by"]["kind"]["video"]["seconds"] == pytest.approx(14.0, abs=0.1)
    assert comp["by"]["source"] == {str(sample_store.data): {"items": 7, "seconds": comp["seconds"]}}
    # the language is detected from each item's text: the English note and the captioned clip are "en"
    languages = {k: v["items"] for k, v in comp["by"]["language"].items()}
    assert languages.get("en", 0) >= 1 and sum(languages.values()) == 7, languages
    dataset = client.get("/dataset").text
    assert '<p id="totals">7 items,' in dataset and "built-in method" not in dataset


def test_pages_escape_what_users_type(client: TestClient) -> None:
    page = client.get("/", params={"text": "<script>alert(1)</script>"})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    bad = client.get("/", params={"text": "x", "k": 1000})
    assert bad.status_code == 422 and "k: Input should be less than or equal to 100" in bad.text
    assert client.get("/api/search", params={"text": "   "}).json() == {
        "error": "type a text or choose an image to search for"
    }


def test_every_page_renders(client: TestClient, sample_store: SampleStore) -> None:
    pages = {
        "/": "Search segments",
        "/media": "cockatoo.mp4",
        f"/media/{sample_store.ids['cockatoo.mp4']}": "Motion: mean optical-flow magnitude",
        "/runs": sample_store.run_id,
        f"/runs/{sample_store.run_id}": "Seconds per stage",
        "/quarantine": "CONTAINER_CORRUPT",
        "/dataset": "Dataset composition",
    }
    for url, needle in pages.items():
        page = client.get(url)
        assert page.status_code == 200 and needle in page.text, url
        assert "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', ""), url
    assert client.get("/media/" + "0" * 64).status_code == 404


def test_search_form_number_fields(client: TestClient, sample_store: SampleStore) -> None:
    empty = client.get("/", params={"text": CAPTION, "min_duration": "", "max_duration": "", "kind": ""})
    assert empty.status_code == 200 and f'data-media-id="{sample_store.ids["cockatoo.mp4"]}"' in empty.text
    bad = client.get("/", params={"text": CAPTION, "min_duration": "1 OR 1=1"})
    assert (
        bad.status_code == 400 and "duration from: &#39;1 OR 1=1&#39; is not a number of seconds" in bad.text
    )
    assert client.get("/", params={"text": CAPTION, "max_duration": "-1"}).status_code == 400
