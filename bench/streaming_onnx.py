"""The onnxruntime rows of ``bench/streaming.py``: our 30M model exported, streamed by ``OnnxStreamer``, paced.

The export is the one ``python -m chunkssl.bin.export_onnx --chunk-ms 640 --left-chunks 4 --int8`` writes
(:func:`~chunkssl.deploy.export_dir.export_asr_dir`): the encoder step and the attention decoder, float32
and int8. Pacing is the PyTorch rows' (:func:`streaming_setup.pace_ours`) moved to the graphs' outputs,
since no hook reaches inside onnxruntime: the CTC log-probabilities each chunk returns go through the
:class:`~streaming_setup.Pacer`, and the decoder's scores of a segment's n-best are replaced by what the
paced PyTorch decoder gives, log p ~ 0 for every fed token (the graph still runs in full each time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streaming_setup import BEAM, Pacer, TimedStreamer
from chunkssl.asr.model import LoadedASR
from chunkssl.deploy.export_dir import export_asr_dir
from chunkssl.deploy.onnx_streamer import OnnxStreamer

CHUNK_MS, LEFT_CHUNKS = 640, 4


def export_bench_model(asr: LoadedASR, out_dir: Path) -> Path:
    """Export ``asr`` (encoder step + decoder, float32 and int8) into ``out_dir``."""
    export_asr_dir(asr.model, out_dir, CHUNK_MS, LEFT_CHUNKS, int8=True, log=lambda _line: None)
    return out_dir


class PacedOnnxStreamer(TimedStreamer):
    """``OnnxStreamer`` over the exported model, paced like :class:`PacedStreamer`; same feed/finish API."""

    def __init__(self, asr: LoadedASR, onnx_dir: Path, int8: bool, threads: int, speech: np.ndarray,
                 warmup: np.ndarray):
        self.streamer = OnnxStreamer(asr, onnx_dir, int8=int8, threads=threads, beam_size=BEAM, ctc_weight=0.3,
                                     endpoint_ms=800, max_segment_s=30)
        if self.streamer.decoder_path is None:
            raise RuntimeError(f"{onnx_dir}: no decoder.onnx, the ONNX rows would rescore in PyTorch")
        self.pacer = Pacer(speech)
        self.state = {"t": 0}
        self._pace_encoder(self.streamer.encoder)
        self._pace_decoder(self.streamer.attention_scorer)
        self.streamer.accept(warmup)
        self.streamer.finalize()
        self.restart()

    def _pace_encoder(self, step) -> None:
        def paced(fn):
            def call(*args):
                enc, logp = fn(*args)
                out = self.pacer.ctc(logp[None], self.state["t"])[0]
                self.state["t"] += logp.shape[0]
                return enc, out
            return call

        step.accept, step.finalize = paced(step.accept), paced(step.finalize)

    @staticmethod
    def _pace_decoder(decoder) -> None:
        run = decoder.run

        def agreeing(*args) -> np.ndarray:
            return np.zeros_like(run(*args))  # the paced decoder's log p of each fed token is ~0

        decoder.run = agreeing
