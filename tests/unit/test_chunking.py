"""Token-exact chunking: each chunk fits MiniLM's tokenizer limit, cut at sentences, with overlap."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from mmfs.errors import ConfigError
from mmfs.transforms.text.chunking import sentence_starts, token_chunks


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from mmfs.encoders.text_minilm import MiniLMTextEncoder

    return MiniLMTextEncoder(device="cpu").tokenizer()


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _sentences(text: str) -> list[str]:
    return [s.strip() + "." for s in text.split(".") if s.strip()]


DOC = " ".join(
    f"Sentence {i} describes the extraordinarily unpredictable weather of Reykjavík in detail."
    for i in range(80)
)


def test_every_chunk_fits_and_ends_on_a_sentence(tokenizer: Any) -> None:
    chunks = token_chunks(DOC, tokenizer, max_tokens=60, sentences=_sentences)
    assert len(chunks) > 10
    assert all(_count(tokenizer, c) <= 60 for c in chunks)
    assert all(c.endswith(".") and c.startswith("Sentence") for c in chunks)
    assert " ".join(chunks) == DOC  # no overlap: the chunks are the document, in order


def test_overlap_repeats_the_tail_of_the_previous_chunk(tokenizer: Any) -> None:
    chunks = token_chunks(DOC, tokenizer, max_tokens=60, overlap=10, sentences=_sentences)
    assert all(_count(tokenizer, c) <= 60 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        head = after.split()[0:2]
        assert " ".join(head) in before[-80:]  # the next chunk starts inside the previous one's tail


def test_a_long_run_without_sentences_is_cut_at_word_boundaries(tokenizer: Any) -> None:
    text = "antidisestablishmentarianism " * 200
    chunks = token_chunks(text, tokenizer, max_tokens=50)
    assert all(_count(tokenizer, c) <= 50 for c in chunks)
    assert all(set(c.split()) == {"antidisestablishmentarianism"} for c in chunks)
    assert sum(len(c.split()) for c in chunks) == 200


def test_short_text_is_one_chunk_and_blank_text_none(tokenizer: Any) -> None:
    assert token_chunks("  Owls hunt\nat night. ", tokenizer, max_tokens=50) == ["Owls hunt at night."]
    assert token_chunks(" \n ", tokenizer, max_tokens=50) == []


def test_bad_overlap_is_a_config_error(tokenizer: Any) -> None:
    with pytest.raises(ConfigError, match="overlap"):
        token_chunks(DOC, tokenizer, max_tokens=10, overlap=10)


def test_sentence_starts_are_character_offsets() -> None:
    text = "First  one.\nSecond\tone here. Third."
    starts = sentence_starts(text, ["First one.", "Second one here.", "Third."])
    assert [text[s : s + 5] for s in starts] == ["First", "Secon", "Third"]


def test_the_lean_tokenizer_matches_transformers(tokenizer: Any) -> None:
    """The chunker's tokenizer (tokenizers alone) gives transformers' word pieces, offsets and words."""
    from transformers import AutoTokenizer

    from mmfs.encoders.text_minilm import MiniLMTextEncoder

    reference = AutoTokenizer.from_pretrained(str(MiniLMTextEncoder().model_dir()), local_files_only=True)
    texts = [DOC, "", "  Müller's naïve café, 東京 — don't e-mail U.S.A. at 12:30\tnow\n", "x " * 600]
    for text in texts:
        ours = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        theirs = reference(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        assert ours["input_ids"] == theirs["input_ids"]
        assert ours["offset_mapping"] == list(theirs["offset_mapping"])
        assert ours.word_ids() == theirs.word_ids()
    assert tokenizer("a b")["input_ids"] != tokenizer("a b", add_special_tokens=False)["input_ids"]
