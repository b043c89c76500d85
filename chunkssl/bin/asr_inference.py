"""Offline decoding of a set with full context or a chunk mask (simulated streaming).

    python -m chunkssl.bin.asr_inference --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.acc.best.pth (--feats-scp dump/test/feats.scp | --wav-scp data/test/wav.scp
        [--segments data/test/segments]) --chunk-ms 640|full [--left-chunks -1] \\
        --decode-mode joint|rescore [--beam-size 10 --ctc-weight 0.3 --penalty 0 --length-bonus 0] \\
        [--dtype float32|bfloat16] [--max-segment-s 60] --output-dir DIR

``joint``: ESPnet's joint CTC/attention beam search (``Speech2Text``: BeamSearch + CTCPrefixScorer).
``rescore``: CTC prefix beam search then attention rescoring of its n-best, the same code the
streaming decoder runs (:mod:`chunkssl.asr.decode`), so with the same chunk size and left limit its
results are what ``asr_inference_streaming`` gives. Writes ``DIR/text`` and ``DIR/token_int`` (Kaldi
format), and ``DIR/timing.json`` (RTF: decode compute time over audio duration, total and per utterance).
An utterance that cannot be decoded (unreadable, empty or NaN audio) goes into ``DIR/failed`` with the
reason; the set goes on and the exit status is 1.

Long audio: an utterance longer than ``--max-segment-s`` (default 60 s) is decoded in pieces of at
most that long, cut at the quietest 0.3 s of the second half of each piece (:mod:`chunkssl.asr.pieces`),
and the pieces' results are joined; so memory does not grow with the square of a recording's length.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from chunkssl.asr.cli import DecodeResults, add_model_args, parse_decode_args
from chunkssl.asr.decode import decode_rescore, set_chunk_mask
from chunkssl.asr.io import iter_fbank
from chunkssl.asr.model import load_asr
from chunkssl.asr.precision import NUMBER_FORMATS, set_number_format_
from chunkssl.checkpoint import check_keys, read_state
from chunkssl.chunking import chunk_frames, parse_chunk_ms, too_short
from chunkssl.frontend import drop_fbank_frontend
from chunkssl.fileio import run_cli
from chunkssl.saved_config import resolved_config_file



def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--feats-scp", "--feats_scp", default=None, help="raw fbank (the model applies its MVN)")
    p.add_argument("--wav-scp", "--wav_scp", default=None)
    p.add_argument("--segments", default=None, help="Kaldi segments for --wav-scp")
    p.add_argument("--chunk-ms", "--chunk_ms", default="full", help="chunk in ms (multiple of 40) or 'full'")
    p.add_argument("--decode-mode", "--decode_mode", choices=["joint", "rescore"], default="rescore")
    p.add_argument("--penalty", type=float, default=0.0, help="joint: insertion bonus per token")
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default="float32")
    p.add_argument("--max-segment-s", "--max_segment_s", type=float, default=60.0,
                   help="decode longer utterances in pieces of at most this long, cut at pauses (0: never)")
    return p


class _JointDecoder:
    """ESPnet's Speech2Text on precomputed features, with the encoder's chunk mask set."""

    def __init__(self, args: argparse.Namespace, chunk: int | None):
        import chunkssl.espnet_glue  # noqa: F401
        from espnet2.bin.asr_inference import Speech2Text

        state = read_state(args.asr_model_file)  # ESPnet loads non-strictly: the keys are checked below
        with resolved_config_file(args.asr_train_config) as config:
            self.s2t = Speech2Text(asr_train_config=config, asr_model_file=args.asr_model_file,
                                   beam_size=args.beam_size, ctc_weight=args.ctc_weight, penalty=args.penalty,
                                   dtype=args.dtype, device="cpu", nbest=1)
        check_keys(self.s2t.asr_model, state, args.asr_model_file, args.asr_train_config)
        drop_fbank_frontend(self.s2t.asr_model)
        set_chunk_mask(self.s2t.asr_model.encoder, chunk, args.left_chunks)

    def __call__(self, feats: torch.Tensor) -> tuple[str, list[int]]:
        results = self.s2t(feats)
        text, _, token_int, _ = results[0]
        return text or "", [int(t) for t in token_int]


def main(argv: list[str] | None = None) -> int:
    """Decode every utterance and write text, token_int and timing.json; returns the exit status."""
    args = parse_decode_args(get_parser(), argv)
    if args.max_segment_s < 0:
        raise SystemExit(f"--max-segment-s must be positive (or 0: never cut), got {args.max_segment_s}")
    args.max_segment_s = args.max_segment_s or None
    chunk = chunk_frames(parse_chunk_ms(args.chunk_ms))
    if args.decode_mode == "joint":
        joint = _JointDecoder(args, chunk)
    else:
        asr = load_asr(args.asr_train_config, args.asr_model_file)
        set_number_format_(asr.model, NUMBER_FORMATS[args.dtype])
    results = DecodeResults()
    for utt, pieces, audio_s in iter_fbank(args.wav_scp, args.feats_scp, args.segments, on_error=results.fail,
                                           max_piece_s=args.max_segment_s):
        texts, ids, compute = [], [], 0.0
        for feats in pieces:  # one piece unless the utterance is longer than --max-segment-s
            start = time.perf_counter()
            if too_short(feats.shape[0]):  # no encoder frame: nothing to decode
                text, piece_ids = "", []
            elif args.decode_mode == "joint":
                text, piece_ids = joint(feats)
            else:
                piece_ids = list(decode_rescore(asr, feats, chunk, args.left_chunks, args.beam_size,
                                                args.ctc_weight, args.length_bonus))
                text = asr.text(piece_ids)
            compute += time.perf_counter() - start
            texts.append(text)
            ids += piece_ids
        text = " ".join(t for t in texts if t)
        results.add(utt, text, ids, audio_s, compute)
        logging.info("%s: %s", utt, text)
    return results.write(args.output_dir, {"mode": args.decode_mode, "chunk_ms": args.chunk_ms,
                                           "left_chunks": args.left_chunks, "dtype": args.dtype,
                                           "max_segment_s": args.max_segment_s})


if __name__ == "__main__":
    sys.exit(run_cli("asr_inference", main))
