"""Check a Kaldi data dir and list every problem: python -m chunkssl.bin.validate_data_dir [--no-audio] [--no-text] DIR.

Exit status 0 and one "is OK" line when the dir is usable, else 1 with one line per problem,
each naming the file and the utterance and saying how to fix it.
"""

from __future__ import annotations

import argparse
import sys

from chunkssl.datadir import validate
from chunkssl.fileio import run_cli

PROG = "validate_data_dir"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--no-audio", action="store_true", help="do not decode the audio (only check the files agree)")
    p.add_argument("--no-text", action="store_true", help="the dir has no transcripts (unlabeled data)")
    p.add_argument("data_dir", help="Kaldi data dir (wav.scp or feats.scp, utt2spk, spk2utt, text)")
    args = p.parse_args(argv)
    problems = validate(args.data_dir, check_audio=not args.no_audio, check_text=not args.no_text)
    if problems:
        for problem in problems:
            print(f"validate_data_dir: {problem}", file=sys.stderr)
        print(f"validate_data_dir: {args.data_dir} has {len(problems)} problem(s); see above", file=sys.stderr)
        return 1
    n = sum(1 for line in open(_utt_file(args.data_dir), encoding="utf-8") if line.strip())
    print(f"validate_data_dir: {args.data_dir} is OK ({n} utterances)")
    return 0


def _utt_file(data_dir: str) -> str:
    """The file listing one line per utterance: segments, else wav.scp, else feats.scp."""
    from pathlib import Path

    d = Path(data_dir)
    for name in ("segments", "wav.scp", "feats.scp"):
        if (d / name).is_file():
            return str(d / name)
    raise FileNotFoundError(d / "wav.scp")  # validate() already reported this case


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
