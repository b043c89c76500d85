"""Make the English -> French synthetic ST corpus: python -m chunkssl.bin.make_synth_st_corpus --out DIR --num-utts N.

English prompts spoken by espeak-ng in many voices (test voices unseen in training), French
translations made by rules; Kaldi data dirs DIR/{train,dev,test} with text (= English), text.en,
text.fr and kind (see chunkssl/synth/parallel_corpus.py). ``--print N`` only prints N pairs.
Rerunning with the same arguments is a no-op; different arguments on an existing DIR are refused.
"""

from __future__ import annotations

import argparse
import sys

from chunkssl.fileio import run_cli
from chunkssl.synth.parallel import generate_pairs
from chunkssl.synth.parallel_corpus import make_parallel_corpus

PROG = "make_synth_st_corpus"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--out", help="output directory (created; must be empty or this corpus)")
    p.add_argument("--num-utts", type=int, default=0, help="total utterances, split 80/10/10")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--noise-snr-db", type=float, default=20.0,
                       help="additive coloured noise at this SNR in dB (default 20)")
    noise.add_argument("--no-noise", action="store_true", help="clean audio")
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes (output does not depend on it)")
    p.add_argument("--print", type=int, default=0, metavar="N",
                   help="print the first N prompt pairs of --seed (kind, English, French) and exit")
    args = p.parse_args(argv)
    if args.seed < 0:
        p.error(f"--seed must be non-negative, got {args.seed}")
    if args.print > 0:
        for pair in generate_pairs(args.print, args.seed):
            print(f"{pair.kind}\t{' '.join(pair.en)}\t{pair.fr}")
        return 0
    if not args.out:
        p.error("--out is required (or --print N)")
    if args.num_utts < 3:
        p.error(f"--num-utts must be at least 3 (one utterance per set), got {args.num_utts}")
    summary = make_parallel_corpus(args.out, args.num_utts, seed=args.seed,
                                   noise_snr_db=None if args.no_noise else args.noise_snr_db, nj=args.nj,
                                   log=lambda msg: print(f"{PROG}: {msg}", file=sys.stderr))
    print(f"{PROG}: {args.out}: {summary['num_train']} train / {summary['num_dev']} dev / "
          f"{summary['num_test']} test utterances, {summary['seconds']:.1f} s of audio")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
