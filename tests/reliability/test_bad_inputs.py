"""The bad-input corpus through the real pipeline: each catalogue case lands as RELIABILITY.md says (G4).

One `run_pipeline` over every file `tests/bad_media.py` makes (a module fixture), then assertions per
case against the store: **Q** cases have exactly their quarantine row (code, stage, not retryable, the
file named in the message) and no data rows, **D** cases keep their rows with the flag or the failed
modality, **N** cases have the properties their file was made with. The run's counts obey
|inputs| = ok + quarantined + duplicates, and a second run over the same folder writes nothing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmfs.config import config_from_dict
from mmfs.errors import ErrorCode, MediaError
from mmfs.media.ffmpeg_log import quiet_ffmpeg
from mmfs.media.kinds import sniff
from mmfs.pipelines.run import RunSummary, run_pipeline
from mmfs.schemas import KEYS
from mmfs.store.db import Store
from mmfs.transforms.audio.windows import decode_audio
from mmfs.transforms.video.frames import choose, target_times
from tests import bad_media as bm

SLOW = pytest.mark.slow  # every test that reads the corpus run (about 35 s for the run, once per module)
FPS = 2.0
CFG = config_from_dict({"video": {"fps": FPS}, "runner": {"batch_media": 8}})
DATA_TABLES = ("frames", "flow", "audio", "text", "segments")
VECTOR_COLUMNS = {
    "frames": ("embedding", "label_embedding"),
    "audio": ("embedding",),
    "text": ("embedding",),
    "segments": ("visual", "motion", "audio", "text", "labels", "fused"),
}
CASES = {case.name: case for case in bm.cases()}
TONE_RMS = 0.5 / math.sqrt(2)  # the corpus tones have amplitude 0.5


def _names(*outcomes: str) -> list[str]:
    return [name for name, case in CASES.items() if case.outcome in outcomes]


def _degrades(case: bm.Case) -> bool:
    """A D case whose status is `degraded`: a failed modality, or lost content (damaged audio packets)."""
    return case.code is not None or "audio_decode_errors=" in case.flags


@dataclass
class CorpusRun:
    """The corpus folder, the store one run left, and its rows indexed for the per-case checks."""

    root: Path
    store: Store
    summary: RunSummary
    versions: dict[str, int]
    media_by_uri: dict[str, dict[str, Any]]
    quarantine: list[dict[str, Any]]
    rows: dict[str, dict[str, list[dict[str, Any]]]]  # table -> media_id -> rows

    def uri(self, name: str) -> str:
        """The uri a corpus file is recorded under."""
        return str((self.root / name).resolve())

    def media(self, name: str) -> dict[str, Any]:
        """The media row holding this file's bytes."""
        return self.media_by_uri[self.uri(name)]

    def failures(self, name: str) -> list[dict[str, Any]]:
        """Quarantine rows of this file: by its media row's id, or by `uri:` when it was never hashed."""
        row = self.media_by_uri.get(self.uri(name))
        keys = {f"uri:{self.uri(name)}"} | ({row["media_id"]} if row else set())
        return [q for q in self.quarantine if q["media_id"] in keys]

    def of(self, table: str, name: str) -> list[dict[str, Any]]:
        """A table's rows of this file, in key order."""
        rows = self.rows[table].get(self.media(name)["media_id"], [])
        return sorted(rows, key=lambda r: tuple(r[k] for k in KEYS[table]))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    root = tmp_path_factory.mktemp("bad") / "corpus"
    bm.build_corpus(root)
    store_dir = root.parent / "store"
    summary = run_pipeline([str(root)], CFG, store_dir, show_progress=False)
    store = Store(store_dir)
    media_by_uri = {uri: row for row in store.read("media").to_pylist() for uri in row["uris"]}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for table in DATA_TABLES:
        rows[table] = {}
        for row in store.read(table).to_pylist():
            rows[table].setdefault(row["media_id"], []).append(row)
    quarantine = store.read("quarantine").to_pylist()
    return CorpusRun(root, store, summary, store.versions(), media_by_uri, quarantine, rows)


# --- accounting ------------------------------------------------------------------------------------


@SLOW
def test_every_input_is_accounted_for(run: CorpusRun) -> None:
    """G4: |inputs| = ok + quarantined + duplicates, and each count matches the manifest."""
    s = run.summary
    outcomes = [case.outcome for case in CASES.values()]
    assert s.n_inputs == len(outcomes) - outcomes.count("skip")
    assert s.n_inputs == s.n_ok + s.n_quarantined + s.n_duplicates + s.n_skipped
    assert s.n_skipped == 0
    assert s.n_duplicates == outcomes.count("dup")
    assert s.n_quarantined == outcomes.count("Q")
    assert s.n_ok == outcomes.count("N") + outcomes.count("D")
    assert s.n_degraded == sum(1 for c in CASES.values() if c.outcome == "D" and _degrades(c))


@SLOW
def test_store_holds_each_input_once(run: CorpusRun) -> None:
    """Every input file is in a media row's uris or a quarantine row; no key is written twice."""
    for name, case in CASES.items():
        if case.outcome == "skip":
            continue
        assert run.uri(name) in run.media_by_uri or run.failures(name), name
    for table in ("media", *DATA_TABLES, "quarantine"):
        keys = [
            tuple(r[k] for k in KEYS[table]) for r in run.store.read(table, list(KEYS[table])).to_pylist()
        ]
        assert len(keys) == len(set(keys)), table
    statuses = {row["media_id"]: row["status"] for row in run.media_by_uri.values()}
    quarantined = {q["media_id"] for q in run.quarantine}
    assert not {m for m, s in statuses.items() if s == "ok"} & quarantined


@SLOW
def test_rerun_writes_nothing(run: CorpusRun) -> None:
    """G3: the same corpus again creates no data-table version and no row; its counts still add up."""
    again = run_pipeline([str(run.root)], CFG, run.store.uri, show_progress=False)
    after = Store(run.store.uri).versions()
    assert again.rows == {}
    assert {t: v for t, v in after.items() if t != "runs"} == {
        t: v for t, v in run.versions.items() if t != "runs"
    }
    hashed = {r["media_id"] for r in run.media_by_uri.values() if not r["media_id"].startswith("uri:")}
    assert again.n_ok == 0 and again.n_skipped == len(hashed)
    assert again.n_inputs == again.n_ok + again.n_quarantined + again.n_duplicates + again.n_skipped


# --- per outcome -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _names("Q"))
@SLOW
def test_quarantined(run: CorpusRun, name: str) -> None:
    """One quarantine row with the catalogue's code and stage; no data rows; the file named in the message."""
    case = CASES[name]
    (row,) = run.failures(name)
    assert (row["error_code"], row["stage"]) == (int(case.code or 0), case.stage), row["message"]
    assert row["retryable"] is False and row["attempts"] == 1
    media = run.media_by_uri.get(run.uri(name))
    named = [Path(uri).name for uri in (media["uris"] if media else [run.uri(name)])]
    assert any(n in row["message"] for n in named), (named, row["message"])  # the file, or its twin
    if case.stage == "read":  # never hashed: its failed media row shares the quarantine row's key
        assert media is not None and media["media_id"] == row["media_id"] == f"uri:{run.uri(name)}"
        assert media["status"] == "failed" and media["error"].startswith(f"read: [{case.code.name}]")
    else:
        assert media is not None and media["status"] == "failed" and media["error"]
        for table in DATA_TABLES:
            assert not run.of(table, name), table


@pytest.mark.parametrize("name", _names("D"))
@SLOW
def test_degraded(run: CorpusRun, name: str) -> None:
    """Kept, with the expected quality flags, or with the one failed modality quarantined."""
    case = CASES[name]
    media = run.media(name)
    for flag in case.flags:
        matches = [
            f for f in media["quality_flags"] if (f.startswith(flag) if flag.endswith("=") else f == flag)
        ]
        assert matches, (flag, media["quality_flags"])
    failures = run.failures(name)
    if case.code is None:
        assert media["status"] == ("degraded" if _degrades(case) else "ok") and not failures
    else:
        assert media["status"] == "degraded"
        assert [(f["error_code"], f["stage"]) for f in failures] == [(int(case.code), case.stage)]
    assert run.of("segments", name), "a degraded item still has its segments"


@pytest.mark.parametrize("name", _names("N"))
@SLOW
def test_normal(run: CorpusRun, name: str) -> None:
    """Processed with no flag and no failure; its rows exist for its kind, and every vector is finite."""
    media = run.media(name)
    assert media["status"] == "ok" and media["quality_flags"] == [] and not run.failures(name)
    if media["kind"] == "video":
        assert run.of("frames", name) and media["has_video"]
    if media["kind"] == "audio":
        assert len(run.of("audio", name)) == math.ceil(round(media["duration_s"] / CFG.align.segment_s, 9))
    if media["kind"] == "image":
        assert [f["t_s"] for f in run.of("frames", name)] == [0.0]
    if media["kind"] in ("video", "audio"):
        segments = run.of("segments", name)
        assert len(segments) == math.ceil(round(media["duration_s"] / CFG.align.segment_s, 9))
    for table, columns in VECTOR_COLUMNS.items():
        for row in run.of(table, name):
            for column in columns:
                if row[column] is not None:
                    assert np.isfinite(row[column]).all() and np.linalg.norm(row[column]) > 0, (table, column)


@pytest.mark.parametrize("name", _names("dup"))
@SLOW
def test_duplicate_is_one_item_with_both_uris(run: CorpusRun, name: str) -> None:
    """The same bytes under two names: one media row listing both, quarantined once if bad."""
    case = CASES[name]
    assert case.same_as is not None
    media, original = run.media(name), run.media(case.same_as)
    assert media is original and sorted(media["uris"]) == sorted([run.uri(name), run.uri(case.same_as)])
    assert len(run.failures(name)) == (1 if CASES[case.same_as].outcome == "Q" else 0)


@SLOW
def test_non_regular_files_are_never_opened(run: CorpusRun) -> None:
    """Item 22's FIFO: the run finished (nothing opened it) and it is neither an item nor a failure."""
    for name in _names("skip"):
        assert run.uri(name) not in run.media_by_uri and not run.failures(name)


# --- properties of particular cases ---------------------------------------------------------------


def _times(run: CorpusRun, name: str) -> list[float]:
    return [round(f["t_s"], 6) for f in run.of("frames", name)]


@SLOW
def test_vfr_frames_are_chosen_by_presentation_time(run: CorpusRun) -> None:
    """Item 4: the frame on screen at each target time, never index x nominal fps."""
    media = run.media("vfr.mp4")
    pts = np.array(bm.VFR_TIMES)
    expected = choose(pts, target_times(media["duration_s"], FPS, CFG.video.max_frames))
    assert [f["frame_index"] for f in run.of("frames", "vfr.mp4")] == expected.tolist()
    assert _times(run, "vfr.mp4") == [round(float(pts[i]), 6) for i in expected]


@SLOW
def test_missing_and_guessed_timestamps_still_give_ordered_times(run: CorpusRun) -> None:
    """Items 5 and 28: times counted (raw H.264) or re-ordered (AVI B-frames); a duration from frames."""
    for name in ("no_pts.h264", "b_frames.avi", "no_duration.mkv"):
        times = _times(run, name)
        media = run.media(name)
        assert len(times) >= 3 and times == sorted(set(times)), name
        assert 0.0 <= times[0] <= 0.1 + 1e-6 and times[-1] <= media["duration_s"], name
    assert run.media("no_duration.mkv")["duration_s"] == pytest.approx(2.5, abs=0.05)


@SLOW
def test_stream_start_offset_is_removed(run: CorpusRun) -> None:
    """Item 6: MPEG-TS starts at 1.4 s; frame and window times are seconds from the stream start."""
    media = run.media("offset_start.ts")
    assert _times(run, "offset_start.ts")[0] == 0.0 and media["has_audio"]
    windows = run.of("audio", "offset_start.ts")
    assert [w["start_s"] for w in windows] == [float(k) for k in range(len(windows))]
    assert len(windows) == len(run.of("segments", "offset_start.ts"))


@SLOW
def test_rotation_is_applied_and_recorded(run: CorpusRun) -> None:
    """Item 7: a -90 degree display matrix is a 90 degree turn clockwise; sizes are as displayed."""
    media = run.media("rotated_matrix.mp4")
    assert (media["rotation"], media["width"], media["height"]) == (90, bm.H, bm.W)
    for frame in run.of("frames", "rotated_matrix.mp4"):
        assert (frame["width"], frame["height"]) == (bm.H, bm.W)
        thumb = Image.open(io.BytesIO(frame["thumbnail"]))
        assert thumb.height > thumb.width


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("odd_66x50.mov", (66, 50)),
        ("odd_65x49.mkv", (65, 49)),
        ("tiny_2x2.mp4", (2, 2)),
        ("pixel_1x1.png", (1, 1)),
    ],
)
@SLOW
def test_odd_and_tiny_sizes(run: CorpusRun, name: str, size: tuple[int, int]) -> None:
    """Items 8 and 31: odd and tiny frames decode; their size is recorded and thumbnails open."""
    media = run.media(name)
    assert (media["width"], media["height"]) == size
    for frame in run.of("frames", name):
        Image.open(io.BytesIO(frame["thumbnail"])).load()


@SLOW
def test_one_frame_video(run: CorpusRun) -> None:
    """Item 31: one frame, no flow pair, one segment; nothing indexed past the end."""
    assert _times(run, "one_frame.mp4") == [0.0]
    assert run.of("flow", "one_frame.mp4") == [] and len(run.of("segments", "one_frame.mp4")) == 1


@SLOW
def test_streams_present_and_absent(run: CorpusRun) -> None:
    """Items 11 to 13: no audio, no video, and the default streams of a file with two of each."""
    silent = run.media("no_audio.mp4")
    assert silent["has_audio"] is False and run.of("audio", "no_audio.mp4") == []
    assert all(s["audio"] is None for s in run.of("segments", "no_audio.mp4"))
    m4a = run.media("audio_only.m4a")
    assert (m4a["kind"], m4a["has_video"], m4a["channels"], m4a["sample_rate"]) == ("audio", False, 2, 44100)
    assert run.of("frames", "audio_only.m4a") == [] and len(run.of("audio", "audio_only.m4a")) == 3
    two = run.media("two_streams_each.mkv")
    assert (two["width"], two["height"]) == (48, 32)  # the default video stream, not the first
    loud = [w["rms"] for w in run.of("audio", "two_streams_each.mkv")][:2]
    assert loud == pytest.approx([TONE_RMS] * 2, abs=0.03)  # the default (loud) audio stream


@pytest.mark.parametrize(
    ("name", "rate", "channels", "duration"),
    [
        ("six_channel_48k.wav", 48000, 6, 1.5),
        ("sixteen_channel.wav", 16000, 16, 1.0),
        ("rate_11025.wav", 11025, 1, 1.2),
        ("rate_7hz.wav", 7, 1, 2.0),
        ("absurd_data_size.wav", 8000, 1, 1.0),
    ],
)
@SLOW
def test_channels_and_rates(run: CorpusRun, name: str, rate: int, channels: int, duration: float) -> None:
    """Items 9, 14 and 15: downmixed before resampling, so the length is exact and the level kept."""
    media = run.media(name)
    assert (media["sample_rate"], media["channels"]) == (rate, channels)
    assert media["duration_s"] == pytest.approx(duration, abs=1 / CFG.audio.sample_rate)
    if rate >= 8000:  # at 7 Hz the 440 Hz tone is aliased to nothing like a sine
        assert run.of("audio", name)[0]["rms"] == pytest.approx(TONE_RMS, abs=0.02)


@SLOW
def test_pcm_formats_normalise_alike(run: CorpusRun) -> None:
    """Item 18: 8/16/24/32-bit integer and 32/64-bit float PCM give the same level and spectrum."""
    reference = np.array(run.of("audio", "pcm_float.wav")[0]["log_mel"])
    tone_band = int(np.argmax(reference.mean(axis=1)))
    for subtype in bm.PCM_SUBTYPES:
        (window,) = run.of("audio", f"pcm_{subtype.lower()}.wav")
        mel = np.array(window["log_mel"])
        assert window["rms"] == pytest.approx(TONE_RMS, abs=0.005), subtype
        assert int(np.argmax(mel.mean(axis=1))) == tone_band, subtype
        if subtype != "PCM_U8":  # 8-bit quantisation noise (-48 dB) lifts the bands beside the tone
            loud = reference > -40
            np.testing.assert_allclose(mel[loud], reference[loud], atol=0.5, err_msg=subtype)


@SLOW
def test_short_and_silent_audio_stay_finite(run: CorpusRun) -> None:
    """Items 16 and 17: shorter than n_fft, flagged, with the frames of its one centred STFT (padded at the
    signal's two ends, never zero frames); silence sits at the -100 dB floor, not at log(0)."""
    (short,) = run.of("audio", "short_10ms.wav")
    n = round(0.01 * CFG.audio.sample_rate)
    assert short["flags"] == ["padded"] and short["n_frames"] == 1 + n // CFG.audio.hop_length
    (silent,) = run.of("audio", "silence.wav")
    assert silent["rms"] == 0.0 and silent["embedding"] is None  # below embed_min_rms: not embedded
    assert np.array(silent["log_mel"]) == pytest.approx(-100.0)


@SLOW
def test_constant_frames_have_zero_finite_motion(run: CorpusRun) -> None:
    """Items 17 and 30: black frames give zero flow with an all-zero orientation histogram, never NaN."""
    flow = run.of("flow", "black_frames.mp4")
    assert flow and all(f["mean_mag"] == pytest.approx(0.0, abs=1e-3) for f in flow)
    assert all(sum(f["orient_hist"]) == pytest.approx(0.0, abs=1e-6) for f in flow)


@SLOW
def test_corrupt_packets_are_skipped_and_counted(run: CorpusRun) -> None:
    """Item 3: decoding goes on past damaged packets; the damage is counted in the flag."""
    (flag,) = [f for f in run.media("few_bad_packets.mp4")["quality_flags"] if f.startswith("decode_errors=")]
    assert int(flag.split("=")[1]) >= 1
    assert _times(run, "few_bad_packets.mp4")[-1] >= 5.0  # frames from after the last damaged packet


@SLOW
def test_degraded_items_keep_their_other_modalities(run: CorpusRun) -> None:
    """Items 19 and 20: a bad audio track or sidecar loses that modality only."""
    assert run.of("frames", "bad_audio_track.mkv") and run.of("audio", "bad_audio_track.mkv") == []
    assert run.media("bad_audio_track.mkv")["has_audio"] is True
    assert run.of("frames", "captioned.mp4") and run.of("text", "captioned.mp4") == []


@SLOW
def test_latin1_text_and_captions_decode_with_their_charset(run: CorpusRun) -> None:
    """Item 20: strict UTF-8 fails, the detected charset decodes every byte and is recorded."""
    (doc,) = run.of("text", "latin1.txt")
    assert doc["text"].startswith("Café au lait, crème brûlée") and doc["charset"] == "cp1252"
    (cue,) = run.of("text", "captioned_latin1.mp4")
    assert (cue["text"], cue["start_s"], cue["charset"]) == ("Un café près de la fenêtre.", 0.0, "cp1252")


@SLOW
def test_utf16_with_a_bom_is_text(run: CorpusRun) -> None:
    """Item 20: the UTF-16 LE byte-order mark is text, not an MPEG audio frame sync (both start FF Fx)."""
    (utf16,) = run.of("text", "utf16_bom.txt")
    assert utf16["text"] == "Owls hunt at night. They fly silently."


@SLOW
def test_hostile_names_are_kept_verbatim(run: CorpusRun) -> None:
    """Item 23: names with spaces, quotes, unicode and shell syntax are paths, never commands."""
    for name in (bm.SPACES_NAME, bm.UNICODE_NAME, bm.SHELL_NAME, bm.BACKSLASH_NAME):
        assert run.media(name)["uri"] == run.uri(name)
    assert not list(run.root.parent.rglob("pwned")) and not Path("pwned").exists()


@SLOW
def test_archives_are_not_unpacked(run: CorpusRun) -> None:
    """Item 24: a tar given as input is refused, and none of its members is written anywhere."""
    assert not list(run.root.parent.parent.rglob("escaped_from_bad_media.txt"))


@SLOW
def test_bombs_are_refused_with_the_file_named(run: CorpusRun) -> None:
    """Item 10: decompression bombs fail at the probe, by header, with the file name in the message."""
    for name in ("bomb_header_100k.png", "bomb_zeros_20k.png", "bomb_sof.jpg"):
        (row,) = run.failures(name)
        assert name in row["message"] and "pixels" in row["message"]
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard was never switched off to get there


# --- the fixes behind some cases, at the edges the corpus does not reach (fast) ----------------------


@pytest.mark.parametrize("rate", [7, 8000, 22050, 44100, 192000])
@pytest.mark.parametrize("n", [1, 10, 63, 200])
def test_resampling_keeps_tiny_sources_whole(tmp_path: Path, rate: int, n: int) -> None:
    """Item 16: libswresample drops its filter delay on drain; a source shorter than that still comes out."""
    path = tmp_path / "tiny.wav"
    sf.write(path, np.full(n, 0.25, np.float32), rate, subtype="FLOAT")
    expected = round(n * CFG.audio.sample_rate / rate)
    if expected == 0:
        with pytest.raises(MediaError) as caught:
            decode_audio(path, sample_rate=CFG.audio.sample_rate, max_duration_s=60)
        assert caught.value.code == ErrorCode.TOO_SHORT
        return
    audio = decode_audio(path, sample_rate=CFG.audio.sample_rate, max_duration_s=60)
    assert len(audio.samples) == expected


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        ("Owls hunt at night.".encode("utf-16"), "text"),  # FF FE: also an MPEG sync pattern
        ("Owls hunt at night.".encode("utf-16-be"), "unknown"),  # no BOM: NUL bytes, probe decides
        (b"\xff\xfb\x90\x64" + bytes(400), "av"),  # an MP3 frame header
        (b"YUV4MPEG2 W64 H48 F25:1\nFRAME\n" + b"\x80" * 600, "av"),  # frames that look like text
        (b"\x47\x40\x00\x10" + bytes(184) + b"\x47" + bytes(187) + b"\x47" + bytes(200), "av"),  # MPEG-TS
        (b"evil.txt".ljust(257, b"\x00") + b"ustar\x0000" + bytes(200), "binary"),  # a tar header
    ],
)
def test_sniff_edge_cases(head: bytes, kind: str) -> None:
    """Kinds from bytes: the signatures the corpus showed were missed or confused."""
    assert sniff(head) == kind


def test_ffmpeg_never_logs_through_python() -> None:
    """The corrupt-video hang: FFmpeg threads never take the GIL to log, even once torchvision is in."""
    av.logging.set_level(av.logging.ERROR)  # what importing torchvision does
    quiet_ffmpeg()
    assert av.logging.get_level() is None  # PyAV's no-op callback, which never takes the GIL
