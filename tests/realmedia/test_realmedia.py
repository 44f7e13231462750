"""Real media nobody on the project made (Debian packages, `make realmedia`) through a whole `mmfs run`.

One run of the default config over the corpus, as a separate process; then, per file, the outcome it
must have: its kind and status, rows per modality, its duration next to ffprobe's (Debian FFmpeg 5.1,
measured when the corpus was chosen), its size as displayed, and its flags or its quarantine code.
Skipped, with the reason, when the corpus is not in the cache (`make realmedia` needs apt-get).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mmfs.store.db import Store
from tests.realmedia.corpus import SOURCES, files_dir

FILES = files_dir()
pytestmark = [
    pytest.mark.realmedia,
    pytest.mark.slow,
    pytest.mark.skipif(
        not all((FILES / s.name).is_file() for s in SOURCES),
        reason=f"the real-media corpus is not in {FILES}: run `make realmedia` (apt-get download, as root)",
    ),
]
ANY = -1  # a row count not asserted (speech recognised in a film's soundtrack may or may not be words)


@dataclass(frozen=True)
class Want:
    """What one file must become."""

    kind: str
    status: str = "ok"
    frames: int = 0
    audio: int = 0
    text: int = 0
    segments: int = 0
    duration: float | None = None  # ffprobe's format duration (None: a still or a refused file)
    size: tuple[int, int] | None = None  # width, height as displayed
    rotation: int = 0
    flags: tuple[str, ...] = ()  # exactly these quality flags (a trailing '=' matches a prefix)
    quarantine: tuple[tuple[str, str], ...] = ()  # (stage, error name) rows
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _image(w: int, h: int, rotation: int = 0) -> Want:
    return Want("image", frames=1, segments=1, size=(w, h), rotation=rotation)


def _video(duration: float, w: int, h: int, seconds: int, audio: bool = True, text: int = ANY) -> Want:
    """A clip sampled at 1 fps with one audio window and one segment per started second."""
    return Want(
        "video",
        frames=seconds,
        audio=seconds if audio else 0,
        text=text if audio else 0,
        segments=seconds,
        duration=duration,
        size=(w, h),
    )


def _audio(duration: float, seconds: int, text: int = 0, flags: tuple[str, ...] = ()) -> Want:
    return Want("audio", audio=seconds, text=text, segments=seconds, duration=duration, flags=flags)


FAILED = Want("unknown", status="failed")
WANT: dict[str, Want] = {
    # video containers and codecs: H.263+AMR-NB in 3GP, WMV2+WMA2 in ASF, Sorenson+MP3 in FLV,
    # MPEG-4 Part 2+AAC 5.1 in Matroska (no cues: decoded in order), H.264+AAC in MOV and MP4,
    # Theora+Vorbis in Ogg, RealVideo 1+AC-3 in RealMedia, VP8+Vorbis in WebM
    "techslides.3gp": _video(5.534, 352, 288, 6),
    "techslides.asf": _video(4.414, 560, 320, 5),
    "techslides.flv": _video(5.56, 320, 240, 6),
    "techslides.mkv": _video(3.6, 1280, 720, 4),
    "techslides.mov": _video(5.599, 560, 320, 6),
    "techslides.mp4": _video(5.568, 560, 320, 6),
    "techslides.ogv": _video(5.546667, 560, 320, 6),
    "techslides.rmvb": _video(5.568, 560, 320, 6),
    "techslides.webm": _video(5.568, 560, 320, 6),
    # a phone's clip (H.264+AAC, 1080p), a screen recording with a spoken "hello" in AVI (H.264+AAC)
    # and MPEG-PS (MPEG-2+MP2); its Ogg copy has a Vorbis track FFmpeg cannot decode either
    "phone_video.mp4": _video(1.6, 1920, 1080, 2),
    "hello.avi": _video(8.36, 1024, 576, 9),
    "hello.mpeg": _video(8.317667, 640, 480, 9),
    "hello.ogg": Want(
        "video",
        status="degraded",
        frames=ANY,
        segments=9,
        duration=8.341667,
        size=(720, 480),
        flags=("decode_errors=",),
        quarantine=(("audio", "AUDIO_DECODE"),),
    ),
    "city.mpg": _video(7.6, 720, 405, 8, audio=False),  # MPEG-2 video, no sound
    # an AVIF sequence: its first video stream is the one-frame still the sequence starts with
    "sequence.avif": Want("video", frames=1, segments=3, duration=2.1, size=(499, 479)),
    # audio: a spoken word in MP3 and Ogg Vorbis, instruments in Ogg Vorbis and FLAC, a drum hit in WAV
    "debian.mp3": _audio(5.433469, 6, text=ANY),
    "debian.oga": _audio(5.406961, 6, text=ANY),
    "piano.ogg": _audio(10.018526, 11, flags=("audio_padded",)),
    "techno_loop.ogg": _audio(3.836054, 4),
    "saw.flac": _audio(0.1, 1),
    "clap.wav": _audio(0.13898, 1),
    # stills: animated GIF/APNG/WebP keep their first frame; 16-bit PNG; CMYK, progressive and
    # truncated-progressive JPEG; EXIF orientations (the size is as displayed); TIFF (16-bit, CCITT G4),
    # BMP, AVIF, Netpbm; phone photos; a 161x1 JPEG
    "cv_joint.gif": _image(320, 240),
    "newtons_cradle.gif": _image(200, 150),
    "paletted_5bpp.gif": _image(150, 103),
    "animated.apng.png": _image(100, 100),
    "gray16.png": _image(32, 32),
    "rgb16.png": _image(32, 32),
    "rgba16.png": _image(32, 32),
    "cmyk.jpeg": _image(150, 103),
    "progressive.jpeg": _image(150, 103),
    "progressive_truncated.jpeg": _image(150, 103),
    "orientation_1.jpg": _image(50, 70),
    "orientation_3.jpg": _image(50, 70, rotation=180),
    "orientation_6.jpg": _image(50, 70, rotation=90),
    "orientation_8.jpg": _image(50, 70, rotation=270),
    "video16.tiff": _image(150, 103),
    "gopher_g4.tiff": _image(153, 55),
    "rose.bmp": _image(16, 12),
    "rose_lossy.webp": _image(400, 301),
    "rose_alpha.webp": _image(400, 301),
    "tux_lossless.webp": _image(386, 395),
    "still.avif": _image(320, 180),
    "debian.ppm": _image(800, 600),
    "phone_photo.jpg": _image(4000, 3000, rotation=180),
    "messenger_photo.jpg": _image(1024, 768),
    "empty.jpg": _image(161, 1),
    # refused: a damaged PNG (bad CRC), a MIDI score (not audio)
    "bad_crc.png": Want("image", status="failed", quarantine=(("probe", "IMAGE_DECODE"),)),
    "middle_c.mid": Want("unknown", status="failed", quarantine=(("probe", "UNSUPPORTED_KIND"),)),
}
TABLES = ("frames", "audio", "text", "segments")


@dataclass
class CorpusRun:
    """The run's JSON summary and the store's rows, per file name."""

    summary: dict[str, Any]
    media: dict[str, dict[str, Any]]
    rows: dict[str, dict[str, int]]
    quarantine: dict[str, list[tuple[str, str]]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    """`mmfs run` over the whole corpus, as a user runs it (its own process, the default config)."""
    store_dir = tmp_path_factory.mktemp("realmedia") / "store"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mmfs.cli", "run", str(FILES), "--store", str(store_dir), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3000, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(store_dir)
    by_id = {r["media_id"]: r for r in store.read("media").to_pylist()}
    name = {mid: Path(r["uri"]).name for mid, r in by_id.items()}
    rows: dict[str, dict[str, int]] = {n: dict.fromkeys(TABLES, 0) for n in name.values()}
    for table in TABLES:
        if store.has(table):
            for r in store.read(table, ["media_id"]).to_pylist():
                rows[name[r["media_id"]]][table] += 1
    quarantine: dict[str, list[tuple[str, str]]] = {}
    if store.has("quarantine"):
        for q in store.read("quarantine").to_pylist():
            quarantine.setdefault(name[q["media_id"]], []).append((q["stage"], q["error_name"]))
    media = {name[mid]: r for mid, r in by_id.items()}
    return CorpusRun(json.loads(done.stdout), media, rows, quarantine)


def test_the_corpus_covers_what_the_issue_asks() -> None:
    """At least 30 files over at least 15 container/codec pairs, each with an expected outcome."""
    assert set(WANT) == {s.name for s in SOURCES}
    assert len(WANT) >= 30


def test_every_file_is_accounted_for(run: CorpusRun) -> None:
    s = run.summary
    failed = sum(w.status == "failed" for w in WANT.values())
    degraded = sum(w.status == "degraded" for w in WANT.values())
    assert (s["n_inputs"], s["n_quarantined"], s["n_ok"], s["n_degraded"]) == (
        len(WANT),
        failed,
        len(WANT) - failed,
        degraded,
    )


@pytest.mark.parametrize("name", sorted(WANT))
def test_each_file_has_its_outcome(run: CorpusRun, name: str) -> None:
    want, media = WANT[name], run.media[name]
    assert (media["status"], run.quarantine.get(name, [])) == (want.status, list(want.quarantine))
    if want.status == "failed":
        return
    assert media["kind"] == want.kind
    got_rows = run.rows[name]
    for table in TABLES:
        expected = getattr(want, table)
        if expected != ANY:
            assert got_rows[table] == expected, (table, got_rows)
    if want.duration is not None:
        assert media["duration_s"] == pytest.approx(want.duration, abs=max(0.05, 0.01 * want.duration))
    if want.size is not None:
        assert (media["width"], media["height"], media["rotation"]) == (*want.size, want.rotation)
    flags = media["quality_flags"]
    assert len(flags) == len(want.flags), flags
    for flag in want.flags:
        assert any(f.startswith(flag) if flag.endswith("=") else f == flag for f in flags), flags
