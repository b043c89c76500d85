"""Masked frames do not leak: input masking before the subsampling, and CADA copies = streaming runs.

The leak test computes, for every group of predicted positions (one CADA copy, or the whole
utterance under full context / without CADA), the gradient of those predictions with respect to
the fbank input, and requires it to be exactly zero on every fbank frame inside a masked span of
that copy. It runs over random lengths, chunk sizes, left limits, kernels, padded batches and
full-context batches, and it is shown to catch the two ways of leaking: masking after the
subsampling (a frame before a span reads 3 of the span's first 4 fbank frames) and masking the
first frame of a copy (the clean last frame of Bi read its first 30 ms through the look-ahead).
"""

from __future__ import annotations

import random

import pytest
import torch

from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.masking import batch_span_masks, layout_replace
from chunkssl.ssl.model import ChunkSSLModel
from chunkssl.streaming.encoder import StreamingEncoder

F = 12  # fbank dims of the test model


def _model(kernel: int, cada: bool = True, mask_input: str = "learned", seed: int = 0,
           dtype: torch.dtype = torch.float64) -> ChunkSSLModel:
    torch.manual_seed(seed)
    enc = ChunkConformerEncoder(F, 16, 2, 24, 2, 0.0, cnn_module_kernel=kernel)
    model = ChunkSSLModel(enc, levels=[5, 5], group_sizes=[2], cada=cada, mask_prob=0.35,
                          mask_length=2, mask_input=mask_input,
                          dynamic_chunk={"chunk_sizes_ms": [80], "full_context_prob": 0.0})
    if model.mask_feat is not None:
        with torch.no_grad():
            model.mask_feat.normal_()  # a trained-looking vector, not the zero init
    return model.to(dtype).eval()


def _groups(model: ChunkSSLModel, layout, replace: torch.Tensor, b: int) -> list[tuple[torch.Tensor, int | None]]:
    """Predicted positions of utterance ``b``, one group per CADA copy (with its chunk) or one in all."""
    pos = replace[b].nonzero().squeeze(1)
    if layout.chunk_size is None or not model.cada:
        return [(pos, None)] if pos.numel() else []
    return [(pos[layout.chunk[pos] == c], int(c)) for c in layout.chunk[pos].unique()]


def _leaks(model: ChunkSSLModel, feats: torch.Tensor, feats_lengths: torch.Tensor, chunk: int | None,
           left: int | None, frame_mask: torch.Tensor | None = None, encode=None,
           gen: torch.Generator | None = None) -> tuple[list[tuple[int, int | None, int]], int]:
    """``(leaks, groups)``: each leak is (utterance, copy chunk, fbank frame) with a non-zero gradient."""
    feats = feats.clone().requires_grad_(True)
    x, lengths = model.encoder.subsample(feats, feats_lengths)
    x = x[:, : int(lengths.max())]
    if frame_mask is None:
        keys = [random.Random(int(n)).randrange(10**9) for n in feats_lengths]
        frame_mask = model.span_masks(lengths, keys, chunk, step=0)
    encode = encode or model.encode_masked
    out, layout, replace = encode(feats, feats_lengths, x, lengths, chunk, left, frame_mask)
    stride = model.encoder.subsampling[0]
    found, groups = [], 0
    for b in range(feats.size(0)):
        for pos, c in _groups(model, layout, replace, b):
            weights = torch.randn(pos.numel(), out.size(-1), generator=gen, dtype=out.dtype)
            (grad,) = torch.autograd.grad((out[b, pos] * weights).sum(), feats, retain_graph=True)
            frames = frame_mask[b].nonzero().squeeze(1)
            if c is not None:
                frames = frames[frames // layout.chunk_size == c]  # the spans of this copy
            fbank = (frames[:, None] * stride + torch.arange(stride)[None]).flatten()
            assert grad[b].abs().sum() > 0  # the predictions do depend on the input
            groups += 1
            found += [(b, c, int(f)) for f in fbank[grad[b, fbank].abs().sum(-1) != 0]]
    return found, groups


def _case(rng: random.Random) -> dict:
    batch = rng.randint(1, 3)
    return {
        "kernel": rng.choice([3, 5, 15]),
        "lengths": [rng.randint(31, 160) for _ in range(batch)],
        "chunk": rng.choice([None, 2, 3, 5, 8]),  # 1 frame: the look-ahead reads all of it, no targets
        "left": rng.choice([None, 0, 1, 2]),
        "cada": rng.random() < 0.8,
        "mask_input": rng.choice(["learned", "noise"]),
    }


@pytest.mark.parametrize("seed", range(12))
def test_no_masked_fbank_frame_reaches_its_own_prediction(seed):
    rng = random.Random(seed)
    case = _case(rng)
    model = _model(case["kernel"], case["cada"], case["mask_input"], seed)
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(case["lengths"])
    feats = torch.randn(len(lengths), int(lengths.max()), F, generator=gen, dtype=torch.float64)
    leaks, groups = _leaks(model, feats, lengths, case["chunk"], case["left"], gen=gen)
    assert groups > 0, case
    assert not leaks, (case, leaks[:5])


def test_the_leak_test_catches_masking_after_the_subsampling():
    """The previous design: clean subsampling, then a mask embedding on the masked copy frames."""
    model = _model(5)
    emb = torch.randn(16, dtype=torch.float64)

    def after_subsampling(feats, feats_lengths, x, lengths, chunk, left, frame_mask):
        layout = model.encoder.layout(lengths, chunk, left, True, x.size(1))
        replace = layout_replace(frame_mask, layout, layout.chunk_size is None)
        h = torch.where(replace.unsqueeze(-1), emb, x[:, layout.source])
        return model.encoder.encode_layout(h, layout), layout, replace

    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([123, 95])
    feats = torch.randn(2, 123, F, generator=gen, dtype=torch.float64)
    x_lengths = model.encoder.subsample(feats, lengths)[1]
    old_masks = batch_span_masks(x_lengths, [3, 4], 4, 0.35, 2, 0, 0)  # no anchor, as before
    leaks, _ = _leaks(model, feats, lengths, 4, None, old_masks, after_subsampling, gen)
    assert leaks  # a frame left of a span carries 3 of its 4 fbank frames
    offline_leaks, _ = _leaks(model, feats, lengths, None, None, None, after_subsampling, gen)
    assert offline_leaks  # the same under full context


def test_a_masked_first_frame_of_a_copy_leaks_through_the_lookahead():
    """Why the first frame of every chunk stays unmasked: Bi's last frame read its first 30 ms."""
    model = _model(5)
    lengths = torch.tensor([83])
    feats = torch.randn(1, 83, F, dtype=torch.float64)
    frames = model.encoder.subsample(feats, lengths)[1]
    mask = torch.zeros(1, int(frames[0]), dtype=torch.bool)
    mask[0, 8:10] = True  # a span at the start of the copy of chunk 3 (chunk size 4)
    leaks, _ = _leaks(model, feats, lengths, 4, None, mask)
    assert {f for _, _, f in leaks} == {32, 33, 34}  # the 3 look-ahead fbank frames of frame 7
    anchored = model.span_masks(frames, [5] * 50, 4, 0)
    assert not anchored[:, ::4].any()


@pytest.mark.parametrize("kernel,chunk,left", [(5, 3, None), (15, 4, 1), (3, 2, 0)])
def test_cada_copy_equals_a_stream_with_masked_chunk_and_clean_history(kernel, chunk, left):
    """Ei = the streaming encoder on [clean B1..Bi, B(i+1) with its spans masked in the fbank]."""
    model = _model(kernel, seed=kernel, dtype=torch.float32)
    gen = torch.Generator().manual_seed(kernel + chunk)
    n_fbank = 4 * 5 * chunk + 6
    feats = torch.randn(1, n_fbank, F, generator=gen)
    lengths = torch.tensor([n_fbank])
    with torch.no_grad():
        x, frames = model.encoder.subsample(feats, lengths)
        frame_mask = model.span_masks(frames, [11], chunk, step=0)
        out, layout, _ = model.encode_masked(feats, lengths, x, frames, chunk, left, frame_mask)
    assert frame_mask.any()
    t = int(frames[0])
    for c in range(1, -(-t // chunk)):
        start, end = c * chunk, min((c + 1) * chunk, t)
        own = torch.zeros_like(frame_mask)
        own[0, start:end] = frame_mask[0, start:end]
        stream_in = model.mask_features(feats, own)[0, : 4 * end + 3]  # B(c+1)'s frames and look-ahead
        stream = StreamingEncoder(model.encoder, chunk, -1 if left is None else left)
        with torch.no_grad():
            got = torch.cat([stream.accept(stream_in), stream.finalize()])
        copy = (layout.extended & (layout.chunk == c)).nonzero().squeeze(1)
        assert got.shape[0] == end
        torch.testing.assert_close(out[0, copy], got[start:end], rtol=1e-4, atol=1e-4)
