"""Cut long audio into pieces at pauses, so that no offline encoder pass spans a whole recording.

The encoder's masks and attention scores are (T x T) over what it is given: a 10-minute recording
in one pass needs gigabytes (ESPnet's padding mask and the chunk mask included). An utterance
longer than ``max_s`` is cut into pieces of at most ``max_s``: each cut lies in the quietest
0.3 s (lowest mean log energy per 10 ms frame) of the second half of the piece, i.e. at a pause
where there is one. Pieces are decoded one by one and their results joined, as the streaming
decoder joins its segments.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

FRAME_S = 0.01   # energy frames: the fbank shift
QUIET_S = 0.3    # a cut lies in the middle of the quietest stretch this long


def cut_frames(energy: np.ndarray, max_frames: int) -> list[int]:
    """Frame indices ``[0, c1, ..., len(energy)]`` bounding pieces of at most ``max_frames`` frames."""
    if max_frames < 2:
        raise ValueError(f"pieces must be at least 2 frames long, got {max_frames}")
    quiet = max(1, min(int(round(QUIET_S / FRAME_S)), max_frames // 4))
    cuts, start, n = [0], 0, len(energy)
    while n - start > max_frames:
        lo = start + max_frames // 2
        window = energy[lo:start + max_frames]
        smooth = np.convolve(window, np.full(quiet, 1.0 / quiet), mode="valid")
        start = lo + int(np.argmin(smooth)) + quiet // 2
        cuts.append(start)
    return cuts + [n]


def wave_energy(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log energy of every 10 ms frame of a waveform (no copy of the waveform is made)."""
    size = int(round(FRAME_S * sample_rate))
    frames = wave[: len(wave) // size * size].reshape(-1, size)
    energy = np.einsum("ij,ij->i", frames, frames)  # row sums of squares without a squared (or cast) copy
    if len(wave) % size:
        energy = np.append(energy, float(np.dot(wave[len(frames) * size:], wave[len(frames) * size:])))
    return np.log(energy / size + 1e-10)


def wave_pieces(wave: np.ndarray, sample_rate: int, max_s: float | None) -> Iterator[np.ndarray]:
    """The waveform in pieces of at most ``max_s`` seconds cut at pauses (whole when ``max_s`` is None)."""
    if max_s is None or len(wave) <= max_s * sample_rate:
        yield wave
        return
    size = int(round(FRAME_S * sample_rate))
    cuts = cut_frames(wave_energy(wave, sample_rate), int(max_s / FRAME_S))
    for a, b in zip(cuts, cuts[1:]):
        yield wave[a * size:min(b * size, len(wave))]


def feats_pieces(feats: torch.Tensor, max_s: float | None) -> Iterator[torch.Tensor]:
    """Fbank frames ``[T, F]`` in pieces of at most ``max_s`` seconds cut at pauses (mean log-mel energy)."""
    if max_s is None or feats.shape[0] * FRAME_S <= max_s:
        yield feats
        return
    cuts = cut_frames(feats.float().mean(dim=1).numpy(), int(max_s / FRAME_S))
    for a, b in zip(cuts, cuts[1:]):
        yield feats[a:b]
