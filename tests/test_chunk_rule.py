"""The chunk rule (chunkssl.chunking): one frame length, one ms -> frames conversion, None = offline."""

from __future__ import annotations

import pytest
import torch

from chunkssl.chunking import FRAME_MS, RECEPTIVE, chunk_frames, encoder_frames_for, parse_chunk_ms, too_short
from chunkssl.encoder import ChunkConformerEncoder


def test_chunk_frames_counts_40_ms_frames_and_keeps_none():
    assert FRAME_MS == 40
    assert [chunk_frames(ms) for ms in (40, 160, 640, 1280)] == [1, 4, 16, 32]
    assert chunk_frames(None) is None
    for bad in (0, -1, 20, 50, 650):
        with pytest.raises(ValueError, match="multiple of the 40 ms"):
            chunk_frames(bad)


def test_command_line_offline_forms_become_none_once():
    for offline in ("full", "FULL", "none", "inf", "0", "-1", 0, -1, None):
        assert parse_chunk_ms(offline) is None, offline
    assert parse_chunk_ms("640") == 640 and parse_chunk_ms(320) == 320
    with pytest.raises(ValueError):
        parse_chunk_ms("fast")


def test_too_short_is_the_subsampling_limit():
    assert too_short(RECEPTIVE - 1) and not too_short(RECEPTIVE)
    assert all(too_short(n) == (encoder_frames_for(n) == 0) for n in range(40))


def test_chunk_forward_takes_the_chunk_as_an_argument():
    """Same outputs as writing the chunk into the encoder and calling forward; the encoder is left as it was."""
    torch.manual_seed(0)
    enc = ChunkConformerEncoder(80, 32, 4, 48, num_blocks=2, dropout_rate=0.0).eval()
    x, lens = torch.randn(2, 123, 80), torch.tensor([123, 90])
    with torch.no_grad():
        for chunk, left in ((4, 2), (None, None)):
            out, out_lens = enc.chunk_forward(x, lens, chunk, left)
            assert (enc.chunk_size, enc.left_chunks) == (-1, -1)
            enc.chunk_size, enc.left_chunks = (chunk or -1), (-1 if left is None else left)
            ref, ref_lens, _ = enc(x, lens)
            enc.chunk_size, enc.left_chunks = -1, -1
            assert torch.equal(out, ref) and torch.equal(out_lens, ref_lens)
