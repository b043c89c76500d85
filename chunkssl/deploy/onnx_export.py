"""ONNX export of one streaming encoder step of a chunk-conformer ASR model, with explicit caches.

The graph is :class:`EncoderStep`: the step :class:`~chunkssl.streaming.encoder.StreamingEncoder` takes
for one chunk, with its caches as fixed-size tensors so that no shape ever changes:

=================  ==========================  =====================================================
name               shape                       meaning
=================  ==========================  =====================================================
``fbank``          ``[1, 4C + 3, F]`` float32  raw fbank frames of the chunk (global MVN is in the graph);
                                               window ``n`` starts at fbank frame ``4Cn`` (hop ``4C``), the
                                               last 3 frames are the conv2d subsampling's look-ahead
``k_cache``        ``[N, H, L*C, d]`` float32  every layer's attention keys of the last ``L`` chunks
``v_cache``        ``[N, H, L*C, d]`` float32  the values, same layout
``conv_cache``     ``[N, h, D]`` float32       every layer's last ``h`` GLU outputs (conv left context)
``cache_len``      ``[1]`` int64               valid frames at the end of ``k_cache``/``v_cache`` (0..L*C)
``chunk_len``      ``[1]`` int64               encoder frames of this chunk (``C``; fewer for the last one,
                                               whose fbank window is padded with anything, e.g. zeros)
``encoder_out``    ``[1, C, D]`` float32       the chunk's encoder frames (after the final LayerNorm; the
                                               first ``chunk_len`` are valid)
``ctc_logp``       ``[1, C, V]`` float32       CTC log-probabilities of those frames
``*_out``          as the inputs               the caches for the next chunk
=================  ==========================  =====================================================

``C`` = chunk in encoder frames (``chunk_ms / 40``), ``L`` = left chunks, ``N`` layers, ``H`` heads of
``d`` dims, ``D = H * d``, ``h = (cnn_module_kernel - 1) / 2``. A stream starts with zero caches and
``cache_len = 0``. Keys before the valid ones are masked out of the attention, so the first ``L``
chunks give what the PyTorch streaming encoder gives with its shorter caches; frames past
``chunk_len`` are masked too, so the shorter last chunk gives what PyTorch's ``finalize`` gives.
These sizes and the frame rates are in the model's metadata (:func:`read_metadata`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from chunkssl.chunking import FRAME_MS, RECEPTIVE, STRIDE, chunk_frames
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.encoder.attention import StepPlan
from chunkssl.encoder.convolution import ChunkConvolutionModule
from chunkssl.encoder.layer import ChunkConformerLayer
from chunkssl.fileio import DataError

__all__ = ["ExportRefused", "check_options", "EncoderStep", "export_encoder_step", "read_metadata",
           "initial_caches", "INPUT_NAMES", "OUTPUT_NAMES"]

INPUT_NAMES = ["fbank", "k_cache", "v_cache", "conv_cache", "cache_len", "chunk_len"]
OUTPUT_NAMES = ["encoder_out", "ctc_logp", "k_cache_out", "v_cache_out", "conv_cache_out", "cache_len_out"]
FORMAT_VERSION = 1
OPSET = 17


class ExportRefused(DataError):
    """The model or the options ask for something the fixed-shape ONNX step cannot express."""


def check_options(chunk_ms: int, left_chunks: int | None) -> tuple[int, int]:
    """``(C, L)`` from the export options, or :class:`ExportRefused` saying why not."""
    try:
        chunk = chunk_frames(int(chunk_ms)) if int(chunk_ms) > 0 else None
    except (TypeError, ValueError):
        raise ExportRefused(f"--chunk-ms {chunk_ms!r}: not a positive multiple of the {FRAME_MS} ms encoder frame "
                            "(e.g. 160, 320, 640, 1280)") from None
    if chunk is None:
        raise ExportRefused(f"--chunk-ms {chunk_ms!r}: the ONNX step needs a finite chunk (a positive "
                            f"multiple of {FRAME_MS} ms such as 640); offline decoding is not a streaming step")
    if left_chunks is None or int(left_chunks) < 0:
        raise ExportRefused(f"--left-chunks {left_chunks}: unlimited left context needs a key/value cache that "
                            "grows with the stream, which a fixed-shape ONNX graph cannot hold; give a limit "
                            "(e.g. 4, or what the model was trained with)")
    if int(left_chunks) == 0:
        raise ExportRefused("--left-chunks 0: an empty key/value cache is not supported by the export; "
                            "give at least 1")
    return chunk, int(left_chunks)


def _check_model(model: nn.Module) -> ChunkConformerEncoder:
    """The model's encoder if the export can express it, else :class:`ExportRefused`."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, ChunkConformerEncoder):
        raise ExportRefused(f"the model's encoder is {type(encoder).__name__}, not chunk_conformer: "
                            "only chunk-conformer encoders stream")
    if encoder.input_layer != "conv2d":
        raise ExportRefused(f"input_layer {encoder.input_layer!r} (e.g. Codec-ASR token models) is not "
                            "supported by the ONNX export yet; only conv2d (fbank) models are")
    if any(layer.conv_module is None for layer in encoder.encoders):
        raise ExportRefused("models without the convolution module (use_cnn_module: false) are not "
                            "supported by the ONNX export yet")
    if getattr(model, "ctc", None) is None:
        raise ExportRefused("the model has no CTC head (ctc_weight 0?): the step outputs CTC log-probabilities")
    normalize = getattr(model, "normalize", None)
    if normalize is not None and type(normalize).__name__ != "GlobalMVN":
        raise ExportRefused(f"normalize {type(normalize).__name__} cannot run chunk by chunk; "
                            "only global_mvn (or none) can be put in the graph")
    if next(encoder.parameters()).dtype != torch.float32:
        raise ExportRefused("export a float32 model (load it without --dtype)")
    return encoder


class EncoderStep(nn.Module):
    """One streaming encoder step over flat tensors (see the module docstring for inputs and outputs).

    The layers' own modules and each attention's :class:`~chunkssl.encoder.attention.StepPlan` do the
    work; only the attention step is repeated here, to mask the cache slots not yet filled, and the
    convolution step, whose sum of taps does not export.
    """

    def __init__(self, model: nn.Module, chunk_ms: int, left_chunks: int | None):
        super().__init__()
        self.chunk, self.left = check_options(chunk_ms, left_chunks)
        self.chunk_ms = int(chunk_ms)
        self.encoder = _check_model(model).eval()
        self.ctc = model.ctc.eval()
        self.mvn = None
        normalize = getattr(model, "normalize", None)
        if normalize is not None:
            mean = normalize.mean.float() if normalize.norm_means else None
            std = normalize.std.float() if normalize.norm_vars else None
            self.mvn = (mean, std)
        param = next(self.encoder.parameters())
        self.plans: list[StepPlan] = [c.plan for c in self.encoder.init_caches(torch.float32, param.device)]

    # sizes ---------------------------------------------------------------------------------------
    @property
    def kv_frames(self) -> int:
        """Key/value cache frames per layer: ``L * C``."""
        return self.left * self.chunk

    @property
    def fbank_window(self) -> int:
        """Fbank frames one step reads: ``4C + 3`` (``C`` encoder frames of 7 frames each, stride 4)."""
        return STRIDE * (self.chunk - 1) + RECEPTIVE

    def shapes(self) -> dict[str, list[int]]:
        """Shape of every input and output."""
        enc = self.encoder
        attn = enc.encoders[0].self_attn
        n, d = len(enc.encoders), enc.output_size()
        half = enc.encoders[0].conv_module.half_kernel
        kv = [n, attn.h, self.kv_frames, attn.d_k]
        vocab = self.ctc.ctc_lo.out_features
        ins = {"fbank": [1, self.fbank_window, enc.input_size], "k_cache": kv, "v_cache": kv,
               "conv_cache": [n, half, d], "cache_len": [1], "chunk_len": [1]}
        outs = {"encoder_out": [1, self.chunk, d], "ctc_logp": [1, self.chunk, vocab], "k_cache_out": kv,
                "v_cache_out": kv, "conv_cache_out": [n, half, d], "cache_len_out": [1]}
        return {**ins, **outs}

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Zero inputs of the right shapes (the start of a stream), for tracing."""
        s = self.shapes()
        return (torch.zeros(s["fbank"]), *initial_caches(s), torch.tensor([self.chunk]))

    # the step ------------------------------------------------------------------------------------
    def forward(self, fbank: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                conv_cache: torch.Tensor, cache_len: torch.Tensor,
                chunk_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode one chunk; returns ``(encoder_out, ctc_logp, k_cache, v_cache, conv_cache, cache_len)``."""
        x = fbank
        if self.mvn is not None:
            mean, std = self.mvn
            if mean is not None:
                x = x - mean
            if std is not None:
                x = x / std
        x = self.encoder.embed_window(x)                                   # [1, C, D]
        k_total = self.kv_frames + self.chunk
        slots = torch.arange(k_total, device=x.device)
        valid = (slots >= self.kv_frames - cache_len) & (slots < self.kv_frames + chunk_len)  # keys [K + C]
        frames = torch.arange(self.chunk, device=x.device) < chunk_len                       # chunk [C]
        ks, vs, convs = [], [], []
        for i, (layer, plan) in enumerate(zip(self.encoder.encoders, self.plans)):
            x, k, v, conv = _layer_step(layer, plan, x, k_cache[i:i + 1], v_cache[i:i + 1],
                                        conv_cache[i:i + 1], valid, frames, chunk_len)
            ks.append(k)
            vs.append(v)
            convs.append(conv)
        y = self.encoder.after_norm(x)
        new_len = torch.clamp(cache_len + chunk_len, max=self.kv_frames)
        return (y, self.ctc.log_softmax(y), torch.cat(ks), torch.cat(vs), torch.cat(convs), new_len)


def _attention_step(layer: ChunkConformerLayer, plan: StepPlan, x: torch.Tensor, keys: torch.Tensor,
                    values: torch.Tensor, valid: torch.Tensor, chunk_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``RelPositionSelfAttention.forward_step`` with invalid keys masked; caches keep their size."""
    c = x.shape[1]
    out, keys, values = layer.self_attn.forward_step(x, keys, values, plan, key_mask=valid)
    n_keys = keys.shape[2]
    keep = chunk_len + torch.arange(n_keys - c, device=x.device)  # the last K keys up to the chunk's end
    return out, keys.index_select(2, keep), values.index_select(2, keep)


def _layer_step(layer: ChunkConformerLayer, plan: StepPlan, x: torch.Tensor, keys: torch.Tensor,
                values: torch.Tensor, conv: torch.Tensor, valid: torch.Tensor, frames: torch.Tensor,
                chunk_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``ChunkConformerLayer.forward_step`` over flat caches (the attention masked)."""
    if layer.feed_forward_macaron is not None:
        x = x + layer.ff_scale * layer.feed_forward_macaron(layer.norm_ff_macaron(x))
    att, keys, values = _attention_step(layer, plan, layer.norm_mha(x), keys, values, valid, chunk_len)
    x = x + att
    out, conv = _conv_step(layer.conv_module, layer.norm_conv(x), conv, frames, chunk_len)
    x = x + out
    x = x + layer.ff_scale * layer.feed_forward(layer.norm_ff(x))
    return layer.norm_final(x), keys, values, conv


def _conv_step(module: ChunkConvolutionModule, x: torch.Tensor, cache: torch.Tensor, frames: torch.Tensor,
               chunk_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``ChunkConvolutionModule.forward_step`` with conv1d (:meth:`depthwise`) for the sum of taps, which
    does not export (``unfold``; the same up to float rounding), and frames past ``chunk_len`` zeroed."""
    glu = F.glu(module.pointwise_conv1(x), dim=-1) * frames[None, :, None].to(x.dtype)
    window = torch.cat([cache, glu], dim=1)
    out = module.depthwise(window)
    cache = window.index_select(1, chunk_len + torch.arange(module.half_kernel, device=x.device))
    return module.pointwise_conv2(module.activation(module.norm(out))), cache


def initial_caches(shapes: dict[str, list[int]]) -> tuple[torch.Tensor, ...]:
    """``(k_cache, v_cache, conv_cache, cache_len)`` at the start of a stream, from :meth:`EncoderStep.shapes`."""
    return (torch.zeros(shapes["k_cache"]), torch.zeros(shapes["v_cache"]), torch.zeros(shapes["conv_cache"]),
            torch.zeros(1, dtype=torch.int64))


def metadata(step: EncoderStep, blank_id: int | None = None) -> dict[str, str]:
    """The ONNX metadata of a step: chunk, frame rates, cache sizes and every input/output shape."""
    enc = step.encoder
    attn = enc.encoders[0].self_attn
    meta = {
        "chunkssl_onnx_format": FORMAT_VERSION, "graph": "streaming_encoder_step",
        "chunk_ms": step.chunk_ms, "chunk_frames": step.chunk, "left_chunks": step.left,
        "encoder_frame_ms": FRAME_MS, "fbank_shift_ms": FRAME_MS // STRIDE, "fbank_dim": enc.input_size,
        "fbank_window": step.fbank_window, "fbank_hop": STRIDE * step.chunk,
        "subsampling_stride": STRIDE, "subsampling_receptive": RECEPTIVE,
        "num_layers": len(enc.encoders), "attention_heads": attn.h, "head_dim": attn.d_k,
        "d_model": enc.output_size(), "kv_cache_frames": step.kv_frames,
        "conv_cache_frames": enc.encoders[0].conv_module.half_kernel,
        "vocab_size": step.ctc.ctc_lo.out_features, "blank_id": -1 if blank_id is None else int(blank_id),
        "normalize": "global_mvn_in_graph" if step.mvn is not None else "none",
        "inputs": json.dumps(INPUT_NAMES), "outputs": json.dumps(OUTPUT_NAMES), "shapes": json.dumps(step.shapes()),
    }
    return {key: str(value) for key, value in meta.items()}


@torch.no_grad()
def export_encoder_step(model: nn.Module, path: str | Path, chunk_ms: int, left_chunks: int | None) -> dict[str, str]:
    """Write the streaming encoder step of ``model`` (ESPnet ASR model) to ``path``; returns its metadata."""
    import onnx

    step = EncoderStep(model, chunk_ms, left_chunks)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():  # the TorchScript exporter notes every slice it cannot fold
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(step, step.example_inputs(), str(tmp), input_names=INPUT_NAMES,
                              output_names=OUTPUT_NAMES, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        proto = onnx.load(str(tmp))
        meta = metadata(step, getattr(model, "blank_id", None))
        onnx.helper.set_model_props(proto, meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return meta


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an exported step (as written by :func:`export_encoder_step`)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in proto.metadata_props}
