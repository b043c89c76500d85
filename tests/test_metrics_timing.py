"""Timing metrics: RTF, simulated wall clock, CTC token end times, emission times and delays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chunkssl.metrics.timing import (Partial, _viterbi_ctc, emission_delays, emission_times, first_token_latency,
                                     real_time_factor, simulated_wall_clock, summarize, token_end_times)


def test_real_time_factor():
    assert real_time_factor(2.0, 10.0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="positive"):
        real_time_factor(1.0, 0.0)


def test_simulated_wall_clock_queues_slow_chunks():
    # Chunk 2 takes longer than a chunk lasts, so chunk 3 waits for it instead of its own arrival.
    ready = simulated_wall_clock([0.64, 1.28, 1.92], [0.10, 0.80, 0.10])
    assert ready == pytest.approx([0.74, 2.08, 2.18])
    with pytest.raises(ValueError):
        simulated_wall_clock([1.0], [])


def peaked(labels: list[int], vocab: int = 4) -> torch.Tensor:
    """CTC log-posteriors whose best path is exactly ``labels`` (one label per frame)."""
    logits = torch.full((len(labels), vocab), -4.0)
    logits[torch.arange(len(labels)), torch.tensor(labels)] = 4.0
    return logits.log_softmax(-1)


def test_token_end_times_on_hand_made_alignment():
    # frames:   0  1  2  3  4  5  6  7  8
    path = [0, 1, 1, 0, 2, 0, 2, 3, 0]
    ends = token_end_times(peaked(path), [1, 2, 2, 3], frame_shift_s=0.04)
    # token 1 last at frame 2, the two 2s at frames 4 and 6, token 3 at frame 7; end = (frame + 1) * shift
    assert ends == pytest.approx([0.12, 0.20, 0.28, 0.32])
    assert token_end_times(peaked(path), [], 0.04) == []


def test_own_viterbi_matches_torchaudio_forced_align():
    from torchaudio.functional import forced_align

    g = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(60):
        T = int(torch.randint(2, 25, (1,), generator=g))
        lp = torch.randn(T, 6, generator=g).log_softmax(-1)
        toks = torch.randint(1, 6, (int(torch.randint(1, T, (1,), generator=g)),), generator=g).tolist()
        if len(toks) + sum(a == b for a, b in zip(toks, toks[1:])) > T:
            continue
        ours = _viterbi_ctc(lp.double().numpy(), toks, blank=0)
        theirs, _ = forced_align(lp.unsqueeze(0), torch.tensor([toks], dtype=torch.int32), blank=0)
        assert np.array_equal(ours, theirs[0].numpy()), (toks, ours, theirs)
        checked += 1
    assert checked >= 20
    # and the hand-made path
    assert _viterbi_ctc(peaked([0, 1, 1, 0, 2, 0, 2, 3, 0]).double().numpy(), [1, 2, 2, 3], 0).tolist() == \
        [0, 1, 1, 0, 2, 0, 2, 3, 0]


def test_token_end_times_rejects_impossible_inputs():
    with pytest.raises(ValueError, match="need at least 3 CTC frames"):
        token_end_times(peaked([1, 1]), [1, 1], 0.04)  # a repeated token needs a blank between
    with pytest.raises(ValueError, match="blank"):
        token_end_times(peaked([0, 1, 0]), [0, 1], 0.04)
    with pytest.raises(ValueError, match="vocabulary"):
        token_end_times(peaked([0, 1, 0]), [7], 0.04)
    with pytest.raises(ValueError, match=r"\[T, V\]"):
        token_end_times(torch.zeros(1, 3, 4), [1], 0.04)


def P(tokens: str, audio: float, wall: float) -> Partial:
    return Partial(tuple(tokens.split()), audio, wall)


def test_emission_times_wait_until_a_token_is_stable():
    partials = [P("a", 0.64, 0.70), P("a b", 1.28, 1.35), P("a c", 1.92, 2.00), P("a c d", 2.56, 2.61)]
    final = P("a c d e", 2.80, 2.90)
    # "b" was shown then replaced, so "c" counts from the partial where it first stayed.
    assert emission_times(partials, final, "wall") == pytest.approx([0.70, 2.00, 2.61, 2.90])
    assert emission_times(partials, final, "audio") == pytest.approx([0.64, 1.92, 2.56, 2.80])
    # A token withdrawn and shown again counts from its last appearance.
    flicker = [P("a", 0.5, 0.5), P("", 1.0, 1.0), P("a", 1.5, 1.5)]
    assert emission_times(flicker, P("a", 2.0, 2.0)) == pytest.approx([1.5])
    # A token at a different position does not count until it sits where the final result has it.
    shifted = [P("x", 0.5, 0.5), P("x y", 1.0, 1.0)]
    assert emission_times(shifted, P("y", 2.0, 2.0)) == pytest.approx([2.0])
    assert emission_times([], P("", 1.0, 1.0)) == []


def test_delays_and_first_token_latency():
    partials = [P("a", 0.64, 0.70), P("a b", 1.28, 1.35)]
    final = P("a b", 1.50, 1.60)
    emitted = emission_times(partials, final)
    assert emission_delays(emitted, [0.40, 1.00]) == pytest.approx([0.30, 0.35])
    assert first_token_latency(partials, final) == pytest.approx(0.70)
    assert first_token_latency(partials, final, clock="audio") == pytest.approx(0.64)
    assert first_token_latency([P("a", 0.5, 0.5)], P("", 1.0, 1.0)) is None
    with pytest.raises(ValueError, match="token end times"):
        emission_delays(emitted, [0.4])
    with pytest.raises(ValueError, match="time order"):
        emission_times([P("a", 2.0, 2.0)], P("a", 1.0, 1.0))


def test_summarize():
    s = summarize([0.1, 0.2, 0.3, 0.4])
    assert s["count"] == 4 and s["mean"] == pytest.approx(0.25) and s["median"] == pytest.approx(0.25)
    assert s["p90"] == pytest.approx(0.37)
    assert summarize([])["mean"] is None


def test_token_end_times_without_torchaudio_forced_align(monkeypatch):
    import torchaudio.functional

    monkeypatch.delattr(torchaudio.functional, "forced_align")
    ends = token_end_times(peaked([0, 1, 1, 0, 2, 0, 2, 3, 0]), [1, 2, 2, 3], frame_shift_s=0.04)
    assert ends == pytest.approx([0.12, 0.20, 0.28, 0.32])


def _emission_by_definition(seq: list[tuple], final: tuple) -> list[int]:
    """Index of the result at which each final token is emitted, straight from the definition."""
    out = []
    for k in range(1, len(final) + 1):
        out.append(next(j for j in range(len(seq) + 1)
                        if all(tuple(r[:k]) == tuple(final[:k]) for r in [*seq[j:], final])))
    return out


def test_emission_clock_matches_the_definition_and_runs_per_segment():
    from chunkssl.metrics.timing import EmissionClock

    rng = np.random.default_rng(0)
    for _ in range(200):
        seq = [tuple(rng.integers(1, 3, size=int(rng.integers(0, 5)))) for _ in range(int(rng.integers(0, 8)))]
        final = tuple(rng.integers(1, 3, size=int(rng.integers(0, 5))))
        times = [float(i) for i in range(len(seq) + 1)]
        got = emission_times([Partial(t, 0.0, w) for t, w in zip(seq, times)], Partial(final, 0.0, times[-1]))
        assert got == [times[j] for j in _emission_by_definition(seq, final)], (seq, final)
    # a segmented stream: partials hold their segment, a segment event its committed tokens; one clock
    # per segment gives what the definition gives on the whole-utterance hypotheses
    for _ in range(100):
        committed, whole, clock, per_segment, t = (), [], EmissionClock(), [], 0.0
        for _ in range(int(rng.integers(1, 4))):
            for _ in range(int(rng.integers(0, 5))):
                part = tuple(rng.integers(1, 3, size=int(rng.integers(0, 4))))
                t += 1
                clock.update(part, t)
                whole.append((committed + part, t))
            seg = tuple(rng.integers(1, 3, size=int(rng.integers(0, 4))))
            t += 1
            per_segment += clock.finish(seg, t)
            committed += seg
            whole.append((committed, t))  # the partial after a commit: the new segment is empty
        assert per_segment == emission_times([Partial(h, 0.0, w) for h, w in whole[:-1]],
                                             Partial(committed, 0.0, t))
