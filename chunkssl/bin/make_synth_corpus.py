"""Make the synthetic espeak-ng speech corpus: python -m chunkssl.bin.make_synth_corpus --out DIR --num-utts N.

Writes Kaldi data dirs DIR/{train,dev,test} (wav.scp, text, utt2spk, spk2utt, utt2dur, phone_ali)
over 16 kHz wavs in DIR/wav; see chunkssl/synth/corpus.py for the layout, speakers and splits.
Rerunning with the same arguments is a no-op; different arguments on an existing DIR are refused.
"""

from __future__ import annotations

import argparse
import resource
import sys

from chunkssl.fileio import run_cli
from chunkssl.synth.corpus import make_corpus


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the --nj workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="make_synth_corpus", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (created; must be empty or this corpus)")
    p.add_argument("--num-utts", type=int, required=True, help="total utterances, split 80/10/10")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--noise-snr-db", type=float, default=20.0,
                       help="additive coloured noise at this SNR in dB (default 20)")
    noise.add_argument("--no-noise", action="store_true", help="clean audio")
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes (output does not depend on it)")
    args = p.parse_args(argv)
    if args.num_utts < 3:
        p.error(f"--num-utts must be at least 3 (one utterance per set), got {args.num_utts}")
    if args.seed < 0:
        p.error(f"--seed must be non-negative, got {args.seed}")
    summary = make_corpus(args.out, args.num_utts, seed=args.seed,
                          noise_snr_db=None if args.no_noise else args.noise_snr_db, nj=args.nj,
                          log=lambda msg: print(f"make_synth_corpus: {msg}", file=sys.stderr))
    print(f"make_synth_corpus: {args.out}: {summary['num_train']} train / {summary['num_dev']} dev / "
          f"{summary['num_test']} test utterances, {summary['seconds']:.1f} s of audio, "
          f"{_cpu_seconds():.1f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("make_synth_corpus", main))
