"""Cut long documents into chunks that fit the text encoder, counted in its own tokenizer's tokens.

A chunk never holds more than `max_tokens` word pieces of the encoder's tokenizer (special tokens
excluded), so the encoder embeds every chunk whole instead of truncating it. Cuts fall at sentence
starts when one is in the second half of the window, else at a word boundary; consecutive chunks
share `overlap` tokens (snapped forward to a word boundary). Works with any Hugging Face fast
tokenizer (`return_offsets_mapping`); the tokenizer is passed in, so this module loads no model.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from mmfs.errors import ConfigError


def sentence_starts(text: str, sentences: list[str]) -> list[int]:
    """Character offsets in `text` where each (whitespace-collapsed) sentence begins."""
    starts, cursor = [], 0
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        first = text.find(words[0], cursor)
        if first < 0:
            continue
        starts.append(first)
        cursor = first
        for word in words:
            at = text.find(word, cursor)
            if at < 0:
                break
            cursor = at + len(word)
    return starts


def _cut(start: int, limit: int, preferred: list[int], boundaries: list[int]) -> int:
    """Where the chunk from `start` ends: a sentence start past half the window, a word boundary, or hard."""
    for cuts, floor in ((preferred, start + (limit - start) // 2), (boundaries, start)):
        i = bisect.bisect_right(cuts, limit) - 1
        if i >= 0 and cuts[i] > floor:
            return cuts[i]
    return limit


def token_chunks(
    text: str,
    tokenizer: Any,
    *,
    max_tokens: int,
    overlap: int = 0,
    sentences: Callable[[str], list[str]] | None = None,
) -> list[str]:
    """Chunks of `text` of at most `max_tokens` tokenizer tokens each, whitespace collapsed."""
    if max_tokens < 1 or overlap < 0 or overlap >= max_tokens:
        raise ConfigError(f"chunking needs 0 <= overlap < max_tokens, got {overlap} and {max_tokens}")
    enc = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    offsets: list[tuple[int, int]] = list(enc["offset_mapping"])
    n = len(offsets)
    if n == 0:
        return []
    if n <= max_tokens:
        return [" ".join(text.split())]
    words = enc.word_ids()
    boundaries = [k for k in range(1, n) if words[k] != words[k - 1]]
    char_starts = sentence_starts(text, sentences(text)) if sentences is not None else []
    token_starts = [bisect.bisect_left(offsets, (c, -1)) for c in char_starts]
    allowed = set(boundaries)
    preferred = sorted({k for k in token_starts if k in allowed})
    chunks, start = [], 0
    while start < n:
        end = n if start + max_tokens >= n else _cut(start, start + max_tokens, preferred, boundaries)
        chunks.append(" ".join(text[offsets[start][0] : offsets[end - 1][1]].split()))
        if end >= n:
            break
        nxt = end - overlap
        i = bisect.bisect_left(boundaries, nxt)
        nxt = boundaries[i] if i < len(boundaries) else end
        start = nxt if start < nxt <= end else end
    return [c for c in chunks if c]
