"""Batch decoding of a Codec-ASR model from tokenizer codes, full context or with a chunk mask.

    python -m chunkssl.codec.asr_inference --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.acc.best.pth --codes-scp dump/tokens/64k/test/codes.scp \\
        --chunk-ms 640|full [--left-chunks -1] [--beam-size 10 --ctc-weight 0.3 --length-bonus 0] \\
        --output-dir DIR

The counterpart of ``chunkssl.bin.asr_inference --decode-mode rescore`` for models with the token
frontend (same CTC prefix search and attention rescoring, :mod:`chunkssl.codec.decode`); a chunk of
640 ms is 16 tokens of 40 ms. Utterances the tokenizer skipped (listed in ``skipped`` beside
codes.scp: shorter than one token) get an empty hypothesis. Writes ``DIR/text``, ``DIR/token_int``
and ``DIR/timing.json`` (RTF over the audio duration, 40 ms per token; tokenization not included).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


from chunkssl.asr.cli import DecodeResults, add_model_args, parse_decode_args
from chunkssl.asr.model import load_asr
from chunkssl.chunking import FRAME_MS, chunk_frames, parse_chunk_ms
from chunkssl.codec.decode import as_codes, check_token_model, decode_codes
from chunkssl.fileio import DataError, run_cli
from chunkssl.fsq.io import read_codes


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--codes-scp", "--codes_scp", required=True, help="codes.scp written by fsq_tokenize")
    p.add_argument("--chunk-ms", "--chunk_ms", default="full", help="chunk in ms (multiple of 40) or 'full'")
    return p


def main(argv: list[str] | None = None) -> None:
    """Decode every utterance of codes.scp and write text, token_int and timing.json."""
    args = parse_decode_args(get_parser(), argv)
    chunk = chunk_frames(parse_chunk_ms(args.chunk_ms))
    asr = load_asr(args.asr_train_config, args.asr_model_file)
    frontend = check_token_model(asr)
    results = DecodeResults()
    for utt, mat in read_codes(args.codes_scp).items():
        codes = as_codes(mat)
        if codes.shape[-1] != len(frontend.levels):
            raise DataError(f"{args.codes_scp}: {utt} has {codes.shape[-1]} code channels, the model's frontend "
                            f"expects {len(frontend.levels)} ({frontend.kind} {frontend.groups}): wrong codes?")
        start = time.perf_counter()
        ids = decode_codes(asr, codes, chunk, args.left_chunks, args.beam_size, args.ctc_weight, args.length_bonus)
        compute = time.perf_counter() - start
        text = asr.text(ids)
        results.add(utt, text, ids, codes.shape[0] * FRAME_MS / 1000, compute)
        logging.info("%s: %s", utt, text)
    skipped = Path(args.codes_scp).parent / "skipped"
    if skipped.is_file():  # utterances the tokenizer could not code: empty hypotheses, scored as deletions
        for utt in skipped.read_text(encoding="utf-8").split():
            results.add(utt, "", [], 0.0, 0.0, skipped=True)
    results.write(args.output_dir, {"mode": "rescore", "input": "codes", "chunk_ms": args.chunk_ms,
                                    "left_chunks": args.left_chunks})

if __name__ == "__main__":
    sys.exit(run_cli("asr_inference (codes)", main))
