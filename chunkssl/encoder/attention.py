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
