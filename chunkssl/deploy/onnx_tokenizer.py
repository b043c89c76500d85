"""ONNX export of an FSQ/RVQ fbank tokenizer's code computation, and its onnxruntime streaming run.

The graph (``tokenizer.onnx``) is :class:`TokenizerCodes`, what
:class:`~chunkssl.codec.streaming.StreamingTokenizer` computes over a window, CMVN and stacking included:

==========  ==========================  ==============================================================
name        shape                       meaning
==========  ==========================  ==============================================================
``fbank``   ``[1, S*T, F]`` float32     raw fbank frames of ``T`` whole stacks (``S`` = stack), ``T``
                                        dynamic; the window starts on a stack boundary
``codes``   ``[1, T, G]`` int64         the codes of those ``T`` stacked frames, the window's edges
                                        seen as zeros (the encoder's same padding)
==========  ==========================  ==============================================================

The tokenizer's convs are same-padded, so code ``t`` depends on stacked frames ``t - R .. t + R`` (``R``
= ``lookahead_frames`` in the metadata): :class:`OnnxStreamingTokenizer` runs the graph on the window
that holds the receptive field of the codes it emits, as StreamingTokenizer does, in numpy. Codes are
integers from a float computation (FSQ rounds ``tanh``, RVQ takes an argmin of distances): onnxruntime's
float rounding differs from PyTorch's, so a value within about 1e-6 of a rounding boundary may give the
neighbouring code (rare: see tests/test_onnx_codec.py for the measured rate).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chunkssl.codec.streaming import lookahead_frames
from chunkssl.deploy.onnx_export import FORMAT_VERSION, ExportRefused, read_metadata, save_graph
from chunkssl.fileio import DataError
from chunkssl.fsq.tokenizer import FSQTokenizer

__all__ = ["TOKENIZER_NAME", "GRAPH", "TokenizerCodes", "check_tokenizer", "export_tokenizer",
           "OnnxStreamingTokenizer"]

TOKENIZER_NAME = "tokenizer.onnx"
GRAPH = "fbank_tokenizer_codes"


def check_tokenizer(tokenizer: object) -> int:
    """The tokenizer's look-ahead ``R`` (stacked frames) if the graph can express it, else :class:`ExportRefused`."""
    if not isinstance(tokenizer, FSQTokenizer):
        raise ExportRefused(f"tokenizer {type(tokenizer).__name__}: only FSQ/RVQ tokenizers (chunkssl.bin.fsq_train) "
                            "are exported, and streamed; decode with the PyTorch tokenizer")
    if tokenizer.quantizer_type not in ("fsq", "rvq"):
        raise ExportRefused(f"quantizer {tokenizer.quantizer_type!r} is not exported; only fsq and rvq are")
    if tokenizer.cmvn.mean.dtype != torch.float32 or next(tokenizer.encoder.parameters()).dtype != torch.float32:
        raise ExportRefused("export a float32 tokenizer")
    try:
        return lookahead_frames(tokenizer.encoder)
    except ValueError as exc:
        raise ExportRefused(f"the tokenizer's encoder cannot be streamed exactly ({exc})") from None


class TokenizerCodes(nn.Module):
    """Codes ``[1, T, G]`` of raw fbank ``[1, S*T, F]``: CMVN, stacking, conv encoder, quantizer (eval)."""

    def __init__(self, tokenizer: FSQTokenizer):
        super().__init__()
        self.lookahead = check_tokenizer(tokenizer)
        self.tok = tokenizer
        self.eval()  # the exporter restores this mode afterwards, on the tokenizer's modules too

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """The codes of a window of whole stacks (all frames valid: the window's edges are zero padding)."""
        tok = self.tok
        normed = (fbank - tok.cmvn.mean) / tok.cmvn.std  # as StreamingTokenizer.accept, before stacking
        stacked = normed.reshape(1, -1, tok.input_dim * tok.stack)
        mask = torch.ones_like(stacked[..., 0], dtype=torch.bool)
        return tok.quantizer(tok.encoder(stacked, mask), mask).codes

    def metadata(self) -> dict[str, str]:
        """Stack, look-ahead, input size and code groups of the graph."""
        tok = self.tok
        meta = {"chunkssl_onnx_format": FORMAT_VERSION, "graph": GRAPH, "quantizer": tok.quantizer_type,
                "fbank_dim": tok.input_dim, "fbank_shift_ms": tok.frame_shift_ms // tok.stack, "stack": tok.stack,
                "code_frame_ms": tok.frame_shift_ms, "lookahead_frames": self.lookahead,
                "lookahead_ms": self.lookahead * tok.frame_shift_ms, "code_channels": len(tok.code_levels),
                "code_groups": json.dumps(tok.code_groups), "code_levels": json.dumps(tok.code_levels),
                "normalize": "global_cmvn_in_graph", "inputs": json.dumps(["fbank"]),
                "outputs": json.dumps(["codes"])}
        return {key: str(value) for key, value in meta.items()}


def export_tokenizer(tokenizer: FSQTokenizer, path: str | Path) -> dict[str, str]:
    """Write the code computation of ``tokenizer`` to ``path`` (dynamic length); returns its metadata."""
    graph = TokenizerCodes(tokenizer)
    example = torch.zeros(1, tokenizer.stack * (2 * graph.lookahead + 3), tokenizer.input_dim)
    meta = graph.metadata()
    save_graph(graph, (example,), path, ["fbank"], ["codes"], meta,
               {"fbank": {1: "fbank_frames"}, "codes": {1: "code_frames"}})
    return meta


class OnnxStreamingTokenizer:
    """Incremental codes of ``tokenizer.onnx`` from raw fbank frames (numpy): the codes StreamingTokenizer emits.

    A code is emitted once ``R`` stacked frames past it are in (the rest at :meth:`finalize`); it keeps
    the raw fbank of at most ``2R`` stacked frames plus those awaiting their right context.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.meta = read_metadata(path)
        if self.meta.get("graph") != GRAPH:
            raise DataError(f"{path} is not a chunkssl tokenizer graph (no such metadata); export the tokenizer "
                            "with chunkssl.deploy.onnx_codec.export_token_model")
        if int(self.meta["chunkssl_onnx_format"]) > FORMAT_VERSION:
            raise DataError(f"{path}: metadata format {self.meta['chunkssl_onnx_format']} is newer than this "
                            f"chunkssl reads ({FORMAT_VERSION}); update chunkssl or export again")
        self.path = Path(path)
        self.stack, self.lookahead = int(self.meta["stack"]), int(self.meta["lookahead_frames"])
        self.input_dim, self.num_channels = int(self.meta["fbank_dim"]), int(self.meta["code_channels"])
        self.code_groups = json.loads(self.meta["code_groups"])
        self.frame_shift_ms = int(self.meta["code_frame_ms"])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.reset()

    @property
    def lookahead_ms(self) -> int:
        """Right context of a code, in ms of audio past the code's own frame (stack waiting not counted)."""
        return self.lookahead * self.frame_shift_ms

    def reset(self) -> None:
        """Forget the stream."""
        self._fbank = np.zeros((0, self.input_dim), np.float32)  # raw frames from stacked frame _start on
        self._start = 0                                          # stacked index of _fbank[0]
        self._frames = 0                                         # raw fbank frames so far
        self._emitted = 0                                        # codes output so far

    @property
    def _total(self) -> int:
        """Whole stacked frames so far."""
        return self._frames // self.stack

    def fbank_frames_for(self, codes: int) -> int:
        """More fbank frames needed before ``codes`` codes in all can be emitted (their right context in)."""
        return max(0, self.stack * (codes + self.lookahead) - self._frames)

    @property
    def buffered_frames(self) -> int:
        """Stacked frames kept between calls (whole or not)."""
        return -(-self._fbank.shape[0] // self.stack)

    def accept(self, feats: np.ndarray) -> np.ndarray:
        """Add raw fbank frames ``[n, F]``; return the int64 codes ``[m, G]`` whose right context is now in."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            raise DataError(f"{self.path} expects fbank frames [n, {self.input_dim}], got shape {feats.shape}; "
                            "compute fbank with the mel bins the tokenizer was trained on")
        self._fbank = np.concatenate([self._fbank, feats])
        self._frames += feats.shape[0]
        return self._emit(self._total - self.lookahead)

    def finalize(self) -> np.ndarray:
        """Codes of the last frames (the utterance end is their right context); then reset."""
        codes = self._emit(self._total)
        self.reset()
        return codes

    def _emit(self, upto: int) -> np.ndarray:
        if upto <= self._emitted:
            return np.zeros((0, self.num_channels), np.int64)
        lo = max(0, self._emitted - self.lookahead)
        hi = min(self._total, upto + self.lookahead)
        window = self._fbank[self.stack * (lo - self._start): self.stack * (hi - self._start)]
        codes = self.session.run(None, {"fbank": window[None]})[0][0]
        out = codes[self._emitted - lo: upto - lo].astype(np.int64)
        self._emitted = upto
        # frames before the next code's left context are never read again
        keep = max(0, self._emitted - self.lookahead) - self._start
        if keep > 0:
            self._fbank = self._fbank[self.stack * keep:]
            self._start += keep
        return out
