"""Chunk-by-chunk run of an exported encoder step (:mod:`chunkssl.deploy.onnx_export`) in onnxruntime.

:class:`OnnxStreamingEncoder` is the onnxruntime counterpart of
:class:`~chunkssl.streaming.encoder.StreamingEncoder` fed fbank: raw fbank frames in, any number at a
time (the global MVN is in the graph); a chunk is encoded once its ``C`` encoder frames exist (encoder
frame ``t`` reads fbank frames ``4t .. 4t+6``), the shorter last one at :meth:`finalize`. It keeps only
the fbank frames later chunks read and the fixed-size caches, so its memory is flat. No PyTorch here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from chunkssl.chunking import encoder_frames_for
from chunkssl.deploy.onnx_export import INPUT_NAMES, read_metadata

__all__ = ["OnnxStreamingEncoder"]


class OnnxStreamingEncoder:
    """Streams raw fbank frames through ``encoder.onnx``; returns encoder frames and CTC log-probabilities.

    Args:
        path: an ``encoder.onnx`` written by :func:`~chunkssl.deploy.onnx_export.export_encoder_step`.
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.meta = read_metadata(path)
        if self.meta.get("graph") != "streaming_encoder_step":
            raise ValueError(f"{path} is not a chunkssl streaming encoder step (no such metadata)")
        self.shapes = json.loads(self.meta["shapes"])
        self.chunk = int(self.meta["chunk_frames"])
        self.window, self.hop = int(self.meta["fbank_window"]), int(self.meta["fbank_hop"])
        self.stride, self.receptive = int(self.meta["subsampling_stride"]), int(self.meta["subsampling_receptive"])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero caches, no fbank frames."""
        s = self.shapes
        self._caches = [np.zeros(s["k_cache"], np.float32), np.zeros(s["v_cache"], np.float32),
                        np.zeros(s["conv_cache"], np.float32), np.zeros(1, np.int64)]
        self._fbank = np.zeros((0, s["fbank"][2]), np.float32)  # fbank frames later chunks still read
        self._start = 0                                          # absolute index of _fbank[0]
        self._total = 0                                          # fbank frames so far
        self._done = 0                                           # encoder frames output so far

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
        feeds = dict(zip(INPUT_NAMES, [window[None], *self._caches, np.array([n], np.int64)]))
        enc, logp, *self._caches = self.session.run(None, feeds)
        self._done += n
        drop = self.stride * self._done - self._start  # fbank before the next chunk's first frame
        self._fbank, self._start = self._fbank[drop:], self._start + drop
        return enc[0, :n], logp[0, :n]

    def _cat(self, outs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if not outs:
            d, v = self.shapes["encoder_out"][2], self.shapes["ctc_logp"][2]
            return np.zeros((0, d), np.float32), np.zeros((0, v), np.float32)
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
