"""CTC prefix beam search: exact prefix probabilities, chunked = all at once, flat cost per frame."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest
import torch

from chunkssl.search.ctc_prefix import CTCPrefixBeamSearch
from chunkssl.search.rescoring import rescore


def _collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def test_two_frames_by_hand():
    # p(blank)=0.6, p(a)=0.4 in both frames: P("") = .36, P("a") = .4*.4 + .4*.6 + .6*.4 = .64
    lp = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    search = CTCPrefixBeamSearch(beam_size=5)
    search.accept(lp)
    scores = {h.tokens: math.exp(h.score) for h in search.nbest()}
    assert scores[(1,)] == pytest.approx(0.64)
    assert scores[()] == pytest.approx(0.36)
    assert search.best() == (1,)


def test_repeated_token_needs_a_blank():
    lp = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]]).log()
    search = CTCPrefixBeamSearch(beam_size=10)
    search.accept(lp)
    scores = {h.tokens: math.exp(h.score) for h in search.nbest()}
    assert scores[(1, 1)] == pytest.approx(0.9 * 0.8 * 0.9)  # only a-blank-a makes "aa"


def test_matches_brute_force_path_sums():
    gen = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(5, 3, generator=gen) * 2, dim=-1)
    exact: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(3), repeat=5):
        p = sum(float(lp[t, s]) for t, s in enumerate(path))
        key = _collapse(path)
        exact[key] = math.log(math.exp(exact.get(key, -math.inf)) + math.exp(p))
    search = CTCPrefixBeamSearch(beam_size=1000, min_token_logp=-math.inf)  # keeps every prefix: exact
    search.accept(lp)
    got = {h.tokens: h.score for h in search.nbest()}
    assert set(got) == set(exact)
    for key, value in exact.items():
        assert got[key] == pytest.approx(value, abs=1e-9)


def _peaky_log_probs(frames: int, vocab: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(frames, vocab, generator=gen) * 3
    logits[:, 0] += 2.0  # blank-heavy like a trained CTC model
    return torch.log_softmax(logits, dim=-1)


@pytest.mark.parametrize("beam", [1, 4, 10])
def test_chunked_equals_all_at_once(beam):
    lp = _peaky_log_probs(120, 9, seed=beam)
    whole = CTCPrefixBeamSearch(beam)
    whole.accept(lp)
    rng = random.Random(beam)
    pieces = CTCPrefixBeamSearch(beam)
    pos, partials = 0, []
    while pos < lp.shape[0]:
        n = rng.randint(0, 17)
        pieces.accept(lp[pos:pos + n])
        partials.append(pieces.best())
        pos += n
    assert pieces.nbest() == whole.nbest()
    assert pieces.best() == whole.best() and len(whole.best()) > 3
    assert pieces.num_frames == 120
    assert all(len(p) <= len(whole.best()) + 3 for p in partials)


def test_cost_per_chunk_does_not_grow_with_history():
    vocab, chunk = 30, 16
    lp = _peaky_log_probs(chunk * 250, vocab, seed=5)
    search = CTCPrefixBeamSearch(10)
    times = []
    for i in range(250):
        tic = time.perf_counter()
        search.accept(lp[i * chunk:(i + 1) * chunk])
        times.append(time.perf_counter() - tic)
    assert len(search.best()) > 300  # a long history of emitted tokens
    first, last = sorted(times[10:60])[25], sorted(times[-50:])[25]  # medians
    assert last < 2.0 * first, (first, last)


class _FixedDecoder(torch.nn.Module):
    """Decoder double: the next-token distribution is the same at every step."""

    def __init__(self, probs: list[float]):
        super().__init__()
        self.logp = torch.tensor(probs).log()

    def forward(self, memory, mem_lens, ys_in, ys_lens):
        return self.logp.expand(ys_in.shape[0], ys_in.shape[1], -1).clone(), ys_lens


def test_rescoring_combines_scores():
    from chunkssl.search.ctc_prefix import Hypothesis

    # vocab: 0 blank, 1 a, 2 b, 3 sos/eos; decoder likes b
    dec = _FixedDecoder([0.1, 0.1, 0.6, 0.2])
    nbest = [Hypothesis((1,), -1.0), Hypothesis((2,), -1.5)]
    out = rescore(dec, torch.zeros(4, 2), nbest, sos=3, eos=3, ctc_weight=0.3)
    att_a, att_b = math.log(0.1) + math.log(0.2), math.log(0.6) + math.log(0.2)
    assert out[0].tokens == (2,)
    assert out[0].score == pytest.approx(0.3 * -1.5 + 0.7 * att_b)
    assert out[1].score == pytest.approx(0.3 * -1.0 + 0.7 * att_a)
    only_ctc = rescore(dec, torch.zeros(4, 2), nbest, 3, 3, ctc_weight=1.0)
    assert only_ctc[0].tokens == (1,)
    bonus = rescore(None, torch.zeros(4, 2), [Hypothesis((1,), -1.0), Hypothesis((1, 2), -1.2)], 3, 3,
                    ctc_weight=1.0, length_bonus=0.5)
    assert bonus[0].tokens == (1, 2)


def test_rescoring_projects_the_shared_memory_once_with_the_same_scores():
    """The n-best shares one memory: ESPnet's decoder forward and the once-projected path agree."""
    from espnet2.asr.decoder.transformer_decoder import TransformerDecoder

    from chunkssl.search import rescoring

    torch.manual_seed(0)
    dec = TransformerDecoder(vocab_size=12, encoder_output_size=16, attention_heads=2, linear_units=32,
                             num_blocks=2).eval()
    assert rescoring._shares_memory(dec)
    enc = torch.randn(9, 16)
    hyps = [(3, 4, 5), (3, 4), (7,), ()]
    fast = rescoring.attention_scores(dec, enc, hyps, sos=11, eos=11)
    with torch.no_grad():
        ys_in = torch.full((4, 4), 11)
        for i, h in enumerate(hyps):
            ys_in[i, 1:len(h) + 1] = torch.tensor(h, dtype=torch.long)
        lens = torch.tensor([len(h) + 1 for h in hyps])
        logits, _ = dec(enc[None].expand(4, -1, -1), torch.full((4,), 9), ys_in, lens)
        logp = torch.log_softmax(logits, -1)
    for i, h in enumerate(hyps):
        target = list(h) + [11]
        expected = sum(float(logp[i, k, t]) for k, t in enumerate(target))
        assert fast[i] == pytest.approx(expected, abs=1e-4)
