"""Multi-head self-attention with relative positions taken from explicit position ids.

ESPnet's relative-position attention derives positions from the sequence index, which is wrong
for CADA copies (an extended chunk sits at the end of the layout but carries the positions of the
chunk it copies). Here queries and keys come with their own position ids, so the same module
serves the CADA layout, a plain chunk-masked pass and a streaming step whose keys/values come
from a cache.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sinusoid_table(offsets: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal embeddings ``[R, dim]`` of integer relative offsets (Transformer-XL style)."""
    inv_freq = torch.exp(torch.arange(0, dim, 2, device=offsets.device, dtype=torch.float64)
                         * (-math.log(10000.0) / dim))
    angles = offsets.to(torch.float64)[:, None] * inv_freq[None, :]
    table = torch.zeros(offsets.numel(), dim, device=offsets.device, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return table.to(dtype)


class RelPositionSelfAttention(nn.Module):
    """Transformer-XL attention: content term ``(q+u)k`` plus position term ``(q+v)W p(i-j)``."""

    def __init__(self, n_head: int, d_model: int, dropout_rate: float = 0.0):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        self.h, self.d_k = n_head, d_model // n_head
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(n_head, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(n_head, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout_rate)

    def _heads(self, x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        b = x.size(0)
        return linear(x).view(b, -1, self.h, self.d_k)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                pos_q: torch.Tensor, pos_k: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Attend ``query [B, Q, D]`` to ``key/value [B, K, D]``.

        ``pos_q [Q]`` and ``pos_k [K]`` are integer position ids; ``mask`` is a boolean
        ``[B, Q, K]`` (or broadcastable) permission, True = may attend. A streaming step passes
        cached keys/values with their positions.
        """
        q = self._heads(query, self.linear_q)                     # [B, Q, H, d]
        k = self._heads(key, self.linear_k).transpose(1, 2)       # [B, H, K, d]
        v = self._heads(value, self.linear_v).transpose(1, 2)
        rel = pos_q[:, None] - pos_k[None, :]                     # [Q, K]
        lo, hi = int(rel.min()), int(rel.max())
        offsets = torch.arange(lo, hi + 1, device=rel.device)
        p = self.linear_pos(sinusoid_table(offsets, self.h * self.d_k, query.dtype))
        p = p.view(-1, self.h, self.d_k).transpose(0, 1)          # [H, R, d]
        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        by_offset = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        index = (rel - lo).expand(*by_offset.shape[:2], *rel.shape)
        position = torch.gather(by_offset, -1, index)             # [B, H, Q, K]
        scores = (content + position) / math.sqrt(self.d_k)
        if mask is not None:
            blocked = ~mask.unsqueeze(1)
            # dtype min rather than -inf: a fully blocked (padding) row must not give NaN
            scores = scores.masked_fill(blocked, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1).masked_fill(blocked, 0.0)
        else:
            weights = torch.softmax(scores, dim=-1)
        out = torch.matmul(self.dropout(weights), v)              # [B, H, Q, d]
        out = out.transpose(1, 2).reshape(query.size(0), -1, self.h * self.d_k)
        return self.linear_out(out)

    def forward_step(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, plan: "StepPlan",
                     key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attend chunk ``x [1, c, D]`` to cached ``keys/values [1, H, K, d]`` and its own frames.

        Returns the output ``[1, c, D]`` and the keys/values with the chunk's appended (``[1, H, K + c, d]``,
        float32); the caller trims them to its left limit. The chunk's queries are its last ``c`` keys,
        and every key up to the chunk's end is visible, as in the chunk-masked forward, except where a boolean
        ``key_mask`` (broadcast to the scores ``[1, H, c, K + c]``) is False (fixed-size caches: ONNX export).
        """
        c = x.shape[1]
        # projections in the model dtype, the attention itself in float32 (see StepPlan)
        q, k, v = plan.project(x).float().view(1, c, 3, self.h, self.d_k).unbind(2)
        keys = torch.cat([keys, k.transpose(1, 2)], dim=2)
        values = torch.cat([values, v.transpose(1, 2)], dim=2)
        n_keys = keys.shape[2]
        # offsets i - j run from -(c - 1) (first query, last key) to n_keys - 1 (last query, first key)
        lo, hi = -(c - 1), n_keys - 1
        content = torch.matmul((q + plan.u).transpose(1, 2), keys.transpose(-2, -1))
        by_offset = torch.matmul((q + plan.v).transpose(1, 2), plan.positions(lo, hi).transpose(-2, -1))
        index = plan.tables.offset_index(c, n_keys, lo, self.h)
        scores = (content + torch.gather(by_offset, -1, index)) / math.sqrt(self.d_k)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, values).transpose(1, 2).reshape(1, c, self.h * self.d_k).to(x.dtype)
        return self.linear_out(out), keys, values


class PositionTables:
    """Layer-independent relative-position tables of one stream, kept for the few shapes that recur.

    Sinusoid rows by offset range and gather indices by (chunk, keys): once the left limit is
    reached every full chunk asks for the same ones.
    """

    LIMIT = 8  # only a few shapes recur (full chunks, the last one); keep the dicts small

    def __init__(self, dim: int, dtype: torch.dtype, device: torch.device):
        self.dim, self.dtype, self.device = dim, dtype, device
        self._rows: dict[tuple[int, int], torch.Tensor] = {}
        self._index: dict[tuple[int, int], torch.Tensor] = {}

    def sinusoids(self, lo: int, hi: int) -> torch.Tensor:
        """Sinusoid rows ``[hi - lo + 1, dim]`` of offsets ``lo..hi``."""
        table = self._rows.get((lo, hi))
        if table is None:
            table = sinusoid_table(torch.arange(lo, hi + 1, device=self.device), self.dim, self.dtype)
            if len(self._rows) > self.LIMIT:
                self._rows.clear()
            self._rows[(lo, hi)] = table
        return table

    def offset_index(self, c: int, n_keys: int, lo: int, heads: int) -> torch.Tensor:
        """Gather index ``[1, H, c, n_keys]`` of offset ``i - j`` minus ``lo`` for a chunk's last-``c`` queries."""
        index = self._index.get((c, n_keys))
        if index is None:
            qi = torch.arange(c, device=self.device)[:, None] + (n_keys - c)
            kj = torch.arange(n_keys, device=self.device)[None, :]
            index = (qi - kj - lo).expand(1, heads, c, n_keys)
            if len(self._index) > self.LIMIT:
                self._index.clear()
            self._index[(c, n_keys)] = index
        return index


class StepPlan:
    """Fixed inference constants of one attention module for :meth:`RelPositionSelfAttention.forward_step`.

    Built per stream (so weights loaded or cast later are used): q/k/v projections stacked into one
    (a chunk has few rows, so per-call cost dominates small matmuls), position biases in float32
    (bf16 matmuls of a few rows cost several times more here), and ``linear_pos`` of the sinusoids
    by offset range (about a fifth of a layer's work at 640 ms, constant once the left limit is reached).
    """

    def __init__(self, attn: RelPositionSelfAttention, tables: PositionTables):
        self.attn, self.tables = attn, tables
        lins = (attn.linear_q, attn.linear_k, attn.linear_v)
        # a quantized (int8) linear has weight() as a method: those run one by one
        stackable = all(isinstance(getattr(lin, "weight", None), torch.Tensor) for lin in lins)
        self.lins = None if stackable else lins
        if stackable:
            self.weight = torch.cat([lin.weight for lin in lins]).detach()
            self.bias = torch.cat([lin.bias for lin in lins]).detach()
        self.u, self.v = attn.pos_bias_u.detach().float(), attn.pos_bias_v.detach().float()
        self._positions: dict[tuple[int, int], torch.Tensor] = {}

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``[q | k | v]`` of ``x [1, c, D]`` as ``[1, c, 3D]``."""
        if self.lins is None:
            return F.linear(x, self.weight, self.bias)
        return torch.cat([lin(x) for lin in self.lins], dim=-1)

    def positions(self, lo: int, hi: int) -> torch.Tensor:
        """``linear_pos`` of the sinusoids of offsets ``lo..hi`` as float32 ``[H, n, d]``."""
        p = self._positions.get((lo, hi))
        if p is None:
            attn = self.attn
            p = attn.linear_pos(self.tables.sinusoids(lo, hi)).float().view(-1, attn.h, attn.d_k).transpose(0, 1)
            if len(self._positions) > PositionTables.LIMIT:
                self._positions.clear()
            self._positions[(lo, hi)] = p
        return p
