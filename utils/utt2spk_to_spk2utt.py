#!/usr/bin/env python3
"""Turn a Kaldi utt2spk ("utt spk" lines) into spk2utt ("spk utt1 utt2 ..." lines).

    utt2spk_to_spk2utt.py data/x/utt2spk > data/x/spk2utt
    utt2spk_to_spk2utt.py < data/x/utt2spk > data/x/spk2utt

Speakers come out in order of first appearance and each speaker's utterances in input order,
so a sorted utt2spk (utterance ids starting with the speaker id) gives a sorted spk2utt.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, TextIO


def utt2spk_to_spk2utt(lines: Iterable[str], source: str = "<stdin>") -> dict[str, list[str]]:
    """Group utterance ids by speaker, keeping first-appearance order; errors name the line."""
    spk2utt: dict[str, list[str]] = {}
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SystemExit(f"utt2spk_to_spk2utt.py: {source}:{lineno}: expected 'utt spk', got {line.strip()!r}; "
                             f"fix the line or run utils/fix_data_dir.sh")
        utt, spk = fields
        if utt in seen:
            raise SystemExit(f"utt2spk_to_spk2utt.py: {source}:{lineno}: utterance {utt!r} appears twice; "
                             f"run utils/fix_data_dir.sh to remove duplicates")
        seen.add(utt)
        spk2utt.setdefault(spk, []).append(utt)
    return spk2utt


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("utt2spk", nargs="?", default="-", help="utt2spk file (default: stdin)")
    args = parser.parse_args()
    stream: TextIO
    if args.utt2spk == "-":
        stream, source = sys.stdin, "<stdin>"
    else:
        try:
            stream, source = open(args.utt2spk, encoding="utf-8"), args.utt2spk
        except OSError as e:
            raise SystemExit(f"utt2spk_to_spk2utt.py: cannot read {args.utt2spk}: {e.strerror}")
    with stream:
        spk2utt = utt2spk_to_spk2utt(stream, source)
    sys.stdout.writelines(f"{spk} {' '.join(utts)}\n" for spk, utts in spk2utt.items())
    return 0


if __name__ == "__main__":
    sys.exit(main())
