"""True streaming decoding of a Codec-ASR model from audio: fbank -> tokenizer -> token frontend -> chunks.

    python -m chunkssl.codec.asr_inference_streaming --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.acc.best.pth --wav-scp data/test/wav.scp [--segments ...] \\
        [--tokenizer-model exp/fsq_64k/valid.loss.best.pth] --chunk-ms 640 [--left-chunks -1] \\
        --piece-ms 40 [--beam-size 10 --ctc-weight 0.3 --length-bonus 0] [--realtime false] --output-dir DIR

Audio is fed in ``--piece-ms`` pieces to :func:`chunkssl.codec.streaming.codec_streamer`: incremental
fbank, the tokenizer run incrementally (its codes equal the offline ones; each waits for the
tokenizer's right context), the token frontend, the cached chunk encoder, CTC prefix beam search
with a partial after every chunk, attention rescoring at the end. The tokenizer defaults to the
``model_file`` recorded in the training codes' ``code_info.yaml``.

Outputs as ``chunkssl.bin.asr_inference_streaming``: ``text``, ``token_int``, ``stream.jsonl`` and
``timing.json`` (RTF, first-token latency, token emission delays; token audio ends from a CTC forced
alignment to the model's full-context posteriors of the offline codes), plus ``tokenizer_lookahead_ms``.

The same with the tokenizer and the encoder step exported to ONNX (``--backend onnx --onnx-dir D``) is
``python -m chunkssl.bin.codec_asr_inference_streaming``: the onnxruntime streamer lives in
``chunkssl.deploy``, above this package in the import layers, so its entry point is in ``chunkssl.bin``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import torch

from chunkssl.asr.cli import parse_decode_args
from chunkssl.asr.decode import ctc_log_probs
from chunkssl.asr.io import SAMPLE_RATE
from chunkssl.asr.model import LoadedASR
from chunkssl.streaming.decode_set import add_stream_args, decode_stream_set
from chunkssl.codec.decode import encode_codes
from chunkssl.codec.streaming import codec_streamer, load_code_tokenizer
from chunkssl.features import fbank, window_samples
from chunkssl.fileio import run_cli
from chunkssl.fsq.tokenizer import FSQTokenizer


def get_parser() -> argparse.ArgumentParser:
    """Command-line options: those of ``chunkssl.bin.asr_inference_streaming`` plus the tokenizer."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stream_args(p)
    p.add_argument("--tokenizer-model", "--tokenizer_model", default=None,
                   help="FSQ/RVQ tokenizer checkpoint (default: model_file of the training codes' code_info)")
    p.add_argument("--tokenizer-config", "--tokenizer_config", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    """Stream every utterance and write text, token_int, stream.jsonl and timing.json."""
    return run(parse_decode_args(get_parser(), argv))


def run(args: argparse.Namespace) -> int:
    """:func:`main` on parsed options (PyTorch tokenizer and encoder); returns the exit status."""
    from chunkssl.asr.model import load_asr

    asr = load_asr(args.asr_train_config, args.asr_model_file)
    tokenizer = load_code_tokenizer(asr, args.tokenizer_model, args.tokenizer_config)
    streamer = codec_streamer(asr, tokenizer, args.chunk_ms, args.left_chunks, args.beam_size, args.ctc_weight,
                              length_bonus=args.length_bonus, rescore=not args.no_rescore,
                              endpoint_ms=args.endpoint_ms, max_segment_s=args.max_segment_s)
    lookahead_ms = streamer.encoder.tokenizer.lookahead_ms
    return decode_stream_set(streamer, args, offline_posteriors(asr, tokenizer_codes(tokenizer)),
                             {"input": "audio -> tokenizer codes", "tokenizer_lookahead_ms": lookahead_ms})


def tokenizer_codes(tokenizer: FSQTokenizer) -> Callable[[torch.Tensor], torch.Tensor | None]:
    """The offline codes ``[T', G]`` of an utterance's fbank by ``tokenizer`` (None: shorter than one stack)."""
    def codes_of(feats: torch.Tensor) -> torch.Tensor | None:
        if feats.shape[0] < tokenizer.stack:
            return None
        codes, _ = tokenizer.tokenize(feats[None], torch.tensor([feats.shape[0]]))
        return codes[0]
    return codes_of


def offline_posteriors(asr: LoadedASR, codes_of: Callable[[torch.Tensor], torch.Tensor | None]
                       ) -> Callable[[np.ndarray], torch.Tensor | None]:
    """Full-context CTC posteriors of a wave from its offline codes (``codes_of(fbank)``), for the alignment."""
    def offline_log_probs(wave: np.ndarray) -> torch.Tensor | None:
        codes = codes_of(fbank(wave, SAMPLE_RATE)) if wave.size >= window_samples(SAMPLE_RATE) else None
        if codes is None or codes.shape[0] == 0:
            return None
        return ctc_log_probs(asr, encode_codes(asr, codes, None, None))
    return offline_log_probs


if __name__ == "__main__":
    sys.exit(run_cli("asr_inference_streaming (codes)", main))
