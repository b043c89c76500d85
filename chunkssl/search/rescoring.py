"""Attention rescoring of a CTC n-best with ESPnet's decoder, in one batched teacher-forced pass.

Each hypothesis ``y`` gets ``att = sum_k log p(y_k | y_<k, enc)`` over ``y + <eos>`` from the decoder
fed ``<sos> + y``, and the combined score ``ctc_weight * ctc + (1 - ctc_weight) * att +
length_bonus * len(y)``. The best combined score wins (ties: the earlier, i.e. better-CTC, one).

The attention scores come from the PyTorch decoder (:func:`attention_scores`) unless :func:`rescore` is
given another scorer with the same contract (e.g. the ONNX decoder of :mod:`chunkssl.deploy.onnx_decoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from chunkssl.search.ctc_prefix import Hypothesis


# (encoder frames [T, D], hypotheses, sos, eos) -> attention score of each hypothesis
AttentionScorer = Callable[[torch.Tensor, list[tuple[int, ...]], int, int], list[float]]


@dataclass(frozen=True)
class Rescored:
    """A rescored hypothesis with its parts."""

    tokens: tuple[int, ...]
    score: float
    ctc: float
    att: float


def _shares_memory(decoder: torch.nn.Module) -> bool:
    """True for ESPnet's plain ``TransformerDecoder``, whose layers can project a shared memory once."""
    from espnet2.asr.decoder.transformer_decoder import TransformerDecoder

    return type(decoder) is TransformerDecoder and all(
        getattr(layer, "sequential_attn", None) is None for layer in decoder.decoders)


def _logits_shared_memory(decoder: torch.nn.Module, memory: torch.Tensor, ys_in: torch.Tensor,
                          lens: torch.Tensor) -> torch.Tensor:
    """``TransformerDecoder.forward`` for n hypotheses over one memory, projected once, not n times.

    The n-best shares one segment's encoder output; the plain forward projects its keys and values
    per hypothesis, which costs more than the rest of the decoder on long segments. ESPnet's layers
    offer ``forward_partially_AR`` (without a cache: the teacher-forced layer, with the source
    attention's keys and values computed from the first batch row and expanded).
    """
    steps = ys_in.shape[1]
    causal = torch.ones(steps, steps, dtype=torch.bool, device=ys_in.device).tril()
    mask = (torch.arange(steps, device=ys_in.device)[None, :] < lens[:, None])[:, None, :] & causal
    x = decoder.embed(ys_in)
    for layer in decoder.decoders:  # no memory mask: one unpadded memory
        x, mask, lens, memory, _ = layer.forward_partially_AR(x, mask, lens, memory, None)
    if decoder.normalize_before:
        x = decoder.after_norm(x)
    return decoder.output_layer(x)


@torch.no_grad()
def attention_scores(decoder: torch.nn.Module, enc: torch.Tensor, hyps: list[tuple[int, ...]],
                     sos: int, eos: int) -> list[float]:
    """Decoder log-probability of each ``hyp + <eos>`` given encoder output ``enc [T, D]``."""
    if not hyps:
        return []
    n = len(hyps)
    longest = max(len(h) for h in hyps) + 1
    ys_in = torch.full((n, longest), eos, dtype=torch.long, device=enc.device)
    target = torch.full((n, longest), -1, dtype=torch.long, device=enc.device)
    for i, h in enumerate(hyps):
        seq = torch.tensor(h, dtype=torch.long, device=enc.device)
        ys_in[i, 0] = sos
        ys_in[i, 1:len(h) + 1] = seq
        target[i, :len(h)] = seq
        target[i, len(h)] = eos
    lens = torch.tensor([len(h) + 1 for h in hyps], device=enc.device)
    memory = enc.unsqueeze(0).expand(n, -1, -1)
    if _shares_memory(decoder):
        logits = _logits_shared_memory(decoder, memory, ys_in, lens)
    else:
        mem_lens = torch.full((n,), enc.shape[0], dtype=torch.long, device=enc.device)
        logits, _ = decoder(memory, mem_lens, ys_in, lens)
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    picked = picked.masked_fill(target < 0, 0.0)
    return picked.sum(-1).tolist()


def rescore(decoder: torch.nn.Module | None, enc: torch.Tensor, nbest: list[Hypothesis], sos: int, eos: int,
            ctc_weight: float = 0.3, length_bonus: float = 0.0,
            scorer: AttentionScorer | None = None) -> list[Rescored]:
    """Combine CTC and attention scores of ``nbest``; returns them best first.

    ``scorer`` replaces ``attention_scores(decoder, ...)`` when given (``decoder`` is then unused).
    Without either (CTC-only model) or with ``ctc_weight == 1`` the CTC order is kept.
    """
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
    hyps = [h.tokens for h in nbest]
    if (decoder is None and scorer is None) or ctc_weight == 1.0 or enc.shape[0] == 0:
        att = [0.0] * len(hyps)
        weight = 1.0
    else:
        att = scorer(enc, hyps, sos, eos) if scorer is not None else attention_scores(decoder, enc, hyps, sos, eos)
        weight = ctc_weight
    out = [Rescored(h.tokens, weight * h.score + (1 - weight) * a + length_bonus * len(h.tokens), h.score, a)
           for h, a in zip(nbest, att)]
    order = sorted(range(len(out)), key=lambda i: (-out[i].score, i))
    return [out[i] for i in order]
