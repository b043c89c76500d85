"""Chunk conformer encoder: ESPnet ``AbsEncoder`` with chunk masks, CADA and chunk-aware convs.

``forward`` is the ESPnet encoder interface (ASR/ST fine-tuning and decoding): 4x conv2d
subsampling (``input_layer: linear`` instead maps each input frame to one encoder frame, for
inputs already at the 40 ms encoder rate such as the token frontend's), then a plain chunk-masked
pass with the configured chunk size and left-chunk limit (offline when the chunk size is -1).
The SSL model calls :meth:`subsample` and :meth:`encode` itself so it can run the CADA layout and
feed the extended copies with frames subsampled from masked input (see :mod:`chunkssl.ssl.model`).
Chunk sizes here count encoder frames (40 ms each after subsampling 10 ms features).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.legacy.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet2.legacy.nets.pytorch_backend.transformer.subsampling import (
    Conv2dSubsampling,
    TooShortUttError,
    check_short_utt,
)
from torch import nn

from chunkssl.cada import Layout, build_layout
from chunkssl.chunking import ChunkSampler
from chunkssl.encoder.attention import PositionTables
from chunkssl.encoder.layer import ChunkConformerLayer, LayerCache


class LinearEmbed(nn.Module):
    """Non-subsampling input layer: linear map and LayerNorm per frame; same ``(x, masks)`` interface."""

    def __init__(self, input_size: int, output_size: int, dropout_rate: float):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(input_size, output_size), nn.LayerNorm(output_size),
                                 nn.Dropout(dropout_rate))

    def forward(self, x: torch.Tensor, masks: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``x [B, T, F]`` to ``[B, T, D]``; masks unchanged."""
        return self.out(x), masks


def conv2d_subsampling(input_size: int, output_size: int, dropout_rate: float,
                       channels: Optional[int] = None) -> Conv2dSubsampling:
    """ESPnet's 4x conv2d subsampling (no positional encoding), with ``channels`` conv channels if given.

    ESPnet uses ``output_size`` channels; the second 3x3 conv then costs ``output_size**2`` per
    frequency bin and output frame, which is most of a small encoder's compute on a CPU (0.96M-parameter
    encoder, 96 channels: 62 %). Fewer channels keep the same frames, strides and look-ahead.
    """
    embed = Conv2dSubsampling(input_size, output_size, dropout_rate, pos_enc=nn.Identity())
    if channels is not None and channels != output_size:
        if channels < 1:
            raise ValueError(f"subsampling_channels must be positive, got {channels}")
        embed.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(inplace=True),
                                   nn.Conv2d(channels, channels, 3, 2), nn.ReLU(inplace=True))
        embed.out = nn.Linear(channels * (((input_size - 1) // 2 - 1) // 2), output_size)
    return embed


class ChunkConformerEncoder(AbsEncoder):
    """Conformer encoder for streaming-by-chunk and CADA pre-training.

    Args:
        input_size: feature dimension (80 for fbank).
        output_size: model dimension.
        attention_heads, linear_units, num_blocks: usual conformer sizes.
        dropout_rate, attention_dropout_rate: dropout after sub-layers / on attention weights.
        macaron_style, use_cnn_module, cnn_module_kernel: conformer block options (odd kernel).
        chunk_size: chunk in encoder frames used by ``forward``; -1 = offline (full context).
        left_chunks: previous chunks a chunk may attend to in ``forward``; -1 = unlimited.
        dynamic_chunk: optional :class:`~chunkssl.chunking.ChunkSampler` options; when given,
            ``forward`` in training mode draws chunk size and left limit per batch.
        input_layer: ``conv2d`` (4x subsampling of 10 ms features) or ``linear`` (no subsampling).
        subsampling_channels: conv channels of the conv2d input layer (default: ``output_size``).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 1024,
        num_blocks: int = 6,
        dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        macaron_style: bool = True,
        use_cnn_module: bool = True,
        cnn_module_kernel: int = 15,
        chunk_size: int = -1,
        left_chunks: int = -1,
        dynamic_chunk: Optional[dict] = None,
        input_layer: str = "conv2d",
        subsampling_channels: Optional[int] = None,
    ):
        super().__init__()
        self._output_size = output_size
        self.input_size = input_size
        self.input_layer = input_layer
        if input_layer == "conv2d":
            self.embed = conv2d_subsampling(input_size, output_size, dropout_rate, subsampling_channels)
        elif input_layer == "linear":
            self.embed = LinearEmbed(input_size, output_size, dropout_rate)
        else:
            raise ValueError(f"input_layer must be 'conv2d' or 'linear', got {input_layer!r}")
        self.xscale = math.sqrt(output_size)
        self.input_dropout = nn.Dropout(dropout_rate)
        self.encoders = nn.ModuleList(
            ChunkConformerLayer(output_size, attention_heads, linear_units, cnn_module_kernel,
                                dropout_rate, attention_dropout_rate, macaron_style, use_cnn_module)
            for _ in range(num_blocks)
        )
        self.after_norm = nn.LayerNorm(output_size)
        self.half_kernel = (cnn_module_kernel - 1) // 2 if use_cnn_module else 0
        self.chunk_size = chunk_size
        self.left_chunks = left_chunks
        # not saved in the state dict, so an ASR encoder loads SSL weights whatever its options
        self.chunk_sampler = ChunkSampler(**dynamic_chunk, persistent=False) if dynamic_chunk else None

    def output_size(self) -> int:
        """Model dimension of the outputs."""
        return self._output_size

    @property
    def subsampling(self) -> tuple[int, int]:
        """``(stride, receptive field)`` of the input layer, in input frames.

        Encoder frame ``t`` reads input frames ``stride * t .. stride * t + receptive - 1``: 4 and 7
        for conv2d (two 3x3 stride-2 convs: 30 ms of look-ahead past its own 40 ms), 1 and 1 for linear.
        """
        return (4, 7) if self.input_layer == "conv2d" else (1, 1)

    @property
    def lookahead_frames(self) -> int:
        """Encoder frames at the start of a chunk whose own input the previous chunk's last frame reads."""
        stride, receptive = self.subsampling
        return -(-(receptive - stride) // stride)

    def subsample(self, xs_pad: torch.Tensor, ilens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input layer (4x conv2d subsampling or linear): features ``[B, T, F]`` to encoder frames ``[B, T', D]``."""
        short, limit = (check_short_utt(self.embed, xs_pad.size(1)) if self.input_layer == "conv2d"
                        else (xs_pad.size(1) == 0, 0))
        if short:
            raise TooShortUttError(f"has {xs_pad.size(1)} frames and is too short for subsampling "
                                   f"(it needs more than {limit} frames)", xs_pad.size(1), limit)
        masks = (~make_pad_mask(ilens, maxlen=xs_pad.size(1))[:, None, :]).to(xs_pad.device)
        x, masks = self.embed(xs_pad, masks)
        return self.input_dropout(x * self.xscale), masks.squeeze(1).sum(-1)

    def chunk_forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, chunk_size: int | None,
                      left_chunks: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` in eval mode with this chunk mask, not the configured one (None = offline / all left)."""
        x, lengths = self.subsample(xs_pad, ilens)
        out, _ = self.encode(x, lengths, chunk_size, left_chunks, cada=False)
        return out, lengths

    def embed_window(self, x: torch.Tensor) -> torch.Tensor:
        """Input layer on a window of input frames ``[1, T, F]`` with no padding: encoder frames ``[1, T', D]``.

        As :meth:`subsample` in eval mode, without the length bookkeeping; a stream calls it on just
        the input frames its new encoder frames read.
        """
        x, _ = self.embed(x, None)
        return x * self.xscale

    def init_caches(self, dtype: torch.dtype, device: torch.device) -> list[LayerCache]:
        """Empty per-layer caches for :meth:`forward_step` at the start of a stream."""
        tables = PositionTables(self.output_size(), dtype, device)  # shared: the same for every layer
        return [layer.init_cache(dtype, device, tables) for layer in self.encoders]

    def forward_step(self, x: torch.Tensor, caches: list[LayerCache]) -> tuple[torch.Tensor, list[LayerCache]]:
        """Encode one chunk of encoder frames ``x [1, c, D]`` after those the caches hold (inference).

        Returns the chunk's outputs (its rows of the chunk-masked forward) and the caches with this
        chunk appended; trimming them to a left limit is the caller's.
        """
        new = []
        for layer, cache in zip(self.encoders, caches):
            x, cache = layer.forward_step(x, cache)
            new.append(cache)
        return self.after_norm(x), new

    def layout(self, lengths: torch.Tensor, chunk_size: int | None, left_chunks: int | None,
               cada: bool, num_frames: int | None = None) -> Layout:
        """The :class:`~chunkssl.cada.Layout` this encoder uses for a batch of ``lengths`` frames."""
        return build_layout(lengths, chunk_size, left_chunks, cada, self.half_kernel, num_frames)

    def encode_layout(self, h: torch.Tensor, layout: Layout) -> torch.Tensor:
        """Run the conformer blocks on a layout tensor ``h [B, P, D]``."""
        for layer in self.encoders:
            h = layer(h, layout)
        return self.after_norm(h)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, chunk_size: int | None,
               left_chunks: int | None, cada: bool, copies: torch.Tensor | None = None,
               layout: Layout | None = None) -> tuple[torch.Tensor, Layout]:
        """Encode subsampled frames ``x [B, T, D]``; returns the layout outputs ``[B, P, D]``.

        ``copies [B, T, D]`` are the frames the extended (CADA) copies take instead of ``x``: the SSL
        model subsamples them from masked input, while the base chunks keep the clean ``x``.
        ``layout`` reuses a prebuilt layout (it must match the other arguments).
        """
        if layout is None:
            layout = self.layout(lengths, chunk_size, left_chunks, cada, x.size(1))
        h = x[:, layout.source]
        if copies is not None:
            h = torch.where(layout.extended[None, :, None], copies[:, layout.source].to(h.dtype), h)
        return self.encode_layout(h, layout), layout

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """ESPnet encoder interface: chunk-masked encoding, returns ``(out, out_lens, None)``."""
        x, lengths = self.subsample(xs_pad, ilens)
        chunk_size, left_chunks = self.chunk_size, self.left_chunks
        if self.training and self.chunk_sampler is not None:
            chunk_size, left_chunks = self.chunk_sampler()
        out, _ = self.encode(x, lengths, chunk_size, left_chunks, cada=False)
        return out, lengths, None
