"""ONNX export of the attention decoder for rescoring a segment's n-best, and its onnxruntime runner.

The graph is :class:`DecoderRescorer`: ESPnet's ``TransformerDecoder`` run teacher-forced over ``N``
hypotheses of one segment, which share its encoder frames, returning each hypothesis's attention score
(what :func:`chunkssl.search.rescoring.attention_scores` returns):

=============  ========================  ==========================================================
name           shape                     meaning
=============  ========================  ==========================================================
``memory``     ``[1, T, D]`` float32     the segment's encoder frames (one memory for all hypotheses)
``ys_in``      ``[N, L]`` int64          ``<sos> + hyp`` per row, padded with any token id (e.g. ``<eos>``)
``ys_lens``    ``[N]`` int64             valid length of each row of ``ys_in``: ``len(hyp) + 1`` (>= 1)
``targets``    ``[N, L]`` int64          ``hyp + <eos>`` per row, padded with -1
``scores``     ``[N]`` float32           ``sum_k log p(targets[k] | ys_in[:k+1], memory)`` over the
                                         non-padded targets
=============  ========================  ==========================================================

``T``, ``N`` and ``L`` are dynamic (``L`` = longest hypothesis + 1), ``D`` is the model dimension. The
memory's keys and values are projected once for the ``N`` hypotheses (matmuls broadcast over the batch),
not once per hypothesis as a batched ``decoder(memory.expand(N, ...))`` would; the positional encoding is
computed in the graph, so there is no table of ``max_len`` rows in the file and no length limit. Sizes,
``<sos>``/``<eos>`` ids and the shapes are in the model's metadata (:func:`read_metadata`).

:class:`OnnxDecoder` runs the file and is an attention scorer for
:func:`~chunkssl.search.rescoring.rescore` (``OnnxDecoder(path)(enc, hyps, sos, eos) -> list[float]``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chunkssl.deploy.onnx_export import ExportRefused, read_metadata, save_graph
from chunkssl.fileio import DataError

__all__ = ["GRAPH", "DECODER_NAME", "DECODER_INT8_NAME", "INPUT_NAMES", "OUTPUT_NAMES", "DecoderRescorer",
           "check_decoder", "export_decoder", "OnnxDecoder"]

GRAPH = "attention_decoder_rescoring"
DECODER_NAME = "decoder.onnx"
DECODER_INT8_NAME = "decoder.int8.onnx"
INPUT_NAMES = ["memory", "ys_in", "ys_lens", "targets"]
OUTPUT_NAMES = ["scores"]
FORMAT_VERSION = 1
OPSET = 17
SUPPORTED = ("ESPnet's TransformerDecoder (decoder: transformer) with input_layer embed, the output layer, "
             "and PositionalEncoding or ScaledPositionalEncoding")


def check_decoder(model: nn.Module) -> nn.Module:
    """The model's attention decoder if the export can express it, else :class:`ExportRefused` saying why."""
    from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
    from espnet2.legacy.nets.pytorch_backend.transformer.embedding import (
        PositionalEncoding,
        ScaledPositionalEncoding,
    )

    decoder = getattr(model, "decoder", None)
    if decoder is None:
        raise ExportRefused("the model has no attention decoder (CTC-only, ctc_weight 1.0): nothing to export "
                            "for rescoring")
    if type(decoder) is not TransformerDecoder:  # subclasses (lightweight/dynamic conv, MD) add other layers
        raise ExportRefused(f"the model's decoder is {type(decoder).__name__}: only {SUPPORTED} can be exported "
                            "for rescoring; the PyTorch decoder can still rescore")
    if any(getattr(layer, "sequential_attn", None) is not None for layer in decoder.decoders):
        raise ExportRefused("decoder layers with a sequential (second-source) attention are not supported by "
                            f"the ONNX export; supported: {SUPPORTED}")
    embed = decoder.embed
    if not isinstance(embed[0], nn.Embedding):
        raise ExportRefused(f"decoder input_layer {type(embed[0]).__name__} is not supported by the ONNX export; "
                            f"supported: {SUPPORTED}")
    pos = embed[-1]
    if type(pos) not in (PositionalEncoding, ScaledPositionalEncoding) or getattr(pos, "reverse", False):
        raise ExportRefused(f"decoder positional encoding {type(pos).__name__} is not supported by the ONNX "
                            f"export; supported: {SUPPORTED}")
    if decoder.output_layer is None:
        raise ExportRefused("the decoder has no output layer (use_output_layer: false): no token "
                            "log-probabilities to score")
    if next(decoder.parameters()).dtype != torch.float32:
        raise ExportRefused("export a float32 model (load it without --dtype)")
    return decoder


def _attention(attn: nn.Module, query: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """ESPnet's ``MultiHeadedAttention`` (plain path); ``kv`` may have batch 1 for a shared memory.

    Written out rather than called because the module picks flash/SDPA paths at run time and projects
    keys and values per batch row; here ``[1, T, D]`` memory broadcasts over the ``N`` queries.
    """
    n, h, d_k = query.shape[0], attn.h, attn.d_k
    q = attn.q_norm(attn.linear_q(query).view(n, -1, h, d_k).transpose(1, 2))                 # [N, H, L, d]
    k = attn.k_norm(attn.linear_k(kv).view(kv.shape[0], -1, h, d_k).transpose(1, 2))      # [B, H, K, d]
    v = attn.linear_v(kv).view(kv.shape[0], -1, h, d_k).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)                         # [N, H, L, K]
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        hidden = mask.unsqueeze(1).eq(0)
        weights = torch.softmax(scores.masked_fill(hidden, torch.finfo(scores.dtype).min), dim=-1)
        weights = weights.masked_fill(hidden, 0.0)
    out = torch.matmul(weights, v).transpose(1, 2).reshape(n, -1, h * d_k)
    return attn.linear_out(out)


def _layer(layer: nn.Module, x: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """``DecoderLayer.forward`` without a cache (teacher forcing), the memory unmasked and shared."""
    pre = layer.normalize_before
    residual, t = x, (layer.norm1(x) if pre else x)
    att = _attention(layer.self_attn, t, t, mask)
    x = residual + (layer.concat_linear1(torch.cat((t, att), dim=-1)) if layer.concat_after else att)
    if not pre:
        x = layer.norm1(x)
    residual, t = x, (layer.norm2(x) if pre else x)
    att = _attention(layer.src_attn, t, memory, None)
    x = residual + (layer.concat_linear2(torch.cat((t, att), dim=-1)) if layer.concat_after else att)
    if not pre:
        x = layer.norm2(x)
    residual, t = x, (layer.norm3(x) if pre else x)
    x = residual + layer.feed_forward(t)
    return x if pre else layer.norm3(x)


class DecoderRescorer(nn.Module):
    """Teacher-forced attention scores of ``N`` hypotheses over one memory (inputs/outputs: module docstring)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.decoder = check_decoder(model).eval()
        self.embedding, pos = self.decoder.embed[0], self.decoder.embed[-1]
        d = self.embedding.embedding_dim
        # ESPnet's table: pe[:, 2i] = sin(p * f_i), pe[:, 2i+1] = cos(p * f_i); computed in the graph
        freqs = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
        self.register_buffer("freqs", freqs, persistent=False)
        self.pos = pos
        self.sos, self.eos = int(getattr(model, "sos", -1)), int(getattr(model, "eos", -1))

    @property
    def d_model(self) -> int:
        """Model (memory) dimension ``D``."""
        return self.embedding.embedding_dim

    @property
    def vocab_size(self) -> int:
        """Output vocabulary ``V``."""
        return self.decoder.output_layer.out_features

    def _embed(self, ys_in: torch.Tensor) -> torch.Tensor:
        """Token embedding plus positional encoding, as ``decoder.embed`` (dropout off)."""
        x = self.embedding(ys_in)
        steps = torch.ones_like(ys_in[0]).cumsum(0).to(torch.float32) - 1.0   # 0..L-1, L dynamic in the graph
        angles = steps[:, None] * self.freqs[None, :]
        pe = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1).flatten(1)  # interleaved sin/cos
        if hasattr(self.pos, "alpha"):  # ScaledPositionalEncoding
            return x + self.pos.alpha * pe
        return x * self.pos.xscale + pe

    def forward(self, memory: torch.Tensor, ys_in: torch.Tensor, ys_lens: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        """``scores [N]``: the summed log-probabilities of each row's non-padded targets."""
        idx = torch.ones_like(ys_in[0]).cumsum(0) - 1                             # [L]
        causal = idx[None, :] <= idx[:, None]                                      # [L, L]
        mask = (idx[None, :] < ys_lens[:, None])[:, None, :] & causal[None]        # [N, L, L], as ESPnet's
        x = self._embed(ys_in)
        for layer in self.decoder.decoders:
            x = _layer(layer, x, mask, memory)
        if self.decoder.normalize_before:
            x = self.decoder.after_norm(x)
        logp = torch.log_softmax(self.decoder.output_layer(x), dim=-1)
        picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return picked.masked_fill(targets < 0, 0.0).sum(-1)

    def shapes(self) -> dict[str, list]:
        """Shape of every input and output (``T``, ``N``, ``L`` dynamic, by name)."""
        return {"memory": [1, "T", self.d_model], "ys_in": ["N", "L"], "ys_lens": ["N"], "targets": ["N", "L"],
                "scores": ["N"]}

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs for tracing: 3 hypotheses of different lengths over 9 memory frames."""
        gen = torch.Generator().manual_seed(0)
        memory = torch.randn(1, 9, self.d_model, generator=gen)
        top = self.vocab_size - 1
        hyps = [tuple(min(t, top) for t in (1, 2, 3, 4)), (min(5, top),), ()]
        return (memory, *map(torch.from_numpy, _pack(hyps, max(self.sos, 0), max(self.eos, 0))))


def _pack(hyps: list[tuple[int, ...]], sos: int, eos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ys_in, ys_lens, targets)`` of ``hyps`` (int64), laid out as the graph takes them."""
    n, longest = len(hyps), max(len(h) for h in hyps) + 1
    ys_in = np.full((n, longest), eos, dtype=np.int64)
    targets = np.full((n, longest), -1, dtype=np.int64)
    for i, h in enumerate(hyps):
        ys_in[i, 0] = sos
        ys_in[i, 1:len(h) + 1] = h
        targets[i, :len(h)] = h
        targets[i, len(h)] = eos
    return ys_in, np.array([len(h) + 1 for h in hyps], dtype=np.int64), targets


def metadata(graph: DecoderRescorer) -> dict[str, str]:
    """The ONNX metadata of the decoder graph: sizes, token ids and every input/output shape."""
    dec = graph.decoder
    layer = dec.decoders[0]
    meta = {
        "chunkssl_onnx_format": FORMAT_VERSION, "graph": GRAPH, "decoder": "transformer",
        "d_model": graph.d_model, "vocab_size": graph.vocab_size, "sos_id": graph.sos, "eos_id": graph.eos,
        "num_layers": len(dec.decoders), "attention_heads": layer.self_attn.h, "head_dim": layer.self_attn.d_k,
        "normalize_before": int(bool(dec.normalize_before)), "concat_after": int(bool(layer.concat_after)),
        "inputs": json.dumps(INPUT_NAMES), "outputs": json.dumps(OUTPUT_NAMES), "shapes": json.dumps(graph.shapes()),
    }
    return {key: str(value) for key, value in meta.items()}


def export_decoder(model: nn.Module, path: str | Path) -> dict[str, str]:
    """Write the rescoring graph of ``model``'s attention decoder to ``path`` (atomically); returns its metadata."""
    graph = DecoderRescorer(model).eval()
    axes = {"memory": {1: "T"}, "ys_in": {0: "N", 1: "L"}, "ys_lens": {0: "N"}, "targets": {0: "N", 1: "L"},
            "scores": {0: "N"}}
    meta = metadata(graph)
    save_graph(graph, graph.example_inputs(), path, INPUT_NAMES, OUTPUT_NAMES, meta, axes)
    return meta


class OnnxDecoder:
    """Runs an exported ``decoder.onnx`` (or its int8 version) in onnxruntime; an attention scorer.

    Args:
        path: a file written by :func:`export_decoder` (or quantised from one).
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file (write it with python -m chunkssl.bin.export_onnx)")
        self.meta = read_metadata(self.path)
        if self.meta.get("graph") != GRAPH:
            raise DataError(f"{self.path}: not a chunkssl attention decoder export (graph "
                            f"{self.meta.get('graph')!r}, expected {GRAPH!r}); write it with "
                            "python -m chunkssl.bin.export_onnx")
        self.d_model, self.vocab_size = int(self.meta["d_model"]), int(self.meta["vocab_size"])
        self.sos, self.eos = int(self.meta["sos_id"]), int(self.meta["eos_id"])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def run(self, memory: np.ndarray, ys_in: np.ndarray, ys_lens: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One ``session.run`` on the graph's inputs; returns ``scores [N]`` (float32)."""
        feeds = dict(zip(INPUT_NAMES, (memory, ys_in, ys_lens, targets)))
        return self.session.run(OUTPUT_NAMES, feeds)[0]

    def scores(self, enc, hyps: list[tuple[int, ...]], sos: int, eos: int) -> list[float]:
        """Decoder log-probability of each ``hyp + <eos>`` given encoder frames ``enc [T, D]`` (torch or numpy)."""
        if not hyps:
            return []
        if hasattr(enc, "detach"):  # a torch tensor
            enc = enc.detach().cpu().float().numpy()
        memory = np.ascontiguousarray(enc, dtype=np.float32)
        if memory.ndim != 2 or memory.shape[0] == 0 or memory.shape[1] != self.d_model:
            raise ValueError(f"{self.path}: expected encoder frames [T >= 1, {self.d_model}], got shape "
                             f"{memory.shape}")
        ids = [t for h in hyps for t in h] + [sos, eos]
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            raise ValueError(f"{self.path}: token ids must be in [0, {self.vocab_size}), got {min(ids)}..{max(ids)}")
        ys_in, ys_lens, targets = _pack(hyps, sos, eos)
        return self.run(memory[None], ys_in, ys_lens, targets).astype(np.float64).tolist()

    __call__ = scores
