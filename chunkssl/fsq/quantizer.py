"""Finite scalar quantization (FSQ): per-channel level grids, straight-through rounding, code indices.

Each channel ``j`` is squashed by tanh onto ``[0, L_j - 1]`` and rounded to an integer code
``c_j in {0, ..., L_j - 1}``; the value passed on is ``2 c_j / (L_j - 1) - 1``, so quantized values
lie on a uniform grid of ``L_j`` points in ``[-1, 1]``. Channels may be split into groups; a group's
index and the joint index over all channels are mixed-radix numbers computed in int64, so a
vocabulary of hundreds of millions (or billions) of entries is never materialised.

One digit order for every code index in the package: the first channel is the most significant
(:func:`codes_to_index`; the SSL loss's group targets, the token frontend's group tables and the
analysis counts all use it). It is the order the SSL loss heads of stored checkpoints were trained
with; stored codes (``codes.scp``) hold per-channel codes, not indices, so they do not depend on it.

FSQ and RVQ (``chunkssl.fsq.rvq``) share one interface: ``quantizer(z, mask=None)`` returns a
:class:`QuantizerOutput` (values, codes, commit), and both have ``levels``, ``groups``, ``dim``,
``joint_index`` and ``decode``.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple, Optional, Sequence

import torch

INT64_MAX = 2**63 - 1

#: Named level presets. Each is a list of groups; each group a list of per-channel levels.
PRESETS: dict[str, list[list[int]]] = {
    "1k": [[8, 5, 5, 5]],  # 1,000
    "64k": [[8, 8, 8, 5, 5, 5]],  # 64,000
    "6m": [[7] * 8],  # 5,764,801
    "791m": [[9, 5, 5, 5, 5, 5], [9, 5, 5, 5, 5, 5]],  # 28,125 ** 2 = 791,015,625
}


class QuantizerOutput(NamedTuple):
    """What a quantizer returns: values (straight-through), int64 codes ``[..., channels]``, commitment loss."""

    values: torch.Tensor
    codes: torch.Tensor
    commit: Optional[torch.Tensor] = None  # None for FSQ (nothing to commit to)


class LevelsError(ValueError):
    """An FSQ level configuration that cannot be used (empty, a level < 2, vocabulary past int64)."""


def _product(values: Sequence[int]) -> int:
    result = 1
    for v in values:
        result *= int(v)
    return result


def resolve_levels(spec: str | Sequence[int] | Sequence[Sequence[int]]) -> list[list[int]]:
    """Turn a preset name, a flat level list (one group) or a list of groups into validated groups."""
    if isinstance(spec, str):
        key = spec.lower()
        if key not in PRESETS:
            raise LevelsError(f"unknown FSQ preset {spec!r}; use one of {sorted(PRESETS)} or a list of levels")
        spec = PRESETS[key]
    if spec is None or len(spec) == 0:
        raise LevelsError("FSQ levels are empty; give at least one level per channel, e.g. [8, 5, 5, 5]")
    if all(isinstance(g, (list, tuple)) for g in spec):
        groups = [list(g) for g in spec]
    elif any(isinstance(g, (list, tuple)) for g in spec):
        raise LevelsError(f"FSQ levels {spec!r} mix numbers and lists; give a flat list or a list of groups")
    else:
        groups = [list(spec)]
    for gi, group in enumerate(groups):
        if len(group) == 0:
            raise LevelsError(f"FSQ level group {gi} is empty; every group needs at least one channel")
        for level in group:
            if isinstance(level, bool) or not isinstance(level, numbers.Integral) or level < 2:
                raise LevelsError(
                    f"FSQ level {level!r} in group {gi} is invalid; every level must be an integer >= 2 "
                    f"(a channel with one level carries no information)"
                )
    groups = [[int(level) for level in group] for group in groups]
    vocab = _product(level for group in groups for level in group)
    if vocab - 1 > INT64_MAX:
        raise LevelsError(
            f"FSQ levels {groups} give a joint vocabulary of {vocab:,}, past int64 (max index {INT64_MAX:,}); "
            f"use fewer channels or fewer levels"
        )
    return groups


def mixed_radix_basis(levels: Sequence[int]) -> list[int]:
    """Place values of a mixed-radix number whose first channel is the most significant."""
    basis, place = [], 1
    for level in reversed(levels):
        basis.append(place)
        place *= int(level)
    return basis[::-1]


def codes_to_index(codes: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Mixed-radix int64 index of integer codes ``[..., len(levels)]`` (first channel most significant)."""
    if codes.shape[-1] != len(levels):
        raise ValueError(f"codes have {codes.shape[-1]} channels but {len(levels)} levels are configured")
    basis = torch.tensor(mixed_radix_basis(levels), dtype=torch.int64, device=codes.device)
    return (codes.to(torch.int64) * basis).sum(dim=-1)


def index_to_codes(index: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`codes_to_index`: int64 index ``[...]`` to codes ``[..., len(levels)]``."""
    index = index.to(torch.int64)
    basis = torch.tensor(mixed_radix_basis(levels), dtype=torch.int64, device=index.device)
    lv = torch.tensor([int(v) for v in levels], dtype=torch.int64, device=index.device)
    return torch.div(index.unsqueeze(-1), basis, rounding_mode="floor") % lv


class FSQ(torch.nn.Module):
    """Finite scalar quantizer over the last axis; the levels (and channel groups) are configuration."""

    def __init__(self, levels: str | Sequence[int] | Sequence[Sequence[int]]):
        super().__init__()
        self.groups = resolve_levels(levels)
        self.levels = [level for group in self.groups for level in group]
        bounds, start = [], 0
        for group in self.groups:
            bounds.append((start, start + len(group)))
            start += len(group)
        self.group_bounds = bounds
        # Buffers so the grid follows the module's device; not saved (they are pure configuration).
        self.register_buffer("_half_range", torch.tensor([(v - 1) / 2 for v in self.levels]), persistent=False)

    @property
    def dim(self) -> int:
        """Number of channels the quantizer expects on the last axis."""
        return len(self.levels)

    @property
    def group_vocab_sizes(self) -> list[int]:
        """Number of distinct codes of each group."""
        return [_product(g) for g in self.groups]

    @property
    def vocab_size(self) -> int:
        """Number of distinct joint codes over all channels."""
        return _product(self.levels)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, vocab_size={self.vocab_size:,}"

    def forward(self, z: torch.Tensor, mask: Optional[torch.Tensor] = None) -> QuantizerOutput:
        """Quantize ``z [..., dim]``: values on the level grid with a straight-through gradient, int64
        codes in ``[0, L_j - 1]``, commit None. ``mask`` (RVQ's training mask) changes nothing here."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects {self.dim} channels on the last axis, got {z.shape[-1]}")
        half = self._half_range.to(z.dtype)
        scaled = (torch.tanh(z) + 1.0) * half  # in (0, L-1)
        rounded = torch.round(scaled)
        # Straight-through: forward uses the rounded value, backward sees the identity.
        quant = scaled + (rounded - scaled).detach()
        codes = rounded.detach().to(torch.int64)
        return QuantizerOutput(quant / half - 1.0, codes, None)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantized vectors of integer codes ``[..., dim]`` (as :meth:`codes_to_values`, float32)."""
        return self.codes_to_values(codes)

    def codes_to_values(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Grid values in ``[-1, 1]`` of integer codes ``[..., dim]`` (what the decoder receives)."""
        half = self._half_range.to(dtype)
        return codes.to(dtype) / half - 1.0

    def group_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Per-group int64 indices ``[..., n_groups]`` of codes ``[..., dim]``."""
        return torch.stack(
            [codes_to_index(codes[..., s:e], g) for (s, e), g in zip(self.group_bounds, self.groups)], dim=-1
        )

    def joint_index(self, codes: torch.Tensor) -> torch.Tensor:
        """Joint int64 index over all channels of codes ``[..., dim]``."""
        return codes_to_index(codes, self.levels)
