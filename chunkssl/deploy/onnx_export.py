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

Codec-ASR token models (``frontend: token``, ``input_layer: linear``) export as :class:`CodesEncoderStep`:
the first input is ``codes [1, C, G]`` int64, the chunk's ``C`` tokenizer codes of ``G`` channels (one per
40 ms encoder frame; a shorter last chunk is padded with valid codes, e.g. zeros), and the token
frontend's embedding and the encoder's linear input layer run in the graph; everything else is as above.

Metadata format (``chunkssl_onnx_format``): 1 for fbank steps, which are written exactly as before (no
``input`` key: a format-1 step takes fbank); 2 adds ``input`` (``"codes"``) and the code sizes
(``code_channels``, ``code_groups``, ``code_levels``, ``code_kind``). A reader knows every format up to
:data:`FORMAT_VERSION` and refuses newer ones (:func:`step_input`).
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
from chunkssl.fsq.frontend import TokenFrontend

__all__ = ["ExportRefused", "save_graph", "check_options", "EncoderStep", "CodesEncoderStep", "make_step", "export_encoder_step",
           "read_metadata", "step_input", "initial_caches", "INPUT_NAMES", "CODES_INPUT_NAMES", "OUTPUT_NAMES"]

INPUT_NAMES = ["fbank", "k_cache", "v_cache", "conv_cache", "cache_len", "chunk_len"]
CODES_INPUT_NAMES = ["codes", *INPUT_NAMES[1:]]
OUTPUT_NAMES = ["encoder_out", "ctc_logp", "k_cache_out", "v_cache_out", "conv_cache_out", "cache_len_out"]
FORMAT_VERSION = 2  # the newest metadata format written and read here (see the module docstring)
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


def _check_model(model: nn.Module, input_layer: str = "conv2d") -> ChunkConformerEncoder:
    """The model's encoder if the export can express it, else :class:`ExportRefused`."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, ChunkConformerEncoder):
        raise ExportRefused(f"the model's encoder is {type(encoder).__name__}, not chunk_conformer: "
                            "only chunk-conformer encoders stream")
    if encoder.input_layer != input_layer:
        raise ExportRefused(f"input_layer {encoder.input_layer!r} with "
                            f"{'a token frontend' if input_layer == 'linear' else 'fbank input'} is not supported "
                            "by the ONNX export: fbank models need conv2d, Codec-ASR token models (frontend: "
                            "token) need linear")
    if getattr(model, "preencoder", None) is not None:
        raise ExportRefused("models with a preencoder are not supported by the ONNX export (nor by streaming)")
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
    convolution step, whose sum of taps does not export. Subclasses change only the first input
    (:meth:`embed_input`, :meth:`input_shape`, :meth:`input_metadata`): see :class:`CodesEncoderStep`.
    """

    input_names = INPUT_NAMES
    input_dtype = torch.float32
    input_layer = "conv2d"
    format_version = 1  # unchanged since the first export, so readers of format 1 run fbank steps

    def __init__(self, model: nn.Module, chunk_ms: int, left_chunks: int | None):
        super().__init__()
        self.chunk, self.left = check_options(chunk_ms, left_chunks)
        self.chunk_ms = int(chunk_ms)
        self.encoder = _check_model(model, self.input_layer).eval()
        self.ctc = model.ctc.eval()
        self.mvn = None
        normalize = getattr(model, "normalize", None)
        if normalize is not None:
            mean = normalize.mean.float() if normalize.norm_means else None
            std = normalize.std.float() if normalize.norm_vars else None
            self.mvn = (mean, std)
        param = next(self.encoder.parameters())
        self.plans: list[StepPlan] = [c.plan for c in self.encoder.init_caches(torch.float32, param.device)]
        self.eval()  # torch.onnx.export restores the step's mode afterwards: train() would reach the model's modules

    # sizes ---------------------------------------------------------------------------------------
    @property
    def kv_frames(self) -> int:
        """Key/value cache frames per layer: ``L * C``."""
        return self.left * self.chunk

    @property
    def fbank_window(self) -> int:
        """Fbank frames one step reads: ``4C + 3`` (``C`` encoder frames of 7 frames each, stride 4)."""
        return STRIDE * (self.chunk - 1) + RECEPTIVE

    def input_shape(self) -> list[int]:
        """Shape of the first input: the chunk's fbank window."""
        return [1, self.fbank_window, self.encoder.input_size]

    def input_metadata(self) -> dict[str, object]:
        """Metadata of the first input: fbank frame rate, window and hop, subsampling."""
        return {"fbank_shift_ms": FRAME_MS // STRIDE, "fbank_dim": self.encoder.input_size,
                "fbank_window": self.fbank_window, "fbank_hop": STRIDE * self.chunk,
                "subsampling_stride": STRIDE, "subsampling_receptive": RECEPTIVE}

    def shapes(self) -> dict[str, list[int]]:
        """Shape of every input and output."""
        enc = self.encoder
        attn = enc.encoders[0].self_attn
        n, d = len(enc.encoders), enc.output_size()
        half = enc.encoders[0].conv_module.half_kernel
        kv = [n, attn.h, self.kv_frames, attn.d_k]
        vocab = self.ctc.ctc_lo.out_features
        ins = {self.input_names[0]: self.input_shape(), "k_cache": kv, "v_cache": kv,
               "conv_cache": [n, half, d], "cache_len": [1], "chunk_len": [1]}
        outs = {"encoder_out": [1, self.chunk, d], "ctc_logp": [1, self.chunk, vocab], "k_cache_out": kv,
                "v_cache_out": kv, "conv_cache_out": [n, half, d], "cache_len_out": [1]}
        return {**ins, **outs}

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Zero inputs of the right shapes (the start of a stream), for tracing."""
        s = self.shapes()
        first = torch.zeros(s[self.input_names[0]], dtype=self.input_dtype)
        return (first, *initial_caches(s), torch.tensor([self.chunk]))

    # the step ------------------------------------------------------------------------------------
    def embed_input(self, fbank: torch.Tensor) -> torch.Tensor:
        """Encoder frames ``[1, C, D]`` of the first input: global MVN, conv2d subsampling."""
        x = fbank
        if self.mvn is not None:
            mean, std = self.mvn
            if mean is not None:
                x = x - mean
            if std is not None:
                x = x / std
        return self.encoder.embed_window(x)

    def forward(self, fbank: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                conv_cache: torch.Tensor, cache_len: torch.Tensor,
                chunk_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode one chunk; returns ``(encoder_out, ctc_logp, k_cache, v_cache, conv_cache, cache_len)``."""
        x = self.embed_input(fbank)                                         # [1, C, D]
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


def _check_token_frontend(model: nn.Module) -> TokenFrontend:
    """The token frontend of a Codec-ASR model if the graph can hold it, else :class:`ExportRefused`."""
    frontend = getattr(model, "frontend", None)
    if type(frontend) is not TokenFrontend:  # a subclass may embed otherwise than the methods traced here
        raise ExportRefused(f"the model's frontend is {type(frontend).__name__}, not the token frontend "
                            "(frontend: token): only TokenFrontend embeddings are put in the codes graph")
    if getattr(model, "normalize", None) is not None:
        raise ExportRefused(f"normalize {type(model.normalize).__name__} on a token model: the streaming "
                            "codec decoder does not apply it; train token models with normalize: null")
    return frontend


class CodesEncoderStep(EncoderStep):
    """The streaming step of a Codec-ASR token model: ``codes [1, C, G]`` (int64) in, as :class:`EncoderStep` out.

    The token frontend's embedding (``unit_embeddings`` + ``combine_units``, what
    :class:`~chunkssl.codec.streaming.CodecInput` runs in eval mode) and the encoder's linear input
    layer are in the graph; codes must lie in their channel's levels (the graph does not check them).
    """

    input_names = CODES_INPUT_NAMES
    input_dtype = torch.int64
    input_layer = "linear"
    format_version = 2  # the input key and the code sizes are new: format-1 readers would feed fbank

    def __init__(self, model: nn.Module, chunk_ms: int, left_chunks: int | None):
        frontend = _check_token_frontend(model)
        super().__init__(model, chunk_ms, left_chunks)
        self.frontend = frontend.eval()

    def input_shape(self) -> list[int]:
        """Shape of the first input: the chunk's codes."""
        return [1, self.chunk, len(self.frontend.levels)]

    def input_metadata(self) -> dict[str, object]:
        """Metadata of the first input: that it is codes, their channels, groups and levels."""
        fe = self.frontend
        return {"input": "codes", "code_frame_ms": FRAME_MS, "code_channels": len(fe.levels), "code_kind": fe.kind,
                "code_groups": json.dumps(fe.groups), "code_levels": json.dumps(fe.levels),
                "frontend_embed": fe.embed, "frontend_combine": fe.combine}

    def embed_input(self, codes: torch.Tensor) -> torch.Tensor:
        """Encoder frames ``[1, C, D]`` of the chunk's codes: token frontend, linear input layer."""
        return self.encoder.embed_window(self.frontend.combine_units(self.frontend.unit_embeddings(codes)))


def make_step(model: nn.Module, chunk_ms: int, left_chunks: int | None) -> EncoderStep:
    """The step of ``model``: :class:`CodesEncoderStep` for a token model (a token frontend), else fbank."""
    if isinstance(getattr(model, "frontend", None), TokenFrontend):
        return CodesEncoderStep(model, chunk_ms, left_chunks)
    return EncoderStep(model, chunk_ms, left_chunks)


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
        "chunkssl_onnx_format": step.format_version, "graph": "streaming_encoder_step",
        "chunk_ms": step.chunk_ms, "chunk_frames": step.chunk, "left_chunks": step.left,
        "encoder_frame_ms": FRAME_MS, **step.input_metadata(),
        "num_layers": len(enc.encoders), "attention_heads": attn.h, "head_dim": attn.d_k,
        "d_model": enc.output_size(), "kv_cache_frames": step.kv_frames,
        "conv_cache_frames": enc.encoders[0].conv_module.half_kernel,
        "vocab_size": step.ctc.ctc_lo.out_features, "blank_id": -1 if blank_id is None else int(blank_id),
        "normalize": "global_mvn_in_graph" if step.mvn is not None else "none",
        "inputs": json.dumps(step.input_names), "outputs": json.dumps(OUTPUT_NAMES),
        "shapes": json.dumps(step.shapes()),
    }
    return {key: str(value) for key, value in meta.items()}


@torch.no_grad()
def save_graph(graph: nn.Module, inputs: tuple[torch.Tensor, ...], path: str | Path, input_names: list[str],
               output_names: list[str], meta: dict[str, str], dynamic_axes: dict | None = None) -> None:
    """Trace ``graph`` (in eval mode) on ``inputs`` into the ONNX file ``path``, with ``meta`` as its metadata.

    Written to a temporary file and moved into place once checked, so ``path`` is never half-written.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():  # the TorchScript exporter notes every slice it cannot fold
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            # and the tracer every shape it records (fixed in the step; dynamic axes are declared)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(graph, inputs, str(tmp), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def export_encoder_step(model: nn.Module, path: str | Path, chunk_ms: int, left_chunks: int | None) -> dict[str, str]:
    """Write the streaming encoder step of ``model`` (ESPnet ASR model, fbank or token) to ``path``; returns
    its metadata."""
    step = make_step(model, chunk_ms, left_chunks)
    meta = metadata(step, getattr(model, "blank_id", None))
    save_graph(step, step.example_inputs(), path, step.input_names, OUTPUT_NAMES, meta)
    return meta


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an exported step (as written by :func:`export_encoder_step`)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in proto.metadata_props}


def step_input(meta: dict[str, str], path: str | Path) -> str:
    """What the step in ``path`` (metadata ``meta``) takes, ``"fbank"`` or ``"codes"``; a DataError if it is
    no chunkssl step or of a newer format than this code reads."""
    if meta.get("graph") != "streaming_encoder_step":
        raise DataError(f"{path} is not a chunkssl streaming encoder step (no such metadata); export one with "
                        "python -m chunkssl.bin.export_onnx")
    version = int(meta.get("chunkssl_onnx_format", "1"))
    if version > FORMAT_VERSION:
        raise DataError(f"{path}: metadata format {version} is newer than this chunkssl reads ({FORMAT_VERSION}); "
                        "update chunkssl or export the model again with this version")
    return meta.get("input", "fbank")  # format 1 had no input key: fbank
