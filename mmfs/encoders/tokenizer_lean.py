"""A model's `tokenizer.json` through the `tokenizers` library alone, called as a transformers fast
tokenizer is for token chunking: the same word pieces, offsets and word ids, without importing
transformers (a second of start-up and ~40 MB for a run that chunks documents).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Encoded(dict[str, list[Any]]):
    """`input_ids`, `attention_mask` and `offset_mapping` of one text, and its `word_ids()`."""

    def __init__(self, encoding: Any) -> None:
        super().__init__(
            input_ids=list(encoding.ids),
            attention_mask=list(encoding.attention_mask),
            offset_mapping=list(encoding.offsets),
        )
        self._word_ids: list[int | None] = list(encoding.word_ids)

    def word_ids(self) -> list[int | None]:
        """The word each token belongs to (None for special tokens), as transformers gives it."""
        return list(self._word_ids)


class FastTokenizer:
    """One text at a time, untruncated and unpadded: what `transforms/text/chunking.py` asks of it."""

    def __init__(self, tokenizer_json: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self._tokenizer.no_truncation()  # the file may carry the model's limit; chunking needs every token
        self._tokenizer.no_padding()

    def __call__(
        self,
        text: str,
        *,
        add_special_tokens: bool = True,
        return_offsets_mapping: bool = False,
        truncation: bool = False,
        verbose: bool = True,
    ) -> Encoded:
        """The word pieces of `text` (offsets are always returned; `verbose` has nothing to warn of)."""
        if truncation:
            raise ValueError("FastTokenizer does not truncate: chunking counts every token")
        del return_offsets_mapping, verbose
        return Encoded(self._tokenizer.encode(text, add_special_tokens=add_special_tokens))
