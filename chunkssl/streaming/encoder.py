"""Cached chunk-by-chunk run of a trained :class:`~chunkssl.encoder.ChunkConformerEncoder`.

Fed normalised fbank frames a few at a time, it gives exactly what the offline chunk-masked forward
(``encoder.chunk_forward(xs, ilens, C, L)``) gives on the same frames:

- Input: encoder frame ``t`` reads fbank frames ``4t .. 4t+6`` (two 3x3 stride-2 convs), so it is
  computed once those are in, from just those frames (:class:`FbankInput`); fbank frames no later
  frame needs are dropped. Another input stage (e.g. the codec streamer's tokenizer and token
  frontend) plugs in through the ``input_stage`` argument.
- Layers: each conformer layer runs its own cached step
  (:meth:`~chunkssl.encoder.layer.ChunkConformerLayer.forward_step`): a chunk attends to its own
  frames and the layer's cached keys/values, and its chunk-aware conv reads the cached GLU outputs
  before the chunk. Here the caches are kept between chunks and trimmed to the last ``L * C``
  frames (all frames when unlimited).

A chunk is encoded once its ``C`` encoder frames exist, or at :meth:`StreamingEncoder.finalize` (the
shorter last chunk). With a left limit every cache has a constant size, whatever the stream length.
"""

from __future__ import annotations

from typing import Protocol

import torch

from chunkssl.cada import normalize_chunk_size, normalize_left_chunks
from chunkssl.chunking import RECEPTIVE, STRIDE, encoder_frames_for
from chunkssl.encoder import ChunkConformerEncoder

__all__ = ["FbankInput", "InputStage", "StreamingEncoder", "encoder_frames_for"]


class InputStage(Protocol):
    """What turns a stream's input into encoder frames for :class:`StreamingEncoder`."""

    def reset(self) -> None:
        """Forget the stream."""

    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add input frames ``[n, F]``; return the encoder frames ``[1, m, D]`` (scaled) now computable."""

    def finalize(self) -> torch.Tensor:
        """Encoder frames ``[1, m, D]`` the end of the input releases (possibly none)."""

    def frames_needed(self, encoder_frames: int) -> int:
        """More input frames that must arrive before ``encoder_frames`` encoder frames in all exist."""

    def buffer_sizes(self) -> dict:
        """Sizes of the buffers it keeps between calls."""


class FbankInput:
    """Normalised fbank frames through the encoder's conv2d subsampling, each encoder frame once."""

    def __init__(self, encoder: ChunkConformerEncoder):
        self.encoder = encoder
        param = next(encoder.parameters())
        self.dtype, self.device = param.dtype, param.device
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        self._fbank = torch.zeros(0, 0)        # fbank frames still needed by future encoder frames
        self._start = 0                         # absolute index of _fbank[0]
        self._total = 0                         # fbank frames so far

    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add fbank frames ``[n, F]``; return the encoder frames ``[1, m, D]`` whose fbank frames are all in."""
        feats = feats.to(self.device, self.dtype)
        if feats.ndim != 2:
            raise ValueError(f"expected fbank frames [n, F], got shape {tuple(feats.shape)}")
        if feats.shape[0] == 0:
            return self._none()
        self._fbank = feats if self._fbank.numel() == 0 else torch.cat([self._fbank, feats])
        self._total += feats.shape[0]
        done = encoder_frames_for(self._total - feats.shape[0])
        ready = encoder_frames_for(self._total)
        if ready == done:
            return self._none()
        lo = STRIDE * done - self._start
        hi = STRIDE * (ready - 1) + RECEPTIVE - self._start
        x = self.encoder.embed_window(self._fbank[None, lo:hi])
        # frames before the next encoder frame's first input are never read again
        drop = STRIDE * ready - self._start
        self._fbank = self._fbank[drop:].clone()
        self._start += drop
        return x

    def finalize(self) -> torch.Tensor:
        """None: an encoder frame is made as soon as its fbank frames are in."""
        return self._none()

    def frames_needed(self, encoder_frames: int) -> int:
        """More fbank frames before ``encoder_frames`` encoder frames exist."""
        # encoder frame e reads fbank frames up to 4e + 6, i.e. e + 1 frames need 4e + 7 = 4(e+1) + 3
        return max(0, STRIDE * encoder_frames + RECEPTIVE - STRIDE - self._total)

    def buffer_sizes(self) -> dict:
        """Fbank frames kept (fewer than the 7 one encoder frame reads)."""
        return {"fbank": int(self._fbank.shape[0])}

    def _none(self) -> torch.Tensor:
        return torch.zeros(1, 0, self.encoder.output_size(), dtype=self.dtype, device=self.device)


class StreamingEncoder:
    """Chunk-by-chunk encoder with bounded caches; :meth:`accept` frames, :meth:`finalize` at the end.

    Args:
        encoder: a trained encoder (put in eval mode here; its weights are shared, not copied).
        chunk_size: chunk in encoder frames (40 ms each); must be positive.
        left_chunks: previous chunks a chunk may attend to; -1/None = unlimited (cache grows).
        input_stage: what makes encoder frames from the input (default :class:`FbankInput`).
    """

    def __init__(self, encoder: ChunkConformerEncoder, chunk_size: int, left_chunks: int | None = -1,
                 input_stage: InputStage | None = None):
        chunk = normalize_chunk_size(chunk_size)
        if chunk is None:
            raise ValueError(f"streaming needs a positive chunk size in encoder frames, got {chunk_size}")
        self.encoder = encoder.eval()
        self.chunk_size = chunk
        self.left_chunks = normalize_left_chunks(left_chunks)
        param = next(encoder.parameters())
        self.dtype, self.device = param.dtype, param.device
        self.input = input_stage if input_stage is not None else FbankInput(encoder)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0 of a new utterance."""
        self.input.reset()
        d = self.encoder.output_size()
        self._frames = torch.zeros(1, 0, d, dtype=self.dtype, device=self.device)  # subsampled, not encoded
        self._encoded = 0                       # encoder frames already encoded
        # rebuilt per utterance, so weights loaded or cast later are used
        self._caches = self.encoder.init_caches(self.dtype, self.device)

    @property
    def num_encoded(self) -> int:
        """Encoder frames output so far."""
        return self._encoded

    def cache_sizes(self) -> dict:
        """Sizes (frames) of every buffer kept between calls: constant with a left limit."""
        return {**self.input.buffer_sizes(), "pending": int(self._frames.shape[1]),
                "kv": max((int(c.k.shape[2]) for c in self._caches), default=0),
                "conv": max((int(c.conv.shape[1]) for c in self._caches), default=0)}

    def fbank_frames_needed(self) -> int:
        """More input frames that must arrive before the next full chunk can be encoded."""
        return self.input.frames_needed(self._encoded + self.chunk_size)

    @torch.no_grad()
    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add normalised fbank frames ``[n, F]``; return the encoder outputs ``[m, D]`` of chunks now complete."""
        self._push(self.input.accept(feats))
        outs = []
        while self._frames.shape[1] >= self.chunk_size:
            outs.append(self._encode_chunk(self._take(self.chunk_size)))
        return self._cat(outs)

    @torch.no_grad()
    def finalize(self) -> torch.Tensor:
        """Encode the frames left (a shorter last chunk) and return them; call :meth:`reset` before reuse."""
        self._push(self.input.finalize())
        outs = []
        while self._frames.shape[1] > 0:
            outs.append(self._encode_chunk(self._take(min(self.chunk_size, self._frames.shape[1]))))
        return self._cat(outs)

    def _push(self, x: torch.Tensor) -> None:
        if x.shape[1]:
            self._frames = torch.cat([self._frames, x], dim=1)

    def _cat(self, outs: list[torch.Tensor]) -> torch.Tensor:
        if not outs:
            return torch.zeros(0, self.encoder.output_size(), dtype=self.dtype, device=self.device)
        return torch.cat(outs, dim=1)[0]

    def _take(self, n: int) -> torch.Tensor:
        chunk, self._frames = self._frames[:, :n], self._frames[:, n:]
        return chunk

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        y, caches = self.encoder.forward_step(x, self._caches)
        if self.left_chunks is not None:
            caches = [cache.keep_last(self.left_chunks * self.chunk_size) for cache in caches]
        self._caches = caches
        self._encoded += x.shape[1]
        return y
