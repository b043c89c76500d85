"""Cached streaming encoder equals the offline chunk-masked forward; its caches stay bounded."""

from __future__ import annotations

import random

import pytest
import torch

from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.streaming.encoder import StreamingEncoder, encoder_frames_for


pytestmark = pytest.mark.usefixtures("one_thread")


def _encoder(kernel: int = 15, seed: int = 0, channels: int | None = None) -> ChunkConformerEncoder:
    torch.manual_seed(seed)
    enc = ChunkConformerEncoder(input_size=80, output_size=32, attention_heads=4, linear_units=48,
                                num_blocks=2, dropout_rate=0.0, cnn_module_kernel=kernel,
                                subsampling_channels=channels)
    return enc.eval()


def _offline(enc: ChunkConformerEncoder, feats: torch.Tensor, chunk: int, left: int) -> torch.Tensor:
    enc.chunk_size, enc.left_chunks = chunk, left
    with torch.no_grad():
        out, lens, _ = enc(feats[None], torch.tensor([feats.shape[0]]))
    return out[0, : int(lens[0])]


def _stream(enc: ChunkConformerEncoder, feats: torch.Tensor, chunk: int, left: int,
            rng: random.Random) -> torch.Tensor:
    stream = StreamingEncoder(enc, chunk, left)
    outs, pos = [], 0
    while pos < feats.shape[0]:
        n = rng.randint(1, 30)  # uneven pieces, like audio arriving in 10-300 ms bits
        outs.append(stream.accept(feats[pos:pos + n]))
        pos += n
    outs.append(stream.finalize())
    return torch.cat(outs)


@pytest.mark.parametrize("kernel,chunk,left", [(15, 4, -1), (15, 3, 2), (5, 1, 3), (31, 16, 1), (15, 8, 0)])
def test_streaming_equals_offline_chunk_masked_forward(kernel, chunk, left):
    enc = _encoder(kernel, seed=kernel + chunk)
    rng = random.Random(chunk * 100 + kernel)
    gen = torch.Generator().manual_seed(kernel)
    # random lengths, including utterances shorter than one chunk and exact multiples
    lengths = [rng.randint(7, 300) for _ in range(4)] + [4 * chunk + 3, 7, 4 * chunk * 3 + 3]
    for t in lengths:
        feats = torch.randn(t, 80, generator=gen)
        expected = _offline(enc, feats, chunk, left)
        got = _stream(enc, feats, chunk, left, rng)
        assert got.shape == expected.shape == (encoder_frames_for(t), 32), t
        assert (got - expected).abs().max().item() < 1e-5, t


def test_narrow_subsampling_streams_like_its_chunk_masked_forward():
    enc = _encoder(15, seed=3, channels=8)
    wide = _encoder(15, seed=3)
    assert enc.embed.conv[0].out_channels == 8 and enc.subsampling == (4, 7)
    assert sum(p.numel() for p in enc.parameters()) < sum(p.numel() for p in wide.parameters())
    rng, gen = random.Random(5), torch.Generator().manual_seed(5)
    for t in (7, 19, 123, 250):
        feats = torch.randn(t, 80, generator=gen)
        expected = _offline(enc, feats, 4, 2)
        got = _stream(enc, feats, 4, 2, rng)
        assert got.shape == expected.shape == (encoder_frames_for(t), 32), t
        assert (got - expected).abs().max().item() < 1e-5, t


def test_too_short_for_subsampling_gives_no_frames():
    enc = _encoder()
    stream = StreamingEncoder(enc, 4, -1)
    assert stream.accept(torch.randn(6, 80)).shape == (0, 32)
    assert stream.finalize().shape == (0, 32)


def test_caches_are_bounded_with_a_left_limit():
    enc = _encoder(15)
    chunk, left = 4, 2
    stream = StreamingEncoder(enc, chunk, left)
    sizes = []
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):  # 60 pieces of 40 fbank frames = 24 s of features
        stream.accept(torch.randn(40, 80, generator=gen))
        sizes.append(stream.cache_sizes())
    assert all(s["kv"] == sizes[-1]["kv"] and s["conv"] == 7 for s in sizes[10:])
    assert sizes[-1]["kv"] == left * chunk and sizes[-1]["conv"] == 7
    assert sizes[-1]["fbank"] < 7 and sizes[-1]["pending"] < chunk
    assert stream.num_encoded == encoder_frames_for(60 * 40) // chunk * chunk
    unlimited = StreamingEncoder(enc, chunk, -1)
    for _ in range(10):
        unlimited.accept(torch.randn(40, 80, generator=gen))
    assert unlimited.cache_sizes()["kv"] == unlimited.num_encoded  # unlimited context keeps everything


@pytest.mark.parametrize("frames", [1, 5, 16])
def test_depthwise_step_equals_the_conv(frames):
    """The streaming tap sum gives the depthwise conv's output on one left-context + chunk window."""
    from chunkssl.encoder.convolution import ChunkConvolutionModule

    torch.manual_seed(frames)
    conv = ChunkConvolutionModule(32, 15).eval()
    window = torch.randn(1, conv.half_kernel + frames, 32)
    with torch.no_grad():
        assert torch.allclose(conv.depthwise_step(window), conv.depthwise(window), atol=1e-5)
