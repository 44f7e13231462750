"""Turn a search query (text, an image file or an audio file) into a vector and the column it searches.

The encoder is the one the store's provenance names for that column, so a query is embedded exactly
as the stored vectors were, whatever the current defaults are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmfs.encoders import from_provenance
from mmfs.encoders.base import Encoder
from mmfs.errors import ConfigError
from mmfs.store.db import Store

QUERY_AUDIO_MAX_S = 600.0
_DEFAULTS = {"fused": "text.minilm", "visual": "image.efficientnet_lite0", "audio": "audio.resemblyzer"}


def _provenance(store: Store, column: str) -> dict[str, str]:
    """The provenance of the encoder that made `column`; an error when that encoder was off."""
    info = dict(store.provenance("segments").get(column, {}))
    if info.get("name") == "off":  # written with that encoder switched off: the column holds nulls
        raise ConfigError(f"segments.{column} holds no vectors: the store's runs had its encoder off")
    return info


def _encoder_for(store: Store, column: str) -> Encoder:
    """The loaded encoder that made `column` (name and options from its provenance)."""
    return from_provenance(_provenance(store, column), _DEFAULTS[column])


def query_vector(
    store: Store, *, text: str | None = None, image: Path | None = None, audio: Path | None = None
) -> tuple[np.ndarray, str]:
    """The query's vector and the default segments column for it (fused, visual or audio)."""
    given = [q for q in (text, image, audio) if q is not None]
    if len(given) != 1:
        raise ConfigError("give exactly one of --text, --image or --audio")
    if text is not None:
        info = _provenance(store, "fused")
        name, options = info.get("name", _DEFAULTS["fused"]), json.loads(info.get("options", "{}"))
        if name == "text.minilm" and not options:
            from mmfs.encoders.text_minilm import embed_query  # NumPy: no torch for a text query

            return embed_query(text), "fused"
        return from_provenance(info, _DEFAULTS["fused"]).embed([text])[0], "fused"
    if image is not None:
        from mmfs.transforms.image.pixels import decode_image

        pixels = decode_image(image, short_side=256, max_pixels=8192 * 8192).pixels
        return _encoder_for(store, "visual").embed([pixels])[0], "visual"
    from mmfs.transforms.audio.windows import decode_audio

    assert audio is not None
    clip = decode_audio(audio, sample_rate=16_000, max_duration_s=QUERY_AUDIO_MAX_S)
    return _encoder_for(store, "audio").embed([clip.samples])[0], "audio"
