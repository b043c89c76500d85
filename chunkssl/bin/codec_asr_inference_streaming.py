"""True streaming decoding of a Codec-ASR model from audio, with the tokenizer and encoder in PyTorch or ONNX.

    python -m chunkssl.bin.codec_asr_inference_streaming --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.acc.best.pth --wav-scp data/test/wav.scp --output-dir DIR \\
        [--backend torch|onnx --onnx-dir exp/asr_x/onnx [--onnx-int8]] [options of the codec decoder]

``--backend torch`` (default) is ``python -m chunkssl.codec.asr_inference_streaming`` (same options,
``--chunk-ms`` 640 and ``--left-chunks`` -1 by default). ``--backend onnx`` runs the export of the token
model in ``ONNX_DIR`` (:class:`~chunkssl.deploy.onnx_codec.OnnxCodecStreamer`): the codes come from its
``tokenizer.onnx`` (from the PyTorch tokenizer instead when ``--tokenizer-model`` is given or the export
has none), the chunks from ``encoder.onnx`` (``encoder.int8.onnx`` with ``--onnx-int8``); the chunk size
and left chunks are those of ``ONNX_DIR/encoder.json`` (a different --chunk-ms or --left-chunks is
refused). Outputs as the codec decoder's, with ``backend`` and the files run in ``timing.json``.

This entry point sits in ``chunkssl.bin`` because the onnxruntime streamer (``chunkssl.deploy``) is above
``chunkssl.codec`` in the package's import layers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from chunkssl.asr.cli import parse_decode_args
from chunkssl.codec import asr_inference_streaming as codec_cli
from chunkssl.fileio import DataError, run_cli
from chunkssl.streaming.decode_set import decode_stream_set

if TYPE_CHECKING:
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer

PROG = "codec_asr_inference_streaming"


def get_parser() -> argparse.ArgumentParser:
    """Command-line options: the codec streaming decoder's plus the backend."""
    p = codec_cli.get_parser()
    p.prog, p.description = PROG, __doc__
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="tokenizer and encoder in PyTorch, or the export of --onnx-dir in onnxruntime")
    p.add_argument("--onnx-dir", "--onnx_dir", default=None,
                   help="the token model's export (encoder.onnx, tokenizer.onnx, encoder.json)")
    p.add_argument("--onnx-int8", "--onnx_int8", action="store_true", help="run encoder.int8.onnx (--backend onnx)")
    p.set_defaults(chunk_ms=None, left_chunks=None)  # torch: 640 and -1; onnx: those of encoder.json
    return p


def main(argv: list[str] | None = None) -> int:
    """Stream every utterance and write text, token_int, stream.jsonl and timing.json; returns the exit status."""
    args = parse_decode_args(get_parser(), argv)
    if args.backend == "torch":
        if args.onnx_dir is not None or args.onnx_int8:
            raise DataError("--onnx-dir/--onnx-int8 need --backend onnx")
        args.chunk_ms = 640 if args.chunk_ms is None else args.chunk_ms
        args.left_chunks = -1 if args.left_chunks is None else args.left_chunks
        return codec_cli.run(args)
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer, read_codec_export
    from chunkssl.deploy.onnx_streamer import export_chunking

    if not args.onnx_dir:
        raise DataError("--backend onnx needs --onnx-dir (the export of the token model)")
    _, info, _ = read_codec_export(args.onnx_dir, args.onnx_int8)
    export_chunking(args, info, args.onnx_dir)
    threads = args.num_threads if args.num_threads > 0 else 1
    streamer = OnnxCodecStreamer.from_files(
        args.asr_train_config, args.asr_model_file, args.onnx_dir, args.tokenizer_model, args.tokenizer_config,
        args.onnx_int8, threads, beam_size=args.beam_size, ctc_weight=args.ctc_weight,
        length_bonus=args.length_bonus, rescore=not args.no_rescore, endpoint_ms=args.endpoint_ms,
        max_segment_s=args.max_segment_s)
    tokenizer = streamer.encoder.tokenizer
    head = {"input": "audio -> tokenizer codes", "tokenizer_lookahead_ms": tokenizer.lookahead_ms,
            "backend": "onnx", "onnx": str(streamer.onnx_path),
            "onnx_tokenizer": None if streamer.tokenizer_path is None else str(streamer.tokenizer_path),
            "onnx_decoder": None if streamer.decoder_path is None else str(streamer.decoder_path)}
    return decode_stream_set(streamer, args, codec_cli.offline_posteriors(streamer.asr, _codes_of(streamer)), head)


def _codes_of(streamer: OnnxCodecStreamer) -> Callable[[torch.Tensor], torch.Tensor | None]:
    """Offline codes of an utterance's fbank by the tokenizer the streamer runs (a copy of it, for the alignment)."""
    if streamer.tokenizer_path is None:  # the PyTorch tokenizer
        return codec_cli.tokenizer_codes(streamer.encoder.tokenizer.tok)
    from chunkssl.deploy.onnx_tokenizer import OnnxStreamingTokenizer

    tokenizer = OnnxStreamingTokenizer(streamer.tokenizer_path)

    def codes_of(feats: torch.Tensor) -> torch.Tensor | None:
        # fed at once, the streaming tokenizer gives the offline codes of the whole utterance
        codes = np.concatenate([tokenizer.accept(feats.numpy()), tokenizer.finalize()])
        return torch.from_numpy(codes) if codes.shape[0] else None
    return codes_of


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
