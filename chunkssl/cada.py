"""Copy-and-append (CADA) layout: base chunks, extended copies, attention permissions, conv windows.

Frames here are encoder frames (after the 4x conv subsampling). With ``T`` frames and chunk size
``C`` the base chunks are B1..BN (``N = ceil(T / C)``, the last one may be shorter). CADA appends
extended chunks E1..E(N-1), where Ei is a copy of B(i+1): the layout is ``[B1..BN, E1..E(N-1)]``.
Running the encoder once on this layout gives, on each Ei, exactly what a separate run on
``[B1..Bi, B(i+1)]`` gives on its last chunk, so every chunk is computed "as if streaming" in one
parallel pass instead of one pass per prefix.

Conventions (0-based in code, 1-based in the docstrings to match the paper):

- ``left_chunks`` is how many previous chunks a chunk may attend to (``None`` or a negative
  number: unlimited). An extended chunk Ei stands for chunk i+1, so the limit is counted from
  i+1: Ei sees B(i+1-L)..Bi and itself, the same chunks B(i+1) sees in a plain chunk-masked run.
- Chunk size ``None``, ``0``, a negative number or ``inf`` means offline: one chunk, no copies,
  full attention.
- Ei carries the positions of B(i+1) so relative positions inside the copy match the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def normalize_chunk_size(chunk_size: int | float | None) -> int | None:
    """Return the chunk size as a positive int, or ``None`` for offline (None/0/negative/inf)."""
    if chunk_size is None or chunk_size <= 0 or (isinstance(chunk_size, float) and math.isinf(chunk_size)):
        return None
    if int(chunk_size) != chunk_size:
        raise ValueError(f"chunk size must be a whole number of frames, got {chunk_size}")
    return int(chunk_size)


def normalize_left_chunks(left_chunks: int | None) -> int | None:
    """Return the left-chunk limit, or ``None`` for unlimited (None or negative)."""
    if left_chunks is None or left_chunks < 0:
        return None
    return int(left_chunks)


def num_chunks(num_frames: int, chunk_size: int | None) -> int:
    """Number of base chunks covering ``num_frames`` frames (at least 1)."""
    chunk_size = normalize_chunk_size(chunk_size)
    if chunk_size is None or num_frames <= chunk_size:
        return 1
    return -(-num_frames // chunk_size)


def layout_source(num_frames: int, chunk_size: int | None, cada: bool = True,
                  device: torch.device | None = None) -> torch.Tensor:
    """Source frame of every layout position: ``[0..T-1]`` then, under CADA, the frames of B2..BN.

    These are also the position ids used by the relative-position attention.
    """
    chunk_size = normalize_chunk_size(chunk_size)
    base = torch.arange(num_frames, device=device)
    if not cada or chunk_size is None or num_frames <= chunk_size:
        return base
    return torch.cat([base, torch.arange(chunk_size, num_frames, device=device)])


def layout_extended(num_frames: int, chunk_size: int | None, cada: bool = True,
                    device: torch.device | None = None) -> torch.Tensor:
    """Boolean per layout position: True on extended-chunk copies."""
    size = layout_source(num_frames, chunk_size, cada, device).numel()
    flags = torch.zeros(size, dtype=torch.bool, device=device)
    flags[num_frames:] = True
    return flags


def layout_chunk(num_frames: int, chunk_size: int | None, cada: bool = True,
                 device: torch.device | None = None) -> torch.Tensor:
    """0-based chunk each layout position stands for (Ei stands for chunk i+1, its source)."""
    chunk_size = normalize_chunk_size(chunk_size)
    source = layout_source(num_frames, chunk_size, cada, device)
    if chunk_size is None:
        return torch.zeros_like(source)
    return source // chunk_size


def permission(chunk: torch.Tensor, extended: torch.Tensor, left_chunks: int | None,
               key_chunk: torch.Tensor | None = None,
               key_extended: torch.Tensor | None = None) -> torch.Tensor:
    """Attention permission ``[Q, K]`` (True = may attend) from per-position chunk ids and flags.

    Base key in chunk j: a base query in chunk i sees it iff ``j <= i``; an extended query standing
    for chunk i sees it iff ``j < i``; both within ``i - j <= left_chunks``. Extended key: only
    queries of the same extended chunk see it. Keys default to the queries (self-attention).
    """
    left_chunks = normalize_left_chunks(left_chunks)
    key_chunk = chunk if key_chunk is None else key_chunk
    key_extended = extended if key_extended is None else key_extended
    qc, qe = chunk[:, None], extended[:, None]
    kc, ke = key_chunk[None, :], key_extended[None, :]
    to_base = (kc < qc) | ((kc == qc) & ~qe)
    if left_chunks is not None:
        to_base = to_base & (qc - kc <= left_chunks)
    to_extended = qe & (kc == qc)
    return torch.where(ke, to_extended, to_base)


def attention_permission(num_frames: int, chunk_size: int | None, left_chunks: int | None = None,
                         cada: bool = True, device: torch.device | None = None) -> torch.Tensor:
    """Permission matrix ``[P, P]`` over the layout (True = query row may attend to key column)."""
    chunk_size = normalize_chunk_size(chunk_size)
    chunk = layout_chunk(num_frames, chunk_size, cada, device)
    extended = layout_extended(num_frames, chunk_size, cada, device)
    return permission(chunk, extended, left_chunks)


def conv_windows(num_frames: int, chunk_size: int | None, half_kernel: int, cada: bool = True,
                 device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Index maps for the chunk-aware depthwise convolution.

    Returns ``(window_index, output_index)``. ``window_index`` is ``[W, half_kernel + C]``: one row
    per chunk (base chunks, then extended ones), holding the layout positions of the
    ``half_kernel`` frames left of the chunk followed by the chunk's own frames, ``-1`` where the
    input is zero (before the start, past the end). Convolving each row with ``half_kernel`` zeros
    appended on the right gives ``C`` outputs per window: a chunk takes left context from earlier
    base frames (for Ei: the tail of Bi and before) and no right context past its own end.
    ``output_index`` ``[P]`` maps each layout position to its output in the flattened ``[W * C]``.
    """
    chunk_size = normalize_chunk_size(chunk_size)
    width = num_frames if chunk_size is None else min(chunk_size, max(num_frames, 1))
    n = num_chunks(num_frames, chunk_size)
    starts = torch.arange(n, device=device) * width
    offsets = torch.arange(-half_kernel, width, device=device)
    frames = starts[:, None] + offsets[None, :]
    base = torch.where((frames >= 0) & (frames < num_frames), frames, -1)
    rows = [base]
    if cada and n > 1:
        ext = base[1:].clone()
        own = ext[:, half_kernel:]
        # the chunk's own frames come from its copy; frames before it stay on the base stream
        ext[:, half_kernel:] = torch.where(own >= 0, own - width + num_frames, -1)
        rows.append(ext)
    window_index = torch.cat(rows)
    # layout position p sits in window row w at column c; its output is flat index w * width + c
    source = layout_source(num_frames, chunk_size, cada, device)
    extended = layout_extended(num_frames, chunk_size, cada, device)
    chunk = source // width
    row = torch.where(extended, n + chunk - 1, chunk)
    output_index = row * width + source - chunk * width
    return window_index, output_index


@dataclass
class Layout:
    """Everything one encoder pass needs about a (batched) layout of ``num_frames`` frames."""

    num_frames: int
    chunk_size: int | None
    left_chunks: int | None
    cada: bool
    source: torch.Tensor        # [P] source frame = position id
    extended: torch.Tensor      # [P] bool
    chunk: torch.Tensor         # [P] chunk each position stands for
    valid: torch.Tensor         # [B, P] bool, False on padding
    attend: torch.Tensor        # [B, P, P] bool permission incl. key padding
    window_index: torch.Tensor  # [W, h + C]
    output_index: torch.Tensor  # [P]

    @property
    def size(self) -> int:
        """Number of layout positions P."""
        return int(self.source.numel())

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The base-frame part ``[B, T, ...]`` of a layout tensor ``[B, P, ...]``."""
        return x[:, : self.num_frames]


def build_layout(lengths: torch.Tensor, chunk_size: int | None, left_chunks: int | None,
                 cada: bool, half_kernel: int, num_frames: int | None = None) -> Layout:
    """Build the layout of a padded batch whose utterances have ``lengths`` encoder frames."""
    device = lengths.device
    num_frames = int(lengths.max()) if num_frames is None else num_frames
    chunk_size = normalize_chunk_size(chunk_size)
    left_chunks = normalize_left_chunks(left_chunks)
    if chunk_size is not None and chunk_size >= num_frames:
        chunk_size = None  # one chunk: identical to offline, and no copies to make
    source = layout_source(num_frames, chunk_size, cada, device)
    extended = layout_extended(num_frames, chunk_size, cada, device)
    chunk = layout_chunk(num_frames, chunk_size, cada, device)
    valid = source[None, :] < lengths[:, None]
    attend = permission(chunk, extended, left_chunks)[None] & valid[:, None, :]
    window_index, output_index = conv_windows(num_frames, chunk_size, half_kernel, cada, device)
    return Layout(num_frames, chunk_size, left_chunks, cada, source, extended, chunk, valid, attend,
                  window_index, output_index)
