"""Train/validation splits without copying: a stable hash of `media_id` puts each item in one split.

Every row of one media item lands in the same split, so segments of one video never leak between
train and validation. The hash is keyed blake2b (Python's `hash()` changes per process), mapped to
[0, 1) and cut at the cumulative fractions in the order given; adding items never moves old ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pyarrow as pa

from mmfs.errors import ConfigError

DEFAULT_FRACTIONS: Mapping[str, float] = MappingProxyType({"train": 0.9, "val": 0.1})
Fractions = tuple[tuple[str, float], ...]
_PERSON = b"mmfs.split"  # blake2b personalisation: these hashes mean nothing elsewhere


def check_fractions(split: str, fractions: Mapping[str, float]) -> Fractions:
    """The fractions as ordered pairs; refuses an unknown split, a share <= 0, or a sum other than 1."""
    pairs = tuple((str(name), float(share)) for name, share in fractions.items())
    if split not in dict(pairs):
        raise ConfigError(f"split '{split}' is not one of {[name for name, _ in pairs]}")
    if any(share <= 0 for _, share in pairs):
        raise ConfigError(f"split fractions must be positive: {dict(pairs)}")
    if abs(sum(share for _, share in pairs) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1: {dict(pairs)}")
    return pairs


def unit_hash(media_id: str) -> float:
    """A number in [0, 1) that depends on the media id alone, the same in every process and release."""
    digest = hashlib.blake2b(media_id.encode("utf-8"), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _buckets(units: np.ndarray, fractions: Fractions) -> np.ndarray:
    bounds = np.cumsum([share for _, share in fractions])
    return np.minimum(np.searchsorted(bounds, units, side="right"), len(bounds) - 1)


def split_of(media_id: str, fractions: Fractions) -> str:
    """The split one media item belongs to."""
    index = int(_buckets(np.array([unit_hash(media_id)]), fractions)[0])
    return fractions[index][0]


def split_rows(media_ids: pa.Array | pa.ChunkedArray, split: str, fractions: Fractions) -> np.ndarray:
    """Positions (int64, ascending) of the rows whose media item falls in `split`."""
    if isinstance(media_ids, pa.ChunkedArray):
        media_ids = media_ids.combine_chunks()
    encoded = media_ids.dictionary_encode()  # hash each distinct id once, not once per row
    units = np.array([unit_hash(m) for m in encoded.dictionary.to_pylist()], dtype=np.float64)
    wanted = _buckets(units, fractions) == [name for name, _ in fractions].index(split)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return np.flatnonzero(wanted[codes]).astype(np.int64)
