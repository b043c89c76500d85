"""Group masked prediction loss over FSQ codes.

An FSQ code is one level index per channel (channel ``j`` has ``levels[j]`` levels). Predicting
the whole code with one softmax needs ``prod(levels)`` classes (millions for a high-resolution
FSQ); instead the channels are split into consecutive groups and each group gets its own linear
head and softmax over ``prod(levels of the group)`` classes. A group's class index is the
mixed-radix number of its channels' codes (first channel most significant: the package's one
order, ``chunkssl.fsq.quantizer.codes_to_index``). The loss is the cross-entropy summed over groups
and averaged over masked frames. ``full_softmax=True`` puts all
channels in one group: the plain full-vocabulary softmax, for comparison on small vocabularies.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from chunkssl.fsq.quantizer import codes_to_index


def mixed_radix(codes: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Class index of codes ``[..., C]`` with per-channel radices ``levels`` (first most significant).

    The package's one code-index order: :func:`chunkssl.fsq.quantizer.codes_to_index`, so a group
    target is the FSQ quantizer's group index of the same channels.
    """
    return codes_to_index(codes, levels)


def split_groups(levels: Sequence[int], group_sizes: Optional[Sequence[int]]) -> list[list[int]]:
    """Split the per-channel ``levels`` into consecutive groups of ``group_sizes`` channels."""
    if group_sizes is None:
        group_sizes = [len(levels)]
    if any(g < 1 for g in group_sizes) or sum(group_sizes) != len(levels):
        raise ValueError(f"group_sizes {list(group_sizes)} must be positive and sum to the "
                         f"{len(levels)} FSQ channels (levels {list(levels)})")
    groups, start = [], 0
    for size in group_sizes:
        groups.append(list(levels[start:start + size]))
        start += size
    return groups


class GroupMaskedPredictionLoss(nn.Module):
    """One linear head + softmax per channel group; CE summed over groups, mean over frames.

    Args:
        input_size: encoder output dimension.
        levels: FSQ levels per channel, e.g. ``[8, 8, 8, 5, 5, 5]``.
        group_sizes: channels per group, e.g. ``[3, 3]``; default one group.
        full_softmax: ignore ``group_sizes`` and predict the whole code with one softmax.
    """

    def __init__(self, input_size: int, levels: Sequence[int], group_sizes: Optional[Sequence[int]] = None,
                 full_softmax: bool = False):
        super().__init__()
        if not levels or any(v < 2 for v in levels):
            raise ValueError(f"every FSQ channel needs at least 2 levels, got {list(levels)}")
        self.levels = [int(v) for v in levels]
        self.groups = split_groups(self.levels, None if full_softmax else group_sizes)
        self.group_sizes = [len(g) for g in self.groups]
        self.num_classes = [math.prod(g) for g in self.groups]
        self.heads = nn.ModuleList(nn.Linear(input_size, k) for k in self.num_classes)
        self.register_buffer("_levels", torch.tensor(self.levels), persistent=False)

    def targets(self, codes: torch.Tensor) -> torch.Tensor:
        """Per-group class indices ``[N, G]`` of codes ``[N, C]``; raises on out-of-range codes."""
        codes = codes.long()
        bad = (codes < 0) | (codes >= self._levels)
        if bad.any():
            channel = int(bad.any(0).nonzero()[0])
            raise ValueError(f"FSQ code out of range on channel {channel}: values must lie in "
                             f"0..{self.levels[channel] - 1}; check that the loss's levels match the "
                             f"tokenizer config that produced codes.scp")
        out, start = [], 0
        for group in self.groups:
            out.append(mixed_radix(codes[:, start:start + len(group)], group))
            start += len(group)
        return torch.stack(out, dim=-1)

    def forward(self, hidden: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss over masked frames: ``hidden [N, D]`` encoder outputs, ``codes [N, C]`` targets.

        Returns the loss (sum over groups of the mean CE) and stats: ``acc_g{k}`` per group and
        ``acc`` their mean (per-group accuracy, the fraction of frames whose group class is right).
        """
        targets = self.targets(codes)
        loss = hidden.new_zeros(())
        stats: dict[str, torch.Tensor] = {}
        accs = []
        for k, head in enumerate(self.heads):
            logits = head(hidden)
            loss = loss + F.cross_entropy(logits, targets[:, k], reduction="mean")
            with torch.no_grad():
                acc = (logits.argmax(-1) == targets[:, k]).to(hidden.dtype).mean()
            stats[f"acc_g{k}"] = acc
            accs.append(acc)
        stats["acc"] = torch.stack(accs).mean()
        return loss, stats
