"""Score ASR output with WER (or CER): python -m chunkssl.bin.score_asr --ref REF --hyp HYP --out-dir DIR [--cer].

REF and HYP are Kaldi text files (``utt-id words...``; an id with no words is an empty transcript).
Scoring is case-sensitive with no normalisation. DIR receives:

- ``result.txt``: a summary table (|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|, percentages of
  reference tokens), a ``%WER x [ errors / ref, ins, del, sub ]`` line, then one block per utterance
  (id, ``Scores: (#C #S #D #I)``, REF/HYP/Eval alignment lines, ``*`` for a missing word);
- ``result.json``: the same totals and per-utterance counts, machine-readable.

A hypothesis id that is not in REF is an error. A REF id with no hypothesis is an error unless
--allow-missing, which scores it as an empty hypothesis (all deletions) with a warning and lists it
under ``missing_hyp``. Empty references are fine: their hypothesis words count as insertions and
their own error rate is reported as n/a / null.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chunkssl.fileio import DataError, run_cli
from chunkssl.metrics.asr import score_pairs, write_results
from chunkssl.metrics.io import load_text, pair_texts

PROG = "score_asr"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--ref", required=True, help="reference Kaldi text file (e.g. data/test/text)")
    p.add_argument("--hyp", required=True, help="hypothesis Kaldi text file (e.g. exp/.../decode/text)")
    p.add_argument("--out-dir", required=True, help="where result.txt and result.json are written")
    p.add_argument("--cer", action="store_true", help="character error rate instead of word error rate")
    p.add_argument("--allow-missing", action="store_true",
                   help="score reference utterances without a hypothesis as empty hypotheses (with a warning)")
    p.add_argument("--name", default=None, help="set name in the summary (default: the reference's directory name)")
    args = p.parse_args(argv)
    refs, hyps = load_text(args.ref), load_text(args.hyp)
    pairs, missing = pair_texts(refs, hyps, args.ref, args.hyp, args.allow_missing, PROG)
    if not pairs:
        raise DataError(f"{args.ref} has no utterances; nothing to score")
    name = args.name or Path(args.ref).resolve().parent.name
    score = score_pairs(pairs, "char" if args.cer else "word", missing)
    txt, _ = write_results(score, args.out_dir, name)
    rate = score.error_rate
    print(f"{PROG}: {name}: {score.metric} {'n/a' if rate is None else f'{rate:.2f}'} % "
          f"({score.total('errors')} errors / {score.ref_tokens} reference tokens, {len(pairs)} utterances); "
          f"details in {txt}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
