"""The chunk rule: encoder frames, chunk sizes in ms and frames, and dynamic chunk training.

One encoder frame is :data:`FRAME_MS` (40 ms: 10 ms fbank x 4 subsampling, or one 40 ms token); a
chunk is a whole number of them (:func:`chunk_frames`); ``None`` is offline (full context) everywhere
in the library, while command lines and recipes may say ``full`` or 0/-1 (:func:`parse_chunk_ms`).

Dynamic chunk training draws a chunk size and left-chunk limit per batch. The draw for batch ``k``
is a pure function of ``(seed, k)``, and ``k`` is a counter kept as a buffer, so every rank of a
distributed run draws the same chunk for the same step (the ranks step in lockstep) and a resumed
run continues the sequence where it stopped.
"""

from __future__ import annotations

import random
from typing import Optional, Sequence

import torch
from torch import nn

FRAME_MS = 40  # one encoder frame: 10 ms fbank shift x 4 subsampling (or one 40 ms token)

# fbank frames spanned by one encoder frame of the conv2d subsampling (receptive field) and between two;
# fewer than RECEPTIVE fbank frames are too short to give any encoder frame
RECEPTIVE, STRIDE = 7, 4

# words a command line or recipe may use for offline (full context); the library itself uses None
OFFLINE_WORDS = ("full", "none", "inf")


def encoder_frames_for(num_fbank: int) -> int:
    """Encoder frames the conv2d subsampling makes from ``num_fbank`` fbank frames (as offline)."""
    return max(0, ((num_fbank - 1) // 2 - 1) // 2) if num_fbank >= RECEPTIVE else 0


def too_short(num_fbank: int) -> bool:
    """Whether ``num_fbank`` fbank frames are too few for the conv2d subsampling (no encoder frame)."""
    return encoder_frames_for(num_fbank) == 0


def parse_chunk_ms(value: int | str | None) -> int | None:
    """A chunk duration from a command line or recipe: ``full``/``none``/``inf``, 0 or a negative number -> None."""
    if value is None or str(value).strip().lower() in OFFLINE_WORDS:
        return None
    ms = int(value)
    return None if ms <= 0 else ms


def chunk_frames(chunk_ms: int | None) -> int | None:
    """Chunk duration in ms to encoder frames; ``None`` (offline) stays ``None``."""
    if chunk_ms is None:
        return None
    if int(chunk_ms) != chunk_ms or chunk_ms < FRAME_MS or chunk_ms % FRAME_MS:
        raise ValueError(f"chunk size {chunk_ms} ms is not a positive multiple of the {FRAME_MS} ms encoder frame "
                         f"(use e.g. 160, 320, 640, 1280, or 'full')")
    return int(chunk_ms) // FRAME_MS


class ChunkSampler(nn.Module):
    """Chunk size (encoder frames, ``None`` = full context) and left limit drawn per batch.

    Args:
        chunk_sizes_ms: a set of chunk durations to draw from uniformly, or
        chunk_range_ms: ``[min, max]`` durations; a whole number of frames is drawn uniformly.
        full_context_prob: probability of full context (offline) for a batch.
        left_chunks: left-chunk limits to draw from (-1 = unlimited).
        frame_ms: duration of one encoder frame (:data:`FRAME_MS`).
        seed: base of the draws.
        persistent: keep the draw counter in the state dict (resume continues the sequence).
    """

    def __init__(self, chunk_sizes_ms: Optional[Sequence[int]] = None,
                 chunk_range_ms: Optional[Sequence[int]] = None, full_context_prob: float = 0.0,
                 left_chunks: Sequence[int] = (-1,), frame_ms: int = FRAME_MS, seed: int = 0,
                 persistent: bool = True):
        super().__init__()
        if (chunk_sizes_ms is None) == (chunk_range_ms is None):
            raise ValueError("give exactly one of chunk_sizes_ms (a list) or chunk_range_ms ([min, max])")
        if chunk_sizes_ms is not None:
            self.choices = [self._frames(ms, frame_ms) for ms in chunk_sizes_ms]
            if not self.choices:
                raise ValueError("chunk_sizes_ms is empty")
            self.range = None
        else:
            if len(chunk_range_ms) != 2 or chunk_range_ms[0] > chunk_range_ms[1]:
                raise ValueError(f"chunk_range_ms must be [min, max], got {chunk_range_ms}")
            self.choices = None
            self.range = (self._frames(chunk_range_ms[0], frame_ms), self._frames(chunk_range_ms[1], frame_ms))
        if not 0.0 <= full_context_prob <= 1.0:
            raise ValueError(f"full_context_prob must be in [0, 1], got {full_context_prob}")
        if not left_chunks:
            raise ValueError("left_chunks needs at least one value (-1 = unlimited)")
        self.full_context_prob = full_context_prob
        self.left_chunks = [int(v) for v in left_chunks]
        self.seed = seed
        self.register_buffer("num_draws", torch.zeros((), dtype=torch.long), persistent=persistent)

    @staticmethod
    def _frames(ms: float, frame_ms: int) -> int:
        if ms < frame_ms or ms % frame_ms:
            raise ValueError(f"chunk duration {ms} ms is not a positive multiple of the "
                             f"{frame_ms} ms encoder frame")
        return int(ms // frame_ms)

    def draw(self, index: int) -> tuple[Optional[int], Optional[int]]:
        """The ``(chunk_frames or None, left_chunks or None)`` of draw number ``index``."""
        rng = random.Random(f"{self.seed}:{index}")
        full = rng.random() < self.full_context_prob
        if self.choices is not None:
            chunk = rng.choice(self.choices)
        else:
            chunk = rng.randint(*self.range)
        left = rng.choice(self.left_chunks)
        return (None if full else chunk), (None if left < 0 else left)

    def forward(self) -> tuple[Optional[int], Optional[int]]:
        """Draw for the next batch and advance the counter."""
        index = int(self.num_draws)
        self.num_draws += 1
        return self.draw(index)
