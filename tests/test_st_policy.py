"""Pure parts of the simultaneous ST policy: chunk schedule, local agreement, word delays."""

from __future__ import annotations

import pytest

from chunkssl.st.policy import (chunk_schedule, common_prefix, encoder_frames_from, fbank_frames_needed,
                                fbank_source_ms, local_agreement, word_delays)


def test_fbank_frames_round_trip():
    # 4n+3 fbank frames give exactly n encoder frames, one frame fewer gives n-1
    for n in range(1, 30):
        f = fbank_frames_needed(n)
        assert encoder_frames_from(f) == n
        assert encoder_frames_from(f - 1) == n - 1
    assert fbank_source_ms(fbank_frames_needed(16)) == 16 * 40 + 45  # 640 ms chunk + conv/window look-ahead


def test_chunk_schedule_hand_checked():
    # 100 fbank frames -> ((99 // 2) - 1) // 2 = 24 encoder frames; chunks of 10 -> 10, 20, final 24
    steps = chunk_schedule(100, 10)
    assert [(s.encoder_frames, s.fbank_frames, s.final) for s in steps] == \
        [(10, 43, False), (20, 83, False), (24, 100, True)]
    assert [s.source_ms for s in steps] == [445.0, 845.0, 1015.0]
    # an exact multiple still ends with one final step, not a duplicate chunk step
    assert [s.encoder_frames for s in chunk_schedule(fbank_frames_needed(20), 10)] == [10, 20]
    assert chunk_schedule(fbank_frames_needed(20), 10)[-1].final
    with pytest.raises(ValueError, match="too few"):
        chunk_schedule(6, 4)


def test_local_agreement_sequences():
    hyps = [[5, 6, 7], [5, 6, 9, 9], [5, 6, 9, 4], [5, 2], [5, 6, 9, 4, 8]]
    committed, prev, history = [], None, []
    for h in hyps:
        committed = local_agreement(committed, prev, h)
        prev = h
        history.append(list(committed))
    # first hypothesis: nothing to agree with; then LCPs [5,6], [5,6,9]; a disagreement inside the
    # committed part ([5,2]) retracts nothing; the last agrees with [5,2] only on [5]
    assert history == [[], [5, 6], [5, 6, 9], [5, 6, 9], [5, 6, 9]]
    assert common_prefix([1, 2, 3], [1, 2]) == [1, 2]
    assert local_agreement([1], [1, 2, 3], [1, 2, 3]) == [1, 2, 3]


def test_word_delays_wait_for_last_piece():
    pieces = {1: "▁le", 2: "▁chat", 3: "on", 4: "▁dort", 5: "."}

    def detok(ids):
        return "".join(pieces[i] for i in ids).replace("▁", " ").strip()

    # "le chaton dort." : "chaton" is complete only with its second piece
    assert word_delays([1, 2, 3, 4, 5], [100, 200, 300, 400, 500], detok) == [100, 300, 500]
    with pytest.raises(ValueError):
        word_delays([1, 2], [100], detok)


def test_wait_k_schedule_hand_checked():
    from chunkssl.st.policy import WaitK

    # k = 2 chunks, 1.5 tokens per chunk: 0, 0, then floor(1.5), floor(3.0), floor(4.5)
    assert [WaitK(2, 1.5).allowed(c) for c in range(5)] == [0, 0, 1, 3, 4]
    assert [WaitK(1).allowed(c) for c in range(4)] == [0, 1, 2, 3]
    # exact multiples are not lost to rounding (50 * 0.58 is 28.999999999999996 in floats)
    assert WaitK(1, 0.58).allowed(50) == 29
    with pytest.raises(ValueError, match="k >= 1"):
        WaitK(0)
    with pytest.raises(ValueError, match="positive"):
        WaitK(2, 0.0)
