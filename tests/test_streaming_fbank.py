"""StreamingFbank: frames equal the offline fbank for any piece sizes, bounded buffer, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from chunkssl.features import fbank
from chunkssl.streaming.fbank import StreamingFbank


pytestmark = pytest.mark.usefixtures("one_thread")


def speechlike(n: int, seed: int) -> np.ndarray:
    """Noise, a tone with a DC offset, and a stretch of digital silence (exercises the log floor)."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal(n)
    t = np.arange(n) / 16000
    x += 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05
    x[n // 3: n // 3 + 900] = 0.0
    return x.astype(np.float32)


def stream(x: np.ndarray, rng: np.random.Generator, max_piece: int = 1600) -> tuple[torch.Tensor, int]:
    """Feed ``x`` in random pieces of 1..max_piece samples; returns the frames and the largest buffer seen."""
    s = StreamingFbank(16000)
    outs, i, worst = [], 0, 0
    while i < len(x):
        k = int(rng.integers(1, max_piece + 1))
        out = s.accept(x[i:i + k])
        assert out.dtype == torch.float32 and out.shape[1] == 80
        outs.append(out)
        worst = max(worst, s.buffered_samples)
        i += k
    outs.append(s.flush())
    assert s.num_samples == 0 and s.buffered_samples == 0  # flush resets
    return torch.cat(outs), worst


@pytest.mark.parametrize("n", [0, 1, 399, 400, 401, 559, 560, 561, 4000, 16000 * 3 + 77])
def test_equals_offline_fbank_for_random_pieces(n):
    rng = np.random.default_rng(n)
    x = speechlike(n, seed=n)
    for _ in range(3):
        got, worst = stream(x, rng)
        assert worst < 400
        if n < 400:
            assert got.shape == (0, 80)  # shorter than one window: no frames, as offline
            continue
        ref = fbank(x, 16000)
        assert got.shape == ref.shape == (1 + (n - 400) // 160, 80)
        assert torch.allclose(got, ref, atol=1e-4, rtol=0), (got - ref).abs().max()


def test_matches_torchaudio_kaldi_defaults_directly():
    """Independent of features.py: torchaudio's Kaldi fbank with the documented settings (snip_edges=True)."""
    x = speechlike(8000, seed=3)
    got, _ = stream(x, np.random.default_rng(0))
    ref = kaldi.fbank(torch.from_numpy(x).unsqueeze(0) * 32768, num_mel_bins=80, frame_length=25.0,
                      frame_shift=10.0, dither=0.0, energy_floor=0.0, sample_frequency=16000.0, snip_edges=True)
    assert torch.allclose(got, ref, atol=1e-4, rtol=0)


def test_frames_are_emitted_as_soon_as_their_window_completes():
    x = speechlike(1000, seed=1)
    s = StreamingFbank()
    assert s.accept(x[:399]).shape[0] == 0
    assert s.accept(x[399:400]).shape[0] == 1  # samples [0, 400) complete frame 0
    assert s.accept(x[400:559]).shape[0] == 0
    assert s.accept(x[559:560]).shape[0] == 1  # frame 1 = [160, 560)
    assert s.accept(x[560:1000]).shape[0] == 2  # frames 2, 3 end at 720 and 880
    assert s.num_frames == 4 and s.buffered_samples == 1000 - 4 * 160
    assert s.accept(np.zeros(0, dtype=np.float32)).shape == (0, 80)


def test_long_stream_keeps_buffer_bounded():
    """About 75 s in 3000 pieces, half of them tiny (1-20 samples): the buffer never holds a full window."""
    rng = np.random.default_rng(7)
    s = StreamingFbank()
    total = frames = worst = 0
    for i in range(3000):
        k = int(rng.integers(1, 21 if i % 2 else 1601))
        piece = (0.1 * rng.standard_normal(k)).astype(np.float32)
        frames += s.accept(piece).shape[0]
        total += k
        worst = max(worst, s.buffered_samples)
    assert total > 16000 * 70
    assert worst < 400
    assert frames == s.num_frames == 1 + (total - 400) // 160


def test_sample_rate_mismatch_and_bad_input_are_refused():
    s = StreamingFbank(16000)
    with pytest.raises(ValueError, match="8000 Hz but .* expects 16000 Hz; resample"):
        s.accept(np.zeros(800, dtype=np.float32), sample_rate=8000)
    assert s.accept(np.zeros(800, dtype=np.float32), sample_rate=16000).shape[0] == 3
    with pytest.raises(ValueError, match="float samples"):
        s.accept(np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError, match="1-D"):
        s.accept(np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        s.accept(np.array([0.0, np.nan], dtype=np.float32))


def test_other_sample_rate_matches_offline_at_that_rate():
    x = speechlike(8000, seed=5)
    s = StreamingFbank(8000)
    got = torch.cat([s.accept(x[i:i + 123]) for i in range(0, len(x), 123)])
    assert torch.allclose(got, fbank(x, 8000), atol=1e-4, rtol=0)
