"""True streaming decoding of a set: audio fed in pieces to :class:`~chunkssl.streaming.streamer.Streamer`.

    python -m chunkssl.bin.asr_inference_streaming --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.acc.best.pth --wav-scp data/test/wav.scp [--segments data/test/segments] \\
        --chunk-ms 640 [--left-chunks -1] --piece-ms 40 [--beam-size 10 --ctc-weight 0.3 --length-bonus 0] \\
        [--dtype float32|bfloat16|int8] [--realtime false] [--no-rescore] --output-dir DIR
        [--backend onnx --onnx-dir exp/asr/onnx [--onnx-int8]]

``--backend onnx`` runs the encoder step exported by ``chunkssl.bin.export_onnx`` in onnxruntime
(:class:`~chunkssl.deploy.onnx_streamer.OnnxStreamer`): the chunk size and left chunks are those of
``ONNX_DIR/encoder.json`` (a different --chunk-ms or --left-chunks is refused), ``--onnx-int8`` runs its
``encoder.int8.onnx``; attention rescoring runs the exported ``decoder.onnx`` (``decoder.int8.onnx``)
when encoder.json records one, else the PyTorch decoder of the model.

Writes (atomically):

- ``DIR/text``: final hypotheses (Kaldi format); ``DIR/token_int``: their token ids.
- ``DIR/stream.jsonl``: one JSON object per event, written as the stream runs,
  ``{"utt", "type": "partial"|"segment"|"final", "segment", "audio_s", "wall_s", "text", "tokens"}``
  (token ids): a partial holds its segment's hypothesis, a segment event a committed segment (once),
  the final event the whole utterance (see :mod:`chunkssl.streaming.streamer`).
- ``DIR/timing.json``: RTF (total and per utterance), first-token latency and token emission delay
  summaries (:mod:`chunkssl.metrics.timing`, definitions in docs/metrics.md). Token audio ends come
  from a CTC forced alignment of the final tokens to the offline (full-context) CTC posteriors of the
  same model; that pass is not counted in the compute time. Its attention needs memory that grows with
  the square of the length, so it runs only on utterances up to ``--align-max-s`` (default 60 s):
  longer ones (long recordings) get RTF and first-token latency from the streaming pass alone and no
  emission delay (``"aligned": false`` in their timing entry).

Clock: with ``--realtime true`` each piece is fed when it would arrive live (the decoder sleeps) and
``wall_s`` is measured. With ``--realtime false`` (default) the audio is fed as fast as possible and
``wall_s`` is the simulated live clock: a piece arriving at its audio end time is processed after the
previous one, ``ready = max(arrival, previous ready) + compute`` (``LiveClock``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import torch

from chunkssl.asr.cli import parse_decode_args
from chunkssl.asr.decode import ctc_log_probs, encode
from chunkssl.asr.io import SAMPLE_RATE
from chunkssl.chunking import encoder_frames_for
from chunkssl.features import fbank
from chunkssl.fileio import DataError, run_cli
from chunkssl.streaming.decode_set import add_stream_args, decode_stream_set
from chunkssl.streaming.streamer import Streamer


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stream_args(p)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "int8"], default="float32",
                   help="bfloat16 needs a CPU/GPU with bf16 matmuls; int8 = dynamic int8 weights (CPU)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="encoder in PyTorch, or the exported encoder.onnx in onnxruntime (needs --onnx-dir)")
    p.add_argument("--onnx-dir", "--onnx_dir", default=None, help="export_onnx output (encoder.onnx, encoder.json)")
    p.add_argument("--onnx-int8", "--onnx_int8", action="store_true",
                   help="run encoder.int8.onnx and decoder.int8.onnx (--backend onnx)")
    p.set_defaults(chunk_ms=None, left_chunks=None)  # torch: 640 and -1; onnx: those of encoder.json
    return p


def _onnx_streamer(args: argparse.Namespace) -> Streamer:
    """The onnxruntime streamer of ``--onnx-dir``, after checking the options against its encoder.json."""
    from chunkssl.deploy.onnx_streamer import OnnxStreamer, export_chunking, read_encoder_json

    if not args.onnx_dir:
        raise DataError("--backend onnx needs --onnx-dir (the output directory of chunkssl.bin.export_onnx)")
    if args.dtype != "float32":
        raise DataError(f"--dtype {args.dtype} is for --backend torch; use --onnx-int8 for the int8 ONNX encoder")
    _, info = read_encoder_json(args.onnx_dir, args.onnx_int8)
    export_chunking(args, info, args.onnx_dir)
    threads = args.num_threads if args.num_threads > 0 else 1
    return OnnxStreamer.from_files(args.asr_train_config, args.asr_model_file, args.onnx_dir, args.onnx_int8,
                                   threads, beam_size=args.beam_size, ctc_weight=args.ctc_weight,
                                   length_bonus=args.length_bonus, rescore=not args.no_rescore,
                                   endpoint_ms=args.endpoint_ms, max_segment_s=args.max_segment_s)


def main(argv: list[str] | None = None) -> int:
    """Stream every utterance and write text, token_int, stream.jsonl and timing.json; returns the exit status."""
    args = parse_decode_args(get_parser(), argv)
    if args.backend == "onnx":
        streamer = _onnx_streamer(args)
        decoder = None if streamer.decoder_path is None else str(streamer.decoder_path)  # None: PyTorch's
        return decode_stream_set(streamer, args, _offline(streamer),
                                 {"backend": "onnx", "onnx": str(streamer.onnx_path), "onnx_decoder": decoder})
    if args.onnx_dir is not None or args.onnx_int8:
        raise DataError("--onnx-dir/--onnx-int8 need --backend onnx")
    args.chunk_ms = 640 if args.chunk_ms is None else args.chunk_ms
    args.left_chunks = -1 if args.left_chunks is None else args.left_chunks
    streamer = Streamer.from_files(args.asr_train_config, args.asr_model_file, args.chunk_ms, args.left_chunks,
                                   args.beam_size, args.ctc_weight, dtype=args.dtype,
                                   length_bonus=args.length_bonus, rescore=not args.no_rescore,
                                   endpoint_ms=args.endpoint_ms, max_segment_s=args.max_segment_s)
    return decode_stream_set(streamer, args, _offline(streamer), {"dtype": args.dtype, "backend": "torch"})


def _offline(streamer: Streamer) -> Callable[[np.ndarray], torch.Tensor | None]:
    """Full-context CTC posteriors of a wave (PyTorch), for the token emission delays."""
    def offline_log_probs(wave: np.ndarray) -> torch.Tensor | None:
        feats = fbank(wave, SAMPLE_RATE)
        if encoder_frames_for(feats.shape[0]) == 0:
            return None
        return ctc_log_probs(streamer.asr, encode(streamer.asr, feats, None, None))
    return offline_log_probs


if __name__ == "__main__":
    sys.exit(run_cli("asr_inference_streaming", main))
