"""Cached chunk-by-chunk run of a trained :class:`~chunkssl.encoder.ChunkConformerEncoder`.

Fed normalised fbank frames a few at a time, it gives exactly what the offline chunk-masked forward
(``encoder.chunk_size = C; encoder.left_chunks = L; encoder(xs, ilens)``) gives on the same frames:

- Subsampling: encoder frame ``t`` reads fbank frames ``4t .. 4t+6`` (two 3x3 stride-2 convs), so it
  is computed once those are in, from just those frames; fbank frames no later frame needs are
  dropped. Only the conv2d and the output linear run, on the new frames only.
- Attention: per layer, the projected keys/values of earlier frames are cached; a chunk attends to
  its own frames and the cache, which keeps the last ``L * C`` frames (all frames when unlimited).
  Relative position terms use absolute frame ids, as offline.
- Convolution: per layer, the last ``half_kernel`` GLU outputs before the chunk (zeros at the start)
  are the left context of the chunk-aware depthwise conv; nothing right of the chunk is used.

A chunk is encoded once its ``C`` encoder frames exist, or at :meth:`finalize` (the shorter last
chunk). With a left limit every cache has a constant size, whatever the stream length.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from chunkssl.asr.precision import is_float_linear
from chunkssl.cada import normalize_chunk_size, normalize_left_chunks
from chunkssl.chunking import RECEPTIVE, STRIDE, encoder_frames_for
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.encoder.attention import RelPositionSelfAttention, sinusoid_table
from chunkssl.encoder.layer import ChunkConformerLayer

__all__ = ["StreamingEncoder", "encoder_frames_for"]


class _LayerCache:
    """Cached keys/values ``[1, H, K, d]`` with their frame ids, and the conv left context ``[1, h, D]``."""

    def __init__(self, layer: ChunkConformerLayer, d_model: int, dtype: torch.dtype, device: torch.device):
        attn = layer.self_attn
        # float32 whatever the model dtype: bf16 matmuls of a few rows cost several times more here
        self.k = torch.zeros(1, attn.h, 0, attn.d_k, dtype=torch.float32, device=device)
        self.v = torch.zeros_like(self.k)
        half = layer.conv_module.half_kernel if layer.conv_module is not None else 0
        self.conv = torch.zeros(1, half, d_model, dtype=dtype, device=device)


class _AttnWeights:
    """One layer's q/k/v projections stacked (``[3D, D]``, ``[3D]``) and its position biases in float32."""

    def __init__(self, attn: RelPositionSelfAttention):
        lins = (attn.linear_q, attn.linear_k, attn.linear_v)
        self.lins = None if all(is_float_linear(lin) for lin in lins) else lins  # int8 layers: one by one
        if self.lins is None:
            self.weight = torch.cat([lin.weight for lin in lins]).detach()
            self.bias = torch.cat([lin.bias for lin in lins]).detach()
        self.u, self.v = attn.pos_bias_u.detach().float(), attn.pos_bias_v.detach().float()

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """``[q | k | v]`` of ``h [1, c, D]`` as ``[1, c, 3D]``."""
        if self.lins is None:
            return F.linear(h, self.weight, self.bias)
        return torch.cat([lin(h) for lin in self.lins], dim=-1)


class StreamingEncoder:
    """Chunk-by-chunk encoder with bounded caches; :meth:`accept` frames, :meth:`finalize` at the end.

    Args:
        encoder: a trained encoder (put in eval mode here; its weights are shared, not copied).
        chunk_size: chunk in encoder frames (40 ms each); must be positive.
        left_chunks: previous chunks a chunk may attend to; -1/None = unlimited (cache grows).
    """

    def __init__(self, encoder: ChunkConformerEncoder, chunk_size: int, left_chunks: int | None = -1):
        chunk = normalize_chunk_size(chunk_size)
        if chunk is None:
            raise ValueError(f"streaming needs a positive chunk size in encoder frames, got {chunk_size}")
        self.encoder = encoder.eval()
        self.chunk_size = chunk
        self.left_chunks = normalize_left_chunks(left_chunks)
        param = next(encoder.parameters())
        self.dtype, self.device = param.dtype, param.device
        self._pos_cache: dict[tuple[int, int], torch.Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0 of a new utterance."""
        d = self.encoder.output_size()
        self._fbank = torch.zeros(0, 0)        # fbank frames still needed by future encoder frames
        self._fbank_start = 0                   # absolute index of _fbank[0]
        self._fbank_total = 0
        self._frames = torch.zeros(1, 0, d, dtype=self.dtype, device=self.device)  # subsampled, not encoded
        self._encoded = 0                       # encoder frames already encoded
        self._caches = [_LayerCache(layer, d, self.dtype, self.device) for layer in self.encoder.encoders]
        # one projection for q, k and v: a chunk has few rows, so per-call cost dominates small matmuls;
        # these and the projected positions are rebuilt per utterance, so weights loaded later are used
        self._attn = [_AttnWeights(layer.self_attn) for layer in self.encoder.encoders]
        self._pos_proj: dict[tuple[int, int, int], torch.Tensor] = {}
        self._rel_index: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def num_encoded(self) -> int:
        """Encoder frames output so far."""
        return self._encoded

    def cache_sizes(self) -> dict:
        """Sizes (frames) of every buffer kept between calls: constant with a left limit."""
        return {"fbank": int(self._fbank.shape[0]), "pending": int(self._frames.shape[1]),
                "kv": max((int(c.k.shape[2]) for c in self._caches), default=0),
                "conv": max((int(c.conv.shape[1]) for c in self._caches), default=0)}

    def fbank_frames_needed(self) -> int:
        """More fbank frames that must arrive before the next full chunk can be encoded."""
        encoder_frames = self._encoded + self.chunk_size
        # encoder frame e reads fbank frames up to 4e + 6, i.e. e + 1 frames need 4e + 7 = 4(e+1) + 3
        return max(0, STRIDE * encoder_frames + RECEPTIVE - STRIDE - self._fbank_total)

    @torch.no_grad()
    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add normalised fbank frames ``[n, F]``; return the encoder outputs ``[m, D]`` of chunks now complete."""
        self._subsample(feats)
        outs = []
        while self._frames.shape[1] >= self.chunk_size:
            outs.append(self._encode_chunk(self._take(self.chunk_size)))
        return self._cat(outs)

    @torch.no_grad()
    def finalize(self) -> torch.Tensor:
        """Encode the frames left (a shorter last chunk) and return them; call :meth:`reset` before reuse."""
        outs = []
        while self._frames.shape[1] > 0:
            outs.append(self._encode_chunk(self._take(min(self.chunk_size, self._frames.shape[1]))))
        return self._cat(outs)

    def _cat(self, outs: list[torch.Tensor]) -> torch.Tensor:
        if not outs:
            return torch.zeros(0, self.encoder.output_size(), dtype=self.dtype, device=self.device)
        return torch.cat(outs, dim=1)[0]

    def _take(self, n: int) -> torch.Tensor:
        chunk, self._frames = self._frames[:, :n], self._frames[:, n:]
        return chunk

    def _subsample(self, feats: torch.Tensor) -> None:
        feats = feats.to(self.device, self.dtype)
        if feats.ndim != 2:
            raise ValueError(f"expected fbank frames [n, F], got shape {tuple(feats.shape)}")
        if feats.shape[0] == 0:
            return
        self._fbank = feats if self._fbank.numel() == 0 else torch.cat([self._fbank, feats])
        self._fbank_total += feats.shape[0]
        done = encoder_frames_for(self._fbank_total - feats.shape[0])
        ready = encoder_frames_for(self._fbank_total)
        if ready > done:
            lo = STRIDE * done - self._fbank_start
            hi = STRIDE * (ready - 1) + RECEPTIVE - self._fbank_start
            x, _ = self.encoder.embed(self._fbank[None, lo:hi], None)
            self._frames = torch.cat([self._frames, x * self.encoder.xscale], dim=1)
            # frames before the next encoder frame's first input are never read again
            drop = STRIDE * ready - self._fbank_start
            self._fbank = self._fbank[drop:].clone()
            self._fbank_start += drop

    def _positions(self, lo: int, hi: int) -> torch.Tensor:
        """Sinusoid table rows for offsets ``lo..hi`` (cached by offset range)."""
        key = (lo, hi)
        table = self._pos_cache.get(key)
        if table is None:
            d = self.encoder.output_size()
            table = sinusoid_table(torch.arange(lo, hi + 1, device=self.device), d, self.dtype)
            if len(self._pos_cache) > 8:  # only a few ranges recur (full chunks); keep it small
                self._pos_cache.clear()
            self._pos_cache[key] = table
        return table

    def _projected_positions(self, attn: RelPositionSelfAttention, lo: int, hi: int) -> torch.Tensor:
        """``linear_pos`` of the sinusoids for offsets ``lo..hi`` as ``[H, n, d]``, cached per layer and range.

        Inference weights are fixed and, once the left limit is reached, every chunk asks for the same
        range, so the projection (about a fifth of a layer's work at 640 ms) runs once, not per chunk.
        """
        key = (id(attn), lo, hi)
        p = self._pos_proj.get(key)
        if p is None:
            p = attn.linear_pos(self._positions(lo, hi)).float().view(-1, attn.h, attn.d_k).transpose(0, 1)
            if len(self._pos_proj) > 8 * len(self.encoder.encoders):
                self._pos_proj.clear()
            self._pos_proj[key] = p
        return p

    def _offset_index(self, c: int, n_keys: int, lo: int, heads: int) -> torch.Tensor:
        """Gather index ``[1, H, c, n_keys]`` of offset ``i - j`` (minus ``lo``), the same for every layer."""
        index = self._rel_index.get((c, n_keys))
        if index is None:
            qi = torch.arange(c, device=self.device)[:, None] + (n_keys - c)
            kj = torch.arange(n_keys, device=self.device)[None, :]
            index = (qi - kj - lo).expand(1, heads, c, n_keys)
            if len(self._rel_index) > 8:
                self._rel_index.clear()
            self._rel_index[(c, n_keys)] = index
        return index

    def _attend(self, attn: RelPositionSelfAttention, weights: _AttnWeights, h: torch.Tensor,
                cache: _LayerCache) -> torch.Tensor:
        """Self-attention of chunk ``h [1, c, D]`` over cached + own keys; updates the cache."""
        c = h.shape[1]
        # projections in the model dtype, the attention itself in float32 (see _LayerCache)
        q, k, v = weights.project(h).float().view(1, c, 3, attn.h, attn.d_k).unbind(2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        keys = torch.cat([cache.k, k], dim=2)
        values = torch.cat([cache.v, v], dim=2)
        n_keys = keys.shape[2]
        # offsets i - j: the chunk's queries are its last c keys, so i - j runs from -(c-1) to n_keys-1
        lo, hi = -(c - 1), n_keys - 1
        p = self._projected_positions(attn, lo, hi)
        content = torch.matmul((q + weights.u).transpose(1, 2), keys.transpose(-2, -1))
        by_offset = torch.matmul((q + weights.v).transpose(1, 2), p.transpose(-2, -1))
        index = self._offset_index(c, n_keys, lo, attn.h)
        scores = (content + torch.gather(by_offset, -1, index)) / math.sqrt(attn.d_k)
        # keys in the own chunk right of the query are allowed: the chunk is seen whole, as offline
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, values).transpose(1, 2).reshape(1, c, attn.h * attn.d_k).to(h.dtype)
        drop = 0 if self.left_chunks is None else max(0, n_keys - self.left_chunks * self.chunk_size)
        cache.k, cache.v = keys[:, :, drop:], values[:, :, drop:]
        return attn.linear_out(out)

    def _layer(self, layer: ChunkConformerLayer, weights: _AttnWeights, x: torch.Tensor,
               cache: _LayerCache) -> torch.Tensor:
        if layer.feed_forward_macaron is not None:
            x = x + layer.ff_scale * layer.feed_forward_macaron(layer.norm_ff_macaron(x))
        x = x + self._attend(layer.self_attn, weights, layer.norm_mha(x), cache)
        conv = layer.conv_module
        if conv is not None:
            g = F.glu(conv.pointwise_conv1(layer.norm_conv(x)), dim=-1)
            window = torch.cat([cache.conv, g], dim=1)
            out = conv.depthwise_step(window)
            cache.conv = window[:, window.shape[1] - conv.half_kernel:]
            x = x + conv.pointwise_conv2(conv.activation(conv.norm(out)))
        x = x + layer.ff_scale * layer.feed_forward(layer.norm_ff(x))
        return layer.norm_final(x)

    def _encode_chunk(self, x: torch.Tensor) -> torch.Tensor:
        for layer, weights, cache in zip(self.encoder.encoders, self._attn, self._caches):
            x = self._layer(layer, weights, x, cache)
        self._encoded += x.shape[1]
        return self.encoder.after_norm(x)
