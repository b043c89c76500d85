"""Make one part of the synthetic pool corpus: python -m chunkssl.bin.make_synth_pool --out DIR --part pool --hours 6.

Parts: pool (unlabelled pre-training), dev, labelled (seen voices) and test (held-out voices only);
see chunkssl/synth/pool.py for the layout, the voice split and the utterances. Writes the Kaldi dir
DIR/data over 16 kHz wavs in DIR/wav. Rerunning with the same arguments is a no-op, an interrupted
run resumes, and different arguments on an existing DIR are refused.
"""

from __future__ import annotations

import argparse
import sys

from chunkssl.fileio import run_cli
from chunkssl.synth.pool import PART_CODES, make_part


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="make_synth_pool", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (created; must be empty or this part)")
    p.add_argument("--part", required=True, choices=sorted(PART_CODES), help="which part to make")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--hours", type=float, help="at least this much speech (the utterances' targets)")
    size.add_argument("--minutes", type=float, help="the same in minutes")
    size.add_argument("--num-utts", type=int, help="this many utterances")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random but the voice split (default 0)")
    p.add_argument("--max-prompts", type=int, default=0,
                   help="end each utterance after this many prompts (short fine-tuning utterances; needs --num-utts)")
    p.add_argument("--no-noise", action="store_true", help="clean audio (default: coloured noise at 10-30 dB SNR)")
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes (output does not depend on it)")
    args = p.parse_args(argv)
    if args.max_prompts < 0 or (args.max_prompts and args.num_utts is None):
        p.error("--max-prompts must be >= 0 and, when set, the size given as --num-utts")
    if args.seed < 0:
        p.error(f"--seed must be non-negative, got {args.seed}")
    seconds = args.hours * 3600 if args.hours is not None else args.minutes * 60 if args.minutes is not None else None
    if (seconds is not None and seconds <= 0) or (args.num_utts is not None and args.num_utts < 1):
        p.error("the size (--hours, --minutes or --num-utts) must be positive")
    s = make_part(args.out, args.part, seed=args.seed, seconds=seconds, num_utts=args.num_utts,
                  noise=not args.no_noise, nj=args.nj, max_prompts=args.max_prompts,
                  log=lambda msg: print(f"make_synth_pool: {msg}", file=sys.stderr))
    print(f"make_synth_pool: {args.out}: {args.part}: {s['num_utts']} utterances of {s['num_speakers']} speakers, "
          f"{s['seconds'] / 3600:.3f} h of audio ({s['min_seconds']:.1f}-{s['max_seconds']:.1f} s each, "
          f"{100 * s['share_4_20s']:.1f} % within 4-20 s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("make_synth_pool", main))
