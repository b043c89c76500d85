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
import json
import logging
import time
from pathlib import Path

import torch

from chunkssl.asr.model import chunk_frames, load_asr
from chunkssl.codec.decode import as_codes, check_token_model, decode_codes
from chunkssl.fileio import DataError, atomic_open
from chunkssl.fsq.io import read_codes
from chunkssl.metrics.timing import real_time_factor


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr_train_config", "--asr-train-config", required=True)
    p.add_argument("--asr_model_file", "--asr-model-file", required=True)
    p.add_argument("--codes-scp", "--codes_scp", required=True, help="codes.scp written by fsq_tokenize")
    p.add_argument("--chunk-ms", "--chunk_ms", default="full", help="chunk in ms (multiple of 40) or 'full'")
    p.add_argument("--left-chunks", "--left_chunks", type=int, default=-1)
    p.add_argument("--beam-size", "--beam_size", type=int, default=10)
    p.add_argument("--ctc-weight", "--ctc_weight", type=float, default=0.3)
    p.add_argument("--length-bonus", "--length_bonus", type=float, default=0.0)
    p.add_argument("--num-threads", "--num_threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--output-dir", "--output_dir", required=True)
    return p


def main(argv: list[str] | None = None) -> None:
    """Decode every utterance of codes.scp and write text, token_int and timing.json."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    chunk = chunk_frames(args.chunk_ms)
    asr = load_asr(args.asr_train_config, args.asr_model_file)
    frontend = check_token_model(asr)
    frame_s = 0.04
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts, token_ints, per_utt = [], [], {}
    total_compute = total_audio = 0.0
    for utt, mat in read_codes(args.codes_scp).items():
        codes = as_codes(mat)
        if codes.shape[-1] != len(frontend.levels):
            raise DataError(f"{args.codes_scp}: {utt} has {codes.shape[-1]} code channels, the model's frontend "
                            f"expects {len(frontend.levels)} ({frontend.kind} {frontend.groups}): wrong codes?")
        start = time.perf_counter()
        ids = decode_codes(asr, codes, chunk, args.left_chunks, args.beam_size, args.ctc_weight, args.length_bonus)
        compute = time.perf_counter() - start
        text = asr.text(ids)
        audio_s = codes.shape[0] * frame_s
        total_compute += compute
        total_audio += audio_s
        per_utt[utt] = {"audio_s": audio_s, "compute_s": compute,
                        "rtf": real_time_factor(compute, audio_s) if audio_s > 0 else None}
        texts.append(f"{utt} {text}".rstrip() + "\n")
        token_ints.append(f"{utt} {' '.join(map(str, ids))}".rstrip() + "\n")
        logging.info("%s: %s", utt, text)
    skipped = Path(args.codes_scp).parent / "skipped"
    if skipped.is_file():
        for utt in skipped.read_text(encoding="utf-8").split():
            texts.append(f"{utt}\n")
            token_ints.append(f"{utt}\n")
            per_utt[utt] = {"audio_s": 0.0, "compute_s": 0.0, "rtf": None, "skipped": True}
    with atomic_open(out / "text", "w") as f:
        f.writelines(texts)
    with atomic_open(out / "token_int", "w") as f:
        f.writelines(token_ints)
    timing = {"mode": "rescore", "input": "codes", "chunk_ms": args.chunk_ms, "left_chunks": args.left_chunks,
              "num_utts": len(per_utt), "audio_s": total_audio, "compute_s": total_compute,
              "rtf": real_time_factor(total_compute, total_audio) if total_audio > 0 else None,
              "utterances": per_utt}
    with atomic_open(out / "timing.json", "w") as f:
        json.dump(timing, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except DataError as err:
        raise SystemExit(f"asr_inference (codes): error: {err}") from None
