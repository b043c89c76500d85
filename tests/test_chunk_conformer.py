"""Chunk conformer: CADA equals per-prefix runs, base chunks never see the future, ESPnet interface."""

from __future__ import annotations

import random

import pytest
import torch

from chunkssl.cada import num_chunks
from chunkssl.encoder import ChunkConformerEncoder

D = 16


def _encoder(kernel: int, seed: int = 0) -> ChunkConformerEncoder:
    torch.manual_seed(seed)
    enc = ChunkConformerEncoder(input_size=20, output_size=D, attention_heads=2, linear_units=24,
                                num_blocks=2, dropout_rate=0.0, cnn_module_kernel=kernel)
    return enc.to(torch.float64).eval()


def _assert_rel_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-6) -> None:
    err = (actual - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert err <= rel * scale, f"max error {err:.3g} vs scale {scale:.3g}"


# (kernel, chunk, left_chunks, lengths): lengths are never multiples of the chunk for the longest
CASES = [
    (3, 2, None, [13, 8]),
    (3, 5, 1, [23, 17]),
    (15, 3, None, [20, 11]),
    (15, 4, 2, [22, 9]),
    (31, 2, 0, [17, 12]),
    (31, 6, None, [27, 20]),
    (15, 1, 3, [9, 7]),
]


@pytest.mark.parametrize("kernel,chunk,left,lengths", CASES)
def test_cada_equals_prefix_runs_and_plain_chunk_run(kernel, chunk, left, lengths):
    enc = _encoder(kernel, seed=kernel + chunk)
    gen = torch.Generator().manual_seed(len(lengths) * 1000 + chunk)
    lens = torch.tensor(lengths)
    t = max(lengths)
    x = torch.randn(len(lengths), t, D, generator=gen, dtype=torch.float64)
    # the copies' frames: as if subsampled from masked input (some frames differ from x)
    changed = torch.rand(len(lengths), t, 1, generator=gen) < 0.4
    copies = torch.where(changed, torch.randn(x.shape, generator=gen, dtype=torch.float64), x)
    layout = enc.layout(lens, chunk, left, cada=True, num_frames=t)
    with torch.no_grad():
        out, layout = enc.encode(x, lens, chunk, left, True, copies)
        plain, _ = enc.encode(x, lens, chunk, left, False)
        for b, length in enumerate(lengths):
            # base chunks of the CADA pass = a plain chunk-masked pass over the whole utterance
            _assert_rel_close(out[b, :length], plain[b, :length])
            n = num_chunks(length, chunk)
            for c in range(1, n):
                start, end = c * chunk, min((c + 1) * chunk, length)
                ext = (layout.extended & (layout.chunk == c)).nonzero().squeeze(1)[: end - start]
                # separate run on [clean B1..Bc, masked B(c+1)]
                prefix = torch.cat([x[b:b + 1, :start], copies[b:b + 1, start:end]], dim=1)
                sep, _ = enc.encode(prefix, torch.tensor([end]), chunk, left, False)
                _assert_rel_close(out[b, ext], sep[0, start:end])


def test_cada_masking_changes_the_extended_outputs():
    """Guard against a vacuous equivalence: the copies' frames must reach the outputs, and only there."""
    enc = _encoder(15)
    x = torch.randn(1, 12, D, dtype=torch.float64)
    lens = torch.tensor([12])
    with torch.no_grad():
        masked, _ = enc.encode(x, lens, 4, None, True, torch.ones_like(x))
        clean, _ = enc.encode(x, lens, 4, None, True)
    assert torch.equal(masked[:, :12], clean[:, :12])
    assert not torch.allclose(masked[:, 12:], clean[:, 12:])


@pytest.mark.parametrize("kernel,chunk,left", [(3, 3, None), (15, 2, 1), (31, 4, None)])
def test_no_leak_from_future_or_extended_frames(kernel, chunk, left):
    enc = _encoder(kernel)
    lens = torch.tensor([14, 10])
    layout = enc.layout(lens, chunk, left, cada=True)
    h = torch.randn(2, layout.size, D, dtype=torch.float64, requires_grad=True)
    out = enc.encode_layout(h, layout)
    frame_chunk = layout.source // chunk
    weights = torch.randn_like(out)
    for c in range(num_chunks(14, chunk)):
        rows = ~layout.extended & (frame_chunk == c)
        (grad,) = torch.autograd.grad((out[:, rows] * weights[:, rows]).sum(), h, retain_graph=True)
        future = ~layout.extended & (frame_chunk > c)
        assert torch.count_nonzero(grad[:, future]) == 0
        assert torch.count_nonzero(grad[:, layout.extended]) == 0
        assert torch.count_nonzero(grad[0, rows]) > 0  # the test can see a dependence
    # each extended chunk depends on no other extended chunk and on no later base frame
    for c in range(1, num_chunks(14, chunk)):
        rows = layout.extended & (frame_chunk == c)
        (grad,) = torch.autograd.grad((out[:, rows] * weights[:, rows]).sum(), h, retain_graph=True)
        assert torch.count_nonzero(grad[:, layout.extended & (frame_chunk != c)]) == 0
        assert torch.count_nonzero(grad[:, ~layout.extended & (frame_chunk >= c)]) == 0


def test_no_leak_from_later_subsampled_frames_through_encode():
    enc = _encoder(15)
    x = torch.randn(1, 13, D, dtype=torch.float64, requires_grad=True)
    out, _ = enc.encode(x, torch.tensor([13]), 4, None, True)
    (grad,) = torch.autograd.grad(out[0, :8].sum(), x)  # base chunks B1, B2
    assert torch.count_nonzero(grad[0, 8:]) == 0
    assert torch.count_nonzero(grad[0, :8]) > 0


def test_offline_equals_one_big_chunk_and_ignores_padding():
    enc = _encoder(15)
    x = torch.randn(2, 11, D, dtype=torch.float64)
    lens = torch.tensor([11, 7])
    with torch.no_grad():
        full, _ = enc.encode(x, lens, None, None, True)
        big, _ = enc.encode(x, lens, 64, 3, True)
        alone, _ = enc.encode(x[1:, :7], torch.tensor([7]), None, None, True)
    assert full.shape == (2, 11, D)
    _assert_rel_close(big, full)
    _assert_rel_close(full[1, :7], alone[0])


def test_espnet_forward_interface_and_chunk_options():
    random.seed(0)
    enc = _encoder(15)
    feats = torch.randn(2, 70, 20, dtype=torch.float64)
    ilens = torch.tensor([70, 50])
    with torch.no_grad():
        out, olens, states = enc(feats, ilens)
        assert states is None
        assert out.shape == (2, olens.max().item(), D)
        assert olens.tolist() == [16, 11]  # ((T - 1) // 2 - 1) // 2
        enc.chunk_size, enc.left_chunks = 4, 1
        chunked, _, _ = enc(feats, ilens)
    assert not torch.allclose(out[0, :4], chunked[0, :4])
    # under a chunk mask the first chunk does not depend on later features (beyond the
    # subsampling's own 6-frame look-ahead, which reaches frame 4 * 4 + 2 = 18)
    changed = feats.clone()
    changed[:, 19:] += 1.0
    with torch.no_grad():
        again, _, _ = enc(changed, ilens)
    torch.testing.assert_close(again[:, :4], chunked[:, :4], rtol=0, atol=0)


def test_dynamic_chunk_in_training_mode_only_changes_outputs_when_training():
    enc = ChunkConformerEncoder(20, D, 2, 24, 1, 0.0, cnn_module_kernel=3,
                                dynamic_chunk={"chunk_sizes_ms": [80], "left_chunks": [0]})
    assert "chunk_sampler.num_draws" not in enc.state_dict()
    feats = torch.randn(1, 60, 20)
    enc.train()
    trained, _, _ = enc(feats, torch.tensor([60]))
    enc.eval()
    offline, _, _ = enc(feats, torch.tensor([60]))
    assert int(enc.chunk_sampler.num_draws) == 1
    assert not torch.allclose(trained, offline)
