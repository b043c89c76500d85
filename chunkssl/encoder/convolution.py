"""Conformer convolution module with a chunk-aware depthwise convolution and LayerNorm.

Each chunk is convolved in its own window: ``half_kernel`` frames of left context gathered from
earlier base frames, the chunk's own frames, and zeros on the right (no look-ahead across the
chunk end). The windows come from :func:`chunkssl.cada.conv_windows`. LayerNorm replaces the
usual BatchNorm, which would mix statistics across chunks, copies and padding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ChunkConvolutionModule(nn.Module):
    """Pointwise conv + GLU, chunk-aware depthwise conv, LayerNorm, activation, pointwise conv."""

    def __init__(self, d_model: int, kernel_size: int, activation: nn.Module | None = None):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"cnn_module_kernel must be odd, got {kernel_size}")
        self.half_kernel = (kernel_size - 1) // 2
        self.pointwise_conv1 = nn.Linear(d_model, 2 * d_model)
        self.depthwise_conv = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.activation = activation if activation is not None else nn.SiLU()
        self.pointwise_conv2 = nn.Linear(d_model, d_model)

    def depthwise(self, windows: torch.Tensor) -> torch.Tensor:
        """Convolve windows ``[N, h + C, D]`` (left context + chunk) to ``[N, C, D]`` outputs.

        A streaming step can call this with ``cat([conv_cache, chunk])`` as its single window.
        """
        x = F.pad(windows.transpose(1, 2), (0, self.half_kernel))
        return self.depthwise_conv(x).transpose(1, 2)

    def depthwise_step(self, window: torch.Tensor) -> torch.Tensor:
        """:meth:`depthwise` of one short window ``[1, h + C, D]`` (a streaming chunk), as a sum of taps.

        At a chunk of a few frames conv1d's per-call setup costs several times the arithmetic
        (about 0.5 ms a layer here); the result is the same up to float rounding.
        """
        x = F.pad(window, (0, 0, 0, self.half_kernel))  # zeros right of the chunk: no look-ahead
        taps = self.depthwise_conv.weight[:, 0]  # [D, K]
        return (x.unfold(1, taps.shape[1], 1) * taps).sum(-1) + self.depthwise_conv.bias

    def forward(self, x: torch.Tensor, valid: torch.Tensor, window_index: torch.Tensor,
                output_index: torch.Tensor) -> torch.Tensor:
        """Apply the module to a layout ``x [B, P, D]`` with padding flags ``valid [B, P]``."""
        b, _, d = x.shape
        x = F.glu(self.pointwise_conv1(x), dim=-1)
        # padding must read as zeros wherever it falls inside a window
        x = x * valid.unsqueeze(-1).to(x.dtype)
        padded = torch.cat([x, x.new_zeros(b, 1, d)], dim=1)
        gather = torch.where(window_index < 0, x.size(1), window_index)
        windows = padded[:, gather]                               # [B, W, h + C, D]
        w, width = windows.shape[1], windows.shape[2] - self.half_kernel
        out = self.depthwise(windows.reshape(b * w, -1, d)).reshape(b, w * width, d)
        out = out[:, output_index]
        return self.pointwise_conv2(self.activation(self.norm(out)))

    def forward_step(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the module to one chunk ``x [1, c, D]`` given the ``half_kernel`` GLU outputs before it.

        ``cache [1, half_kernel, D]`` is the chunk's left context (zeros at the stream start); returns the
        output ``[1, c, D]`` and the next chunk's left context. Nothing right of the chunk is read.
        """
        window = torch.cat([cache, F.glu(self.pointwise_conv1(x), dim=-1)], dim=1)
        out = self.depthwise_step(window)
        cache = window[:, window.shape[1] - self.half_kernel:]
        return self.pointwise_conv2(self.activation(self.norm(out))), cache
