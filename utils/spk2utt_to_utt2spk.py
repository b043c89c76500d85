#!/usr/bin/env python3
"""Turn a Kaldi spk2utt ("spk utt1 utt2 ..." lines) into utt2spk ("utt spk" lines).

    spk2utt_to_utt2spk.py data/x/spk2utt | LC_ALL=C sort > data/x/utt2spk
    spk2utt_to_utt2spk.py < data/x/spk2utt

Utterances come out in input order (speaker by speaker); sort the result if you need
Kaldi's sorted order.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, Iterator, TextIO


def spk2utt_to_utt2spk(lines: Iterable[str], source: str = "<stdin>") -> Iterator[tuple[str, str]]:
    """Yield (utterance, speaker) pairs; an utterance listed twice is an error naming the line."""
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise SystemExit(f"spk2utt_to_utt2spk.py: {source}:{lineno}: speaker {fields[0]!r} lists no "
                             f"utterances; remove the line")
        spk = fields[0]
        for utt in fields[1:]:
            if utt in seen:
                raise SystemExit(f"spk2utt_to_utt2spk.py: {source}:{lineno}: utterance {utt!r} is listed twice; "
                                 f"each utterance belongs to one speaker")
            seen.add(utt)
            yield utt, spk


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spk2utt", nargs="?", default="-", help="spk2utt file (default: stdin)")
    args = parser.parse_args()
    stream: TextIO
    if args.spk2utt == "-":
        stream, source = sys.stdin, "<stdin>"
    else:
        try:
            stream, source = open(args.spk2utt, encoding="utf-8"), args.spk2utt
        except OSError as e:
            raise SystemExit(f"spk2utt_to_utt2spk.py: cannot read {args.spk2utt}: {e.strerror}")
    with stream:
        # Collect first so a bad line never leaves a truncated utt2spk on stdout.
        pairs = list(spk2utt_to_utt2spk(stream, source))
    sys.stdout.writelines(f"{utt} {spk}\n" for utt, spk in pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
