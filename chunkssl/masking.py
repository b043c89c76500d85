"""Span masking inside extended chunks.

Spans are drawn over encoder frames (40 ms, aligned with the code frames that are the targets) and
applied to the *input* features of those frames (:func:`input_frame_mask`), before the subsampling.
Each frame of an extended chunk starts a span with probability ``mask_prob``; a span covers
``mask_length`` frames but never crosses the end of its chunk. Under CADA only the copies E1..E(N-1)
are masked (so frames of B2..BN are masked in their copies, never B1); offline (no chunks) the
utterance's own frames are masked, as in ordinary masked prediction. Every utterance gets at
least one span when it has a frame to mask.

``anchor`` frames at the start of each chunk are never masked: the last frame of the clean chunk
before a copy reads their input through the subsampling's look-ahead (conv2d: the first 30 ms of
the next chunk), and every frame of a copy attends to that frame.

The draw for an utterance depends only on ``(seed, step, its own key)``, never on its batch mates
or on the padded batch length, so a distributed run masks an utterance exactly as a single
process would.
"""

from __future__ import annotations

from typing import Optional

import torch

from chunkssl.cada import Layout


def span_mask(length: int, chunk_size: Optional[int], mask_prob: float, mask_length: int,
              generator: torch.Generator, anchor: int = 0) -> torch.Tensor:
    """Boolean ``[length]`` over source frames: the frames to mask in their extended copies."""
    if not 0.0 < mask_prob <= 1.0 or mask_length < 1:
        raise ValueError(f"need 0 < mask_prob <= 1 and mask_length >= 1, got {mask_prob}, {mask_length}")
    frames = torch.arange(length)
    if chunk_size is None:
        offset = frames
        eligible = torch.ones(length, dtype=torch.bool)
    else:
        offset = frames % chunk_size
        # B1 has no copy (a one-chunk utterance gives no targets); anchors are read by the chunk before
        eligible = (frames >= chunk_size) & (offset >= anchor)
    starts = (torch.rand(length, generator=generator) < mask_prob) & eligible
    if not starts.any() and eligible.any():
        candidates = eligible.nonzero().squeeze(1)
        pick = torch.randint(candidates.numel(), (1,), generator=generator)
        starts[candidates[pick]] = True
    return spans_from_starts(starts, offset, mask_length) & eligible


def spans_from_starts(starts: torch.Tensor, offset: torch.Tensor, mask_length: int) -> torch.Tensor:
    """Spans of ``mask_length`` frames from each start, cut at the end of the start's chunk.

    ``offset`` is each frame's index inside its chunk (0 at a chunk start).
    """
    mask = starts.clone()
    for d in range(1, min(mask_length, starts.numel())):
        # frame t is covered by a span started d frames earlier in the same chunk
        mask[d:] |= starts[:-d] & (offset[d:] >= d)
    return mask


def utterance_keys(codes: torch.Tensor, lengths: torch.Tensor) -> list[int]:
    """Deterministic integers identifying utterances by their targets ``codes [B, T, C]`` (mask seeds).

    Computed in one batched step (a single device-to-host copy).
    """
    b, t = codes.shape[:2]
    frames = torch.arange(t, device=codes.device)
    valid = frames[None, :] < lengths[:, None]
    weights = (torch.arange(codes[0].numel(), device=codes.device) % 9973 + 1).view(t, -1)
    sums = (codes.long() * weights * valid[..., None]).sum(dim=(1, 2))
    return [int(s) % (2**31 - 1) * 31 + int(n) for s, n in zip(sums.tolist(), lengths.tolist())]


def batch_span_masks(lengths: torch.Tensor, keys: list[int], chunk_size: Optional[int],
                     mask_prob: float, mask_length: int, seed: int, step: int,
                     anchor: int = 0) -> torch.Tensor:
    """Span masks ``[B, max(lengths)]`` over source frames, one independent draw per utterance."""
    width = int(lengths.max())
    out = torch.zeros(len(keys), width, dtype=torch.bool)
    for b, (length, key) in enumerate(zip(lengths.tolist(), keys)):
        gen = torch.Generator().manual_seed(hash((seed, step, key)) % (2**63))
        out[b, :length] = span_mask(length, chunk_size, mask_prob, mask_length, gen, anchor)
    return out.to(lengths.device)


def input_frame_mask(frame_mask: torch.Tensor, stride: int, num_input_frames: int) -> torch.Tensor:
    """Spread a mask over encoder frames ``[B, T]`` onto input frames ``[B, num_input_frames]``.

    Encoder frame ``t`` owns input frames ``stride * t .. stride * t + stride - 1``; input frames past
    the last encoder frame's own (the tail only its look-ahead reads) stay unmasked.
    """
    spread = frame_mask.repeat_interleave(stride, dim=1)[:, :num_input_frames]
    return torch.nn.functional.pad(spread, (0, num_input_frames - spread.size(1)))


def layout_replace(frame_mask: torch.Tensor, layout: Layout, offline: bool) -> torch.Tensor:
    """Map a source-frame mask ``[B, T]`` onto the layout: the copies, or base frames if offline."""
    where = ~layout.extended if offline else layout.extended
    return frame_mask[:, layout.source] & where[None] & layout.valid
