"""Token SpecAugment: time masks and masks over code groups/channels, on per-unit token embeddings.

The token frontend embeds each code unit (an FSQ channel, an FSQ group or an RVQ codebook) separately,
giving ``[B, T', U, E]`` before the units are combined. Two kinds of span are masked, both only in
training and only on valid frames (padded frames are never touched):

- time masks: ``num_time_mask`` spans of ``time_mask_width_range`` token frames (capped at
  ``time_mask_max_ratio`` of the utterance, if set), where every unit is masked;
- group masks: ``num_group_mask`` spans of ``group_mask_width_range`` adjacent units, masked on every
  valid frame of the utterance (the token analogue of frequency masks; with RVQ, a span of codebooks).

A masked unit embedding is replaced by that unit's learned mask embedding (``replace: learned``,
initialised at zero, so at first it equals dropping the unit from a sum) or by zeros
(``replace: zero``). Widths are drawn uniformly from the inclusive range; a width of 0 masks nothing.
"""

from __future__ import annotations

from typing import Sequence

import torch


def span_mask(lengths: torch.Tensor, max_len: int, num_spans: int, width_range: Sequence[int],
              max_ratio: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean ``[B, max_len]``: ``num_spans`` random spans per row, each inside ``[0, lengths[b])``.

    A span's width is drawn from ``width_range`` (inclusive) and cut to the row's length (and to
    ``max_ratio * length`` when given); its start is uniform over the positions where it fits.
    """
    lo, hi = int(width_range[0]), int(width_range[1])
    if lo < 0 or hi < lo:
        raise ValueError(f"mask width range must be 0 <= low <= high, got {list(width_range)}")
    batch = lengths.shape[0]
    mask = torch.zeros(batch, max_len, dtype=torch.bool)
    if num_spans <= 0 or hi == 0 or batch == 0:
        return mask.to(lengths.device)
    lens = lengths.detach().to("cpu", torch.int64).clamp(min=0, max=max_len)
    cap = lens.clone()
    if max_ratio is not None:
        cap = torch.minimum(cap, (lens.double() * max_ratio).floor().to(torch.int64))
    widths = torch.randint(lo, hi + 1, (batch, num_spans), generator=generator)
    widths = torch.minimum(widths, cap.unsqueeze(1))
    room = (lens.unsqueeze(1) - widths + 1).clamp(min=1)
    starts = (torch.rand(batch, num_spans, generator=generator) * room).floor().to(torch.int64)
    pos = torch.arange(max_len)
    for s in range(num_spans):
        mask |= (pos >= starts[:, s:s + 1]) & (pos < (starts[:, s] + widths[:, s]).unsqueeze(1))
    return mask.to(lengths.device)


class TokenSpecAug(torch.nn.Module):
    """Masks over time and over units of per-unit token embeddings ``[B, T', U, E]`` (training only)."""

    def __init__(
        self,
        num_units: int,
        embed_dim: int,
        num_time_mask: int = 2,
        time_mask_width_range: Sequence[int] = (0, 10),
        time_mask_max_ratio: float | None = None,
        num_group_mask: int = 1,
        group_mask_width_range: Sequence[int] = (0, 1),
        replace: str = "learned",
    ):
        super().__init__()
        if replace not in ("learned", "zero"):
            raise ValueError(f"token SpecAugment replace must be 'learned' or 'zero', got {replace!r}")
        if int(group_mask_width_range[1]) > num_units:
            raise ValueError(f"group_mask_width_range {list(group_mask_width_range)} is wider than the "
                             f"{num_units} code units")
        self.num_units = num_units
        self.num_time_mask = num_time_mask
        self.time_mask_width_range = [int(v) for v in time_mask_width_range]
        self.time_mask_max_ratio = time_mask_max_ratio
        self.num_group_mask = num_group_mask
        self.group_mask_width_range = [int(v) for v in group_mask_width_range]
        self.replace = replace
        # Validate ranges now rather than at the first training step.
        span_mask(torch.zeros(0, dtype=torch.int64), 0, 1, self.time_mask_width_range)
        span_mask(torch.zeros(0, dtype=torch.int64), 0, 1, self.group_mask_width_range)
        self.mask_embedding = (torch.nn.Parameter(torch.zeros(num_units, embed_dim)) if replace == "learned"
                               else None)

    def extra_repr(self) -> str:
        return (f"time={self.num_time_mask}x{self.time_mask_width_range}, "
                f"groups={self.num_group_mask}x{self.group_mask_width_range}, replace={self.replace}")

    def reset_parameters(self) -> None:
        """Mask embeddings back to zero."""
        if self.mask_embedding is not None:
            with torch.no_grad():
                self.mask_embedding.zero_()

    def unit_mask(self, lengths: torch.Tensor, max_len: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Boolean ``[B, max_len, U]``: which unit embeddings to mask; always False on padded frames."""
        time = span_mask(lengths, max_len, self.num_time_mask, self.time_mask_width_range,
                         self.time_mask_max_ratio, generator)
        units = span_mask(torch.full_like(lengths, self.num_units), self.num_units, self.num_group_mask,
                          self.group_mask_width_range, None, generator)
        valid = torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
        return (time.unsqueeze(-1) | units.unsqueeze(1)) & valid.unsqueeze(-1)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Masked copy of ``emb [B, T', U, E]`` in training; ``emb`` itself in eval mode."""
        if not self.training:
            return emb
        mask = self.unit_mask(lengths, emb.shape[1], generator).unsqueeze(-1)
        fill = (self.mask_embedding.to(emb.dtype) if self.mask_embedding is not None
                else emb.new_zeros(self.num_units, emb.shape[-1]))
        return torch.where(mask, fill, emb)
