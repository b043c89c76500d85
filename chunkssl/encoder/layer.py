"""One conformer block (macaron FFN, relative-position attention, chunk-aware conv, FFN), pre-norm."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from chunkssl.cada import Layout
from chunkssl.encoder.attention import PositionTables, RelPositionSelfAttention, StepPlan
from chunkssl.encoder.convolution import ChunkConvolutionModule


class FeedForward(nn.Module):
    """Position-wise feed-forward: Linear, activation, dropout, Linear."""

    def __init__(self, d_model: int, hidden: int, dropout_rate: float, activation: nn.Module):
        super().__init__()
        self.w_1 = nn.Linear(d_model, hidden)
        self.w_2 = nn.Linear(hidden, d_model)
        self.activation = activation
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the feed-forward network frame by frame."""
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


@dataclass(frozen=True)
class LayerCache:
    """What one layer keeps between cached steps: keys/values, conv left context, attention constants.

    ``k``/``v`` are ``[1, H, K, d]`` float32 (whatever the model dtype: see :class:`StepPlan`) for the
    ``K`` frames before the chunk; ``conv`` is the last ``half_kernel`` GLU outputs ``[1, h, D]``.
    """

    k: torch.Tensor
    v: torch.Tensor
    conv: torch.Tensor
    plan: StepPlan

    def keep_last(self, frames: int) -> "LayerCache":
        """The cache with only the keys/values of the last ``frames`` frames (a left limit)."""
        drop = max(0, self.k.shape[2] - frames)
        return replace(self, k=self.k[:, :, drop:], v=self.v[:, :, drop:]) if drop else self


class ChunkConformerLayer(nn.Module):
    """Conformer block whose attention and convolution follow a :class:`~chunkssl.cada.Layout`."""

    def __init__(self, d_model: int, n_head: int, linear_units: int, kernel_size: int,
                 dropout_rate: float = 0.1, attention_dropout_rate: float = 0.0,
                 macaron_style: bool = True, use_cnn_module: bool = True):
        super().__init__()
        act = nn.SiLU()
        self.feed_forward_macaron = (FeedForward(d_model, linear_units, dropout_rate, act)
                                     if macaron_style else None)
        self.norm_ff_macaron = nn.LayerNorm(d_model) if macaron_style else None
        self.self_attn = RelPositionSelfAttention(n_head, d_model, attention_dropout_rate)
        self.norm_mha = nn.LayerNorm(d_model)
        self.conv_module = ChunkConvolutionModule(d_model, kernel_size, act) if use_cnn_module else None
        self.norm_conv = nn.LayerNorm(d_model) if use_cnn_module else None
        self.feed_forward = FeedForward(d_model, linear_units, dropout_rate, act)
        self.norm_ff = nn.LayerNorm(d_model)
        self.norm_final = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout_rate)
        self.ff_scale = 0.5 if macaron_style else 1.0

    def forward(self, x: torch.Tensor, layout: Layout) -> torch.Tensor:
        """Run the block on a layout tensor ``x [B, P, D]``."""
        if self.feed_forward_macaron is not None:
            x = x + self.ff_scale * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        h = self.norm_mha(x)
        x = x + self.dropout(self.self_attn(h, h, h, layout.source, layout.source, layout.attend))
        if self.conv_module is not None:
            x = x + self.dropout(self.conv_module(self.norm_conv(x), layout.valid,
                                                  layout.window_index, layout.output_index))
        x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)

    def init_cache(self, dtype: torch.dtype, device: torch.device, tables: PositionTables) -> LayerCache:
        """Empty cache for the first chunk of a stream (built per stream: weights cast later are used)."""
        attn = self.self_attn
        k = torch.zeros(1, attn.h, 0, attn.d_k, dtype=torch.float32, device=device)
        half = self.conv_module.half_kernel if self.conv_module is not None else 0
        conv = torch.zeros(1, half, attn.h * attn.d_k, dtype=dtype, device=device)
        return LayerCache(k, torch.zeros_like(k), conv, StepPlan(attn, tables))

    def forward_step(self, x: torch.Tensor, cache: LayerCache) -> tuple[torch.Tensor, LayerCache]:
        """Run the block on one chunk ``x [1, c, D]`` after the frames ``cache`` holds (inference).

        Gives the chunk's rows of the chunk-masked :meth:`forward`; the returned cache holds this
        chunk's keys/values too (trim it with :meth:`LayerCache.keep_last`).
        """
        if self.feed_forward_macaron is not None:
            x = x + self.ff_scale * self.feed_forward_macaron(self.norm_ff_macaron(x))
        att, k, v = self.self_attn.forward_step(self.norm_mha(x), cache.k, cache.v, cache.plan)
        x = x + att
        conv = cache.conv
        if self.conv_module is not None:
            out, conv = self.conv_module.forward_step(self.norm_conv(x), cache.conv)
            x = x + out
        x = x + self.ff_scale * self.feed_forward(self.norm_ff(x))
        return self.norm_final(x), LayerCache(k, v, conv, cache.plan)
