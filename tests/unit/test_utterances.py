"""VAD chunk probabilities into utterances: threshold with hysteresis, gaps merged, short spans dropped,
padding inside the audio, long spans cut at a pause."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mmfs.transforms.audio.utterances import Utterance, UtteranceParams, utterances

CHUNK_S = 0.032  # silero at 16 kHz


def _probs(*spans: tuple[float, float, float], total_s: float) -> np.ndarray:
    """Chunk probabilities: 0.02 everywhere, `p` over each (start_s, end_s, p)."""
    p = np.full(round(total_s / CHUNK_S), 0.02, dtype=np.float32)
    for start, end, value in spans:
        p[round(start / CHUNK_S) : round(end / CHUNK_S)] = value
    return p


def test_no_chunk_over_the_threshold_is_no_utterance() -> None:
    """Music, noise and silence: nothing for the recogniser."""
    p = _probs((1.0, 3.0, 0.45), total_s=10.0)
    assert utterances(p, CHUNK_S, 10.0, UtteranceParams()) == []
    assert utterances(np.zeros(0, np.float32), CHUNK_S, 0.0, UtteranceParams()) == []


def test_spans_are_padded_merged_across_short_gaps_and_short_blips_dropped() -> None:
    p = _probs((1.0, 2.0, 0.9), (2.3, 3.0, 0.8), (5.0, 5.1, 0.95), (7.0, 8.0, 0.7), total_s=9.0)
    got = utterances(p, CHUNK_S, 9.0, UtteranceParams(pad_s=0.2, merge_gap_s=0.5, min_speech_s=0.25))
    want = [(0.8, 3.2), (6.8, 8.2)]
    assert len(got) == len(want)
    for u, (start, end) in zip(got, want, strict=True):  # to within a chunk
        assert u.start_s == pytest.approx(start, abs=CHUNK_S) and u.end_s == pytest.approx(end, abs=CHUNK_S)


def test_hysteresis_keeps_a_dip_inside_speech() -> None:
    """A dip to 0.4 (over threshold - 0.15) does not end speech; a drop to 0.2 does."""
    p = _probs((1.0, 4.0, 0.9), (2.0, 2.5, 0.4), total_s=6.0)
    assert len(utterances(p, CHUNK_S, 6.0, UtteranceParams(merge_gap_s=0.0))) == 1
    p = _probs((1.0, 4.0, 0.9), (2.0, 2.5, 0.2), total_s=6.0)
    assert len(utterances(p, CHUNK_S, 6.0, UtteranceParams(merge_gap_s=0.0))) == 2


def test_padding_stays_inside_the_audio_and_between_neighbours() -> None:
    p = _probs((0.0, 1.0, 0.9), (1.6, 3.0, 0.9), total_s=3.0)
    got = utterances(p, CHUNK_S, 3.0, UtteranceParams(pad_s=0.5, merge_gap_s=0.1))
    assert got[0].start_s == 0.0 and got[-1].end_s == pytest.approx(3.0, abs=CHUNK_S)
    assert got[0].end_s <= got[1].start_s  # the 0.6 s gap is shared, not padded twice
    assert got[0].end_s == pytest.approx(1.3, abs=CHUNK_S)


def test_a_long_span_is_cut_at_its_least_speech_like_chunk() -> None:
    p = _probs((0.0, 50.0, 0.9), (14.0, 14.1, 0.4), total_s=50.0)  # a breath at 14 s
    got = utterances(p, CHUNK_S, 50.0, UtteranceParams(max_s=20.0, pad_s=0.0))
    assert all(u.end_s - u.start_s <= 20.0 + 1e-6 for u in got)
    assert got[0].end_s == pytest.approx(14.0, abs=0.05)
    assert got[0].start_s == 0.0 and got[-1].end_s == pytest.approx(50.0, abs=CHUNK_S)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(got))  # nothing lost


def test_threshold_zero_takes_all_the_audio() -> None:
    """`asr_threshold: 0` decodes everything (cut to the maximum length), whatever the VAD says."""
    p = np.zeros(round(5.0 / CHUNK_S), dtype=np.float32)
    assert utterances(p, CHUNK_S, 5.0, UtteranceParams(threshold=0.0)) == [Utterance(0.0, 5.0)]
