"""Chunk-by-chunk run of an exported encoder step (:mod:`chunkssl.deploy.onnx_export`) in onnxruntime.

:class:`OnnxStreamingEncoder` is the onnxruntime counterpart of
:class:`~chunkssl.streaming.encoder.StreamingEncoder` fed fbank: raw fbank frames in, any number at a
time (the global MVN is in the graph); a chunk is encoded once its ``C`` encoder frames exist (encoder
frame ``t`` reads fbank frames ``4t .. 4t+6``), the shorter last one at :meth:`finalize`. It keeps only
the fbank frames later chunks read and the fixed-size caches, so its memory is flat. No PyTorch here.

:class:`OnnxStreamingCodesEncoder` is the same for the step of a Codec-ASR token model (``input:
codes``): tokenizer codes ``[n, G]`` in, any number at a time, one step per ``C`` codes (one encoder
frame per code), the shorter last chunk at :meth:`~OnnxStreamingCodesEncoder.finalize`; it keeps fewer
than ``C`` codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from chunkssl.chunking import encoder_frames_for
from chunkssl.deploy.onnx_export import read_metadata, step_input
from chunkssl.fileio import DataError

__all__ = ["OnnxStreamingEncoder", "OnnxStreamingCodesEncoder"]


class _StepSession:
    """An exported step's onnxruntime session and its fixed-size caches (what both runners share)."""

    takes = "fbank"

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.meta = read_metadata(path)
        kind = step_input(self.meta, path)
        if kind != self.takes:
            other = {"fbank": "OnnxStreamingEncoder (OnnxStreamer)",
                     "codes": "OnnxStreamingCodesEncoder (OnnxCodecStreamer)"}.get(kind, "nothing here")
            raise DataError(f"{path}: this encoder step takes {kind}, not {self.takes}; run it with {other}")
        self.path = Path(path)
        self.shapes = json.loads(self.meta["shapes"])
        self.chunk = int(self.meta["chunk_frames"])
        self.input_names = json.loads(self.meta["inputs"])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _reset_caches(self) -> None:
        s = self.shapes
        self._caches = [np.zeros(s["k_cache"], np.float32), np.zeros(s["v_cache"], np.float32),
                        np.zeros(s["conv_cache"], np.float32), np.zeros(1, np.int64)]

    def _run(self, first: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """One step on the (padded) first input; the caches move on by ``n`` frames."""
        feeds = dict(zip(self.input_names, [first[None], *self._caches, np.array([n], np.int64)]))
        enc, logp, *self._caches = self.session.run(None, feeds)
        return enc[0, :n], logp[0, :n]

    def _cat(self, outs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if not outs:
            d, v = self.shapes["encoder_out"][2], self.shapes["ctc_logp"][2]
            return np.zeros((0, d), np.float32), np.zeros((0, v), np.float32)
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


class OnnxStreamingEncoder(_StepSession):
    """Streams raw fbank frames through ``encoder.onnx``; returns encoder frames and CTC log-probabilities.

    Args:
        path: an ``encoder.onnx`` written by :func:`~chunkssl.deploy.onnx_export.export_encoder_step`.
        threads: onnxruntime intra-op threads.
    """

    takes = "fbank"

    def __init__(self, path: str | Path, threads: int = 1):
        super().__init__(path, threads)
        self.window, self.hop = int(self.meta["fbank_window"]), int(self.meta["fbank_hop"])
        self.stride, self.receptive = int(self.meta["subsampling_stride"]), int(self.meta["subsampling_receptive"])
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero caches, no fbank frames."""
        self._reset_caches()
        self._fbank = np.zeros((0, self.shapes["fbank"][2]), np.float32)  # fbank frames later chunks still read
        self._start = 0                                                    # absolute index of _fbank[0]
        self._total = 0                                                    # fbank frames so far
        self._done = 0                                                     # encoder frames output so far

    @property
    def num_encoded(self) -> int:
        """Encoder frames output so far."""
        return self._done

    def fbank_frames_needed(self) -> int:
        """More fbank frames that must arrive before the next full chunk can be encoded."""
        return max(0, self.stride * (self._done + self.chunk) + self.receptive - self.stride - self._total)

    def cache_sizes(self) -> dict:
        """Frames kept between calls: fbank (fewer than a window plus a hop) and the fixed caches."""
        return {"fbank": int(self._fbank.shape[0]), "kv": int(self.shapes["k_cache"][2]),
                "conv": int(self.shapes["conv_cache"][1])}

    def accept(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add raw fbank frames ``[n, F]``; return ``(encoder_out [m, D], ctc_logp [m, V])`` of chunks now complete."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self._fbank.shape[1]:
            raise ValueError(f"expected fbank frames [n, {self._fbank.shape[1]}], got shape {feats.shape}")
        self._fbank = np.concatenate([self._fbank, feats])
        self._total += feats.shape[0]
        outs = []
        while encoder_frames_for(self._total) >= self._done + self.chunk:
            outs.append(self._step(self.chunk))
        return self._cat(outs)

    def finalize(self) -> tuple[np.ndarray, np.ndarray]:
        """Encode the frames left (a shorter last chunk) and return them; call :meth:`reset` before reuse."""
        left = encoder_frames_for(self._total) - self._done
        return self._cat([self._step(left)] if left > 0 else [])

    def _step(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        lo = self.stride * self._done - self._start
        window = self._fbank[lo:lo + self.window]
        if window.shape[0] < self.window:  # the last chunk: frames past its own are masked in the graph
            window = np.concatenate([window, np.zeros((self.window - window.shape[0], window.shape[1]), np.float32)])
        out = self._run(window, n)
        self._done += n
        drop = self.stride * self._done - self._start  # fbank before the next chunk's first frame
        self._fbank, self._start = self._fbank[drop:], self._start + drop
        return out


class OnnxStreamingCodesEncoder(_StepSession):
    """Streams tokenizer codes through the ``encoder.onnx`` of a token model; returns encoder frames and CTC
    log-probabilities (one frame per code).

    Args:
        path: an ``encoder.onnx`` of a Codec-ASR model (metadata ``input: codes``).
        threads: onnxruntime intra-op threads.
    """

    takes = "codes"

    def __init__(self, path: str | Path, threads: int = 1):
        super().__init__(path, threads)
        self.levels = np.asarray(json.loads(self.meta["code_levels"]), np.int64)
        self.groups = json.loads(self.meta["code_groups"])
        self.reset()

    @property
    def num_channels(self) -> int:
        """Code channels ``G`` per frame."""
        return int(self.levels.size)

    def reset(self) -> None:
        """Forget the stream: zero caches, no codes."""
        self._reset_caches()
        self._codes = np.zeros((0, self.num_channels), np.int64)  # codes of the chunk not yet complete
        self._done = 0                                             # encoder frames (codes) output so far

    @property
    def num_encoded(self) -> int:
        """Encoder frames (codes) output so far."""
        return self._done

    def cache_sizes(self) -> dict:
        """Frames kept between calls: codes of the incomplete chunk (fewer than ``C``) and the fixed caches."""
        return {"codes": int(self._codes.shape[0]), "kv": int(self.shapes["k_cache"][2]),
                "conv": int(self.shapes["conv_cache"][1])}

    def accept(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add codes ``[n, G]`` (ints); return ``(encoder_out [m, D], ctc_logp [m, V])`` of the chunks now complete."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.num_channels or codes.dtype.kind not in "iu":
            raise DataError(f"{self.path} takes integer codes [n, {self.num_channels}] (groups {self.groups}), got "
                            f"{codes.dtype} {codes.shape}; feed the codes of the tokenizer the model was trained on")
        bad = (codes < 0) | (codes >= self.levels)
        if bad.any():  # the graph's embedding lookup would fail (or read another unit's table) on them
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{self.path}: code {int(codes[row, col])} in channel {col} is outside "
                            f"[0, {int(self.levels[col]) - 1}]; the codes are not those of the model's tokenizer")
        self._codes = np.concatenate([self._codes, codes.astype(np.int64)])
        outs = []
        while self._codes.shape[0] >= self.chunk:
            outs.append(self._step(self.chunk))
        return self._cat(outs)

    def finalize(self) -> tuple[np.ndarray, np.ndarray]:
        """Encode the codes left (a shorter last chunk) and return them; call :meth:`reset` before reuse."""
        n = self._codes.shape[0]
        return self._cat([self._step(n)] if n > 0 else [])

    def _step(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        chunk, self._codes = self._codes[:n], self._codes[n:]
        if n < self.chunk:  # the last chunk: zeros are valid codes, and frames past n are masked in the graph
            chunk = np.concatenate([chunk, np.zeros((self.chunk - n, self.num_channels), np.int64)])
        out = self._run(chunk, n)
        self._done += n
        return out
