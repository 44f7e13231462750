"""Start-up beside decoding: the models a run will likely need load on a thread while items decode.

Without it the first batch waits for its decoding and then for every import and model load, in
series. The guess comes from the items' names (a video needs the image encoder, the label bridge's
text encoder and the audio encoder; a photo the first two; a document the text encoder and spaCy);
a wrong guess costs nothing but time, because every encoder still loads on first use, once. A run
with nothing to do never gets here, so it imports no torch and loads no model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from mmfs.config import PipelineConfig
from mmfs.stages.encode import Enricher
from mmfs.stages.items import PendingItem

log = logging.getLogger(__name__)

# by name only: the bytes decide the kind later (media/kinds.py); this is just what to load early
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".m2ts", ".flv", ".wmv", ".mpg", ".mpeg", ".3gp"}
    | {".ogv"}
)
AUDIO_SUFFIXES = frozenset(
    {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aiff", ".aif", ".amr"}
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


def likely_needs(items: Iterable[PendingItem], cfg: PipelineConfig | None = None) -> set[str]:
    """What the items will likely need: encoders ('image', 'text', 'audio'), 'labels' (the label
    bridge's text encoder, unless image and text share a space) and 'nlp' (spaCy); less what `cfg`
    switches off (a video's audio track, frame labels, the text encoder)."""
    video_audio = cfg is None or cfg.video.audio
    needs: set[str] = set()
    for p in items:
        suffix = p.item.path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            needs |= {"image", "labels", *(["audio"] if video_audio else [])}
        elif suffix in IMAGE_SUFFIXES:
            needs |= {"image", "labels"}
        elif suffix in AUDIO_SUFFIXES:
            needs.add("audio")
        else:
            needs |= {"text", "nlp"}
        if p.item.sidecar is not None or p.item.manifest_text:
            needs |= {"text", "nlp"}
        if needs >= {"image", "labels", "text", "audio", "nlp"}:
            break
    if cfg is not None and not cfg.image.labels:
        needs.discard("labels")
    if cfg is not None and cfg.encoders.text is None:
        needs -= {"text", "labels"}
    return needs


class Warmup:
    """Builds the run's `Enricher` and loads the encoders in `needs` on a daemon thread.

    `enricher()` waits for it and raises what it raised (a ConfigError, missing weights): the run
    then stops as it did when everything loaded before the first item.
    """

    def __init__(self, make: Callable[[], Enricher], needs: set[str]) -> None:
        self._make, self._needs = make, needs
        self._result: Enricher | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._work, name="mmfs-warmup", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        start = time.perf_counter()
        try:
            enricher = self._make()
            load_needed(enricher, self._needs)
            self._result = enricher
        except BaseException as err:  # handed to the encoder's thread by enricher()
            self._error = err
        self.seconds = time.perf_counter() - start
        log.debug("warm-up of %s took %.2f s", sorted(self._needs), self.seconds)

    def enricher(self) -> Enricher:
        """The enricher once built and warmed (waits in short steps, so Ctrl-C is seen)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.1)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def load_needed(enricher: Enricher, needs: set[str]) -> None:
    """Load the encoders (and spaCy) in `needs` through the enricher, as its first batch would."""
    if "image" in needs:
        enricher.encoder("image")
        if enricher.cfg.encoders.video is not None:
            enricher.models.video()
    if "text" in needs or ("labels" in needs and not enricher.meta.shared_space()):
        enricher.encoder("text")
    if "audio" in needs:
        enricher.encoder("audio")
    if "nlp" in needs and enricher.cfg.text.backend != "nltk":
        enricher.analyzer.nlp  # noqa: B018 (the property loads spaCy)
