"""The real-media corpus: files nobody on the project made, taken from Debian packages into a cache.

    python -m tests.realmedia.corpus [CACHE]          (make realmedia)

Each package is fetched with `apt-get download` and unpacked with `dpkg -x` under CACHE/pkgs (nothing
is installed system-wide), then the chosen files are copied flat into CACHE/files under the names the
test expects. Without apt-get (or without the network to the package archive) it says why and exits
0: `tests/realmedia/test_realmedia.py` then skips with the same reason. Sources and licences:
tests/realmedia/SOURCES.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "mmfs" / "realmedia"
MIMETYPE = "usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata"
FORENSICS = "usr/share/forensics-samples/original-files"
GO_IMAGE = "usr/share/go-1.19/src/image"
X_IMAGE = "usr/share/gocode/src/golang.org/x/image/testdata"
IMAGING = "usr/share/gocode/src/github.com/disintegration/imaging/testdata"
KIVY = "usr/share/kivy-examples"
LMMS = "usr/share/lmms/samples"
IMAGEIO = "usr/lib/python3/dist-packages/imageio/resources/images"
PIANO = "usr/share/doc/pianobooster/courses/BeginnerCourse"


@dataclass(frozen=True)
class Source:
    """One corpus file: the Debian package that ships it, its path inside, and its name in the corpus."""

    name: str
    package: str
    path: str


SOURCES: tuple[Source, ...] = (
    # containers and codecs of video (TechSlides sample clips, in the mimetype library's test data)
    Source("techslides.3gp", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/3gp.3gp"),
    Source("techslides.asf", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/asf.asf"),
    Source("techslides.flv", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/flv.flv"),
    Source("techslides.mkv", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/mkv.mkv"),
    Source("techslides.mov", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/mov.mov"),
    Source("techslides.mp4", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/mp4.mp4"),
    Source("techslides.ogv", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/ogg.ogv"),
    Source("techslides.rmvb", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/rmvb.rmvb"),
    Source("techslides.webm", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/webm.webm"),
    Source("still.avif", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/avif.avif"),
    Source("sequence.avif", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/avifsequence.avif"),
    Source("animated.apng.png", "golang-github-gabriel-vasile-mimetype-dev", f"{MIMETYPE}/apng.png"),
    # a phone's video and photos, a screen recording in four containers, a spoken word in three
    Source("phone_video.mp4", "forensics-samples-files", f"{FORENSICS}/movie1/VID_20191220_170832.mp4"),
    Source("hello.avi", "forensics-samples-files", f"{FORENSICS}/movie2/movie-hello.avi"),
    Source("hello.mpeg", "forensics-samples-files", f"{FORENSICS}/movie2/movie-hello.mpeg"),
    Source("hello.ogg", "forensics-samples-files", f"{FORENSICS}/movie2/movie-hello.ogg"),
    Source("debian.mp3", "forensics-samples-files", f"{FORENSICS}/audio1/debian.mp3"),
    Source("debian.oga", "forensics-samples-files", f"{FORENSICS}/audio1/debian.ogg"),
    Source("phone_photo.jpg", "forensics-samples-files", f"{FORENSICS}/pic2/IMG_20200124_231153.jpg"),
    Source("messenger_photo.jpg", "forensics-samples-files", f"{FORENSICS}/pic1/IMG-20191006-WA0002.jpg"),
    Source("empty.jpg", "forensics-samples-files", f"{FORENSICS}/pic1/empty.jpg"),
    Source("debian.ppm", "forensics-samples-files", f"{FORENSICS}/pic1/debian.ppm"),
    # MPEG-1/2 program stream without sound, an animated GIF, a drum hit
    Source("city.mpg", "python-kivy-examples", f"{KIVY}/widgets/cityCC0.mpg"),
    Source(
        "cv_joint.gif",
        "python-kivy-examples",
        f"{KIVY}/widgets/sequenced_images/data/images/simple_cv_joint_animated.gif",
    ),
    Source("clap.wav", "python-kivy-examples", f"{KIVY}/audio/12908_sweet_trip_mm_clap_hi.wav"),
    Source("newtons_cradle.gif", "python3-imageio", f"{IMAGEIO}/newtonscradle.gif"),
    # stills: 16-bit PNG (PngSuite), CMYK and progressive JPEG, truncated files (Go's image test data)
    Source("gray16.png", "golang-1.19-src", f"{GO_IMAGE}/png/testdata/pngsuite/basn0g16.png"),
    Source("rgb16.png", "golang-1.19-src", f"{GO_IMAGE}/png/testdata/pngsuite/basn2c16.png"),
    Source("rgba16.png", "golang-1.19-src", f"{GO_IMAGE}/png/testdata/pngsuite/basn6a16.png"),
    Source("cmyk.jpeg", "golang-1.19-src", f"{GO_IMAGE}/testdata/video-001.cmyk.jpeg"),
    Source("progressive.jpeg", "golang-1.19-src", f"{GO_IMAGE}/testdata/video-001.progressive.jpeg"),
    Source(
        "progressive_truncated.jpeg",
        "golang-1.19-src",
        f"{GO_IMAGE}/testdata/video-001.progressive.truncated.jpeg",
    ),
    Source("bad_crc.png", "golang-1.19-src", f"{GO_IMAGE}/png/testdata/invalid-crc32.png"),
    Source("paletted_5bpp.gif", "golang-1.19-src", f"{GO_IMAGE}/testdata/video-001.5bpp.gif"),
    # EXIF orientation 1-8 (the imaging library's test photos)
    *(
        Source(
            f"orientation_{k}.jpg",
            "golang-github-disintegration-imaging-dev",
            f"{IMAGING}/orientation_{k}.jpg",
        )
        for k in (1, 3, 6, 8)
    ),
    # WebP, TIFF, BMP (golang.org/x/image's test data)
    Source("rose_lossy.webp", "golang-golang-x-image-dev", f"{X_IMAGE}/yellow_rose.lossy.webp"),
    Source("rose_alpha.webp", "golang-golang-x-image-dev", f"{X_IMAGE}/yellow_rose.lossy-with-alpha.webp"),
    Source("tux_lossless.webp", "golang-golang-x-image-dev", f"{X_IMAGE}/tux.lossless.webp"),
    Source("video16.tiff", "golang-golang-x-image-dev", f"{X_IMAGE}/video-001-16bit.tiff"),
    Source("gopher_g4.tiff", "golang-golang-x-image-dev", f"{X_IMAGE}/bw-gopher_ccittGroup4.tiff"),
    Source("rose.bmp", "golang-golang-x-image-dev", f"{X_IMAGE}/yellow_rose-small.bmp"),
    # instruments: FLAC and Ogg Vorbis samples (LMMS)
    Source("saw.flac", "lmms-common", f"{LMMS}/waveforms/10saw.flac"),
    Source("piano.ogg", "lmms-common", f"{LMMS}/instruments/piano02.ogg"),
    Source("techno_loop.ogg", "lmms-common", f"{LMMS}/bassloops/techno_synth02.ogg"),
    # MIDI: a score, not audio (a kind mmfs refuses)
    Source("middle_c.mid", "pianobooster", f"{PIANO}/01-StartWithMiddleC.mid"),
)


def files_dir(cache: Path | None = None) -> Path:
    """Where the corpus files lie: $MMFS_REALMEDIA/files, or ~/.cache/mmfs/realmedia/files."""
    root = cache or Path(os.environ.get("MMFS_REALMEDIA", DEFAULT_CACHE))
    return root / "files"


def fetch(cache: Path) -> list[str]:
    """Fetch every package not yet unpacked and copy the corpus files; the reasons for what is missing."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return ["apt-get and dpkg are absent: the real-media corpus cannot be fetched here"]
    debs, pkgs, files = cache / "debs", cache / "pkgs", files_dir(cache)
    for d in (debs, pkgs, files):
        d.mkdir(parents=True, exist_ok=True)
    notes = []
    for package in sorted({s.package for s in SOURCES}):
        if (pkgs / package).is_dir():
            continue
        try:
            if next(debs.glob(f"{package}_*.deb"), None) is None:
                subprocess.run(
                    ["apt-get", "download", package], cwd=debs, check=True, capture_output=True, timeout=600
                )
            deb = next(debs.glob(f"{package}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(pkgs / f"{package}.part")], check=True, timeout=600)
            (pkgs / f"{package}.part").rename(pkgs / package)
        except (OSError, subprocess.SubprocessError, StopIteration) as err:
            notes.append(f"{package}: apt-get download failed ({err}); run apt-get update first")
    for s in SOURCES:
        found = pkgs / s.package / s.path
        if found.is_file():
            shutil.copyfile(found, files / s.name)
        elif (pkgs / s.package).is_dir():
            notes.append(f"{s.name}: {s.path} is not in {s.package} (another version of the package?)")
    return notes


def main() -> None:
    """`make realmedia`: fetch into the cache named on the command line (or the default one)."""
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("MMFS_REALMEDIA", DEFAULT_CACHE))
    notes = fetch(cache)
    have = sorted(p.name for p in files_dir(cache).glob("*")) if files_dir(cache).is_dir() else []
    print(f"real-media corpus: {len(have)} of {len(SOURCES)} files in {files_dir(cache)}")
    for note in notes:
        print(f"  left out: {note}")


if __name__ == "__main__":
    main()
