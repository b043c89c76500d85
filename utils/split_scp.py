#!/usr/bin/env python3
"""Split a Kaldi scp/text file into N contiguous, balanced parts (Kaldi's split_scp).

    split_scp.py in.scp out.1.scp ... out.N.scp
    split_scp.py --utt2spk data/x/utt2spk in.scp out.1.scp ... out.N.scp

Parts are contiguous runs of the input lines whose sizes differ by at most one, so the
output is deterministic and "cat out.*.scp" (in numeric order) gives back the input.  With
--utt2spk no speaker is split across parts (needed for per-speaker CMVN or adaptation); the
parts are then balanced by line count as well as speaker boundaries allow.  Blank lines are
dropped.  Each output is written to a temporary file and renamed, never half-written.
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import tempfile
from typing import Sequence


def balanced_sizes(total: int, parts: int) -> list[int]:
    """Sizes of ``parts`` contiguous chunks of ``total`` items, differing by at most one."""
    base, extra = divmod(total, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


def group_boundaries(group_sizes: Sequence[int], parts: int) -> list[int]:
    """Split points (in groups) that cut the groups into ``parts`` non-empty runs of near-equal weight.

    Boundary i is placed where the running line count is closest to i * total / parts, while
    leaving at least one group for every part still to come.
    """
    n = len(group_sizes)
    if parts > n:
        raise ValueError(f"cannot split {n} groups into {parts} non-empty parts")
    cumulative = [0]
    for size in group_sizes:
        cumulative.append(cumulative[-1] + size)
    total = cumulative[-1]
    bounds = [0]
    for i in range(1, parts):
        target = i * total / parts
        lo, hi = bounds[-1] + 1, n - (parts - i)
        # cumulative is increasing, so the closest point is just below or at/after the target.
        after = bisect.bisect_left(cumulative, target)
        candidates = {min(max(b, lo), hi) for b in (after - 1, after)}
        bounds.append(min(candidates, key=lambda b: (abs(cumulative[b] - target), b)))
    bounds.append(n)
    return bounds


def read_lines(path: str) -> list[str]:
    """Non-blank lines of ``path``, newline-terminated."""
    with open(path, encoding="utf-8") as f:
        return [line if line.endswith("\n") else line + "\n" for line in f if line.strip()]


def read_utt2spk(path: str) -> dict[str, str]:
    """Map utterance id -> speaker id from a Kaldi utt2spk file."""
    utt2spk = {}
    for lineno, line in enumerate(read_lines(path), 1):
        fields = line.split()
        if len(fields) != 2:
            raise SystemExit(f"split_scp.py: {path}:{lineno}: expected 'utt spk', got {line.strip()!r}")
        utt2spk[fields[0]] = fields[1]
    return utt2spk


def speaker_groups(lines: list[str], utt2spk: dict[str, str], scp: str, u2s_path: str) -> list[int]:
    """Sizes of the runs of consecutive lines that share a speaker; each speaker must form one run."""
    sizes: list[int] = []
    seen: set[str] = set()
    previous = None
    for line in lines:
        utt = line.split(maxsplit=1)[0]
        if utt not in utt2spk:
            raise SystemExit(f"split_scp.py: utterance {utt!r} of {scp} is not in {u2s_path}; "
                             f"run utils/fix_data_dir.sh on the data dir first")
        spk = utt2spk[utt]
        if spk != previous:
            if spk in seen:
                raise SystemExit(f"split_scp.py: utterances of speaker {spk!r} are not contiguous in {scp} "
                                 f"(utterance {utt!r}); sort it so each speaker's utterances are together "
                                 f"(Kaldi convention: utterance ids start with the speaker id)")
            seen.add(spk)
            sizes.append(0)
            previous = spk
        sizes[-1] += 1
    return sizes


def write_atomic(path: str, lines: list[str]) -> None:
    """Write ``lines`` to ``path`` through a temp file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utt2spk", help="keep each speaker's utterances in one part")
    parser.add_argument("input", help="scp/text file to split")
    parser.add_argument("outputs", nargs="+", help="output files, one per part")
    args = parser.parse_args(argv)

    try:
        lines = read_lines(args.input)
    except OSError as e:
        raise SystemExit(f"split_scp.py: cannot read {args.input}: {e.strerror}")
    parts = len(args.outputs)
    if args.utt2spk:
        sizes = speaker_groups(lines, read_utt2spk(args.utt2spk), args.input, args.utt2spk)
        if parts > len(sizes):
            raise SystemExit(f"split_scp.py: {args.input} has {len(sizes)} speakers, cannot split it into "
                             f"{parts} parts with --utt2spk; use fewer jobs")
        bounds = group_boundaries(sizes, parts)
        starts = [sum(sizes[:b]) for b in bounds]
    else:
        if parts > len(lines):
            raise SystemExit(f"split_scp.py: {args.input} has {len(lines)} lines, cannot split it into "
                             f"{parts} non-empty parts; use fewer jobs")
        starts = [0]
        for size in balanced_sizes(len(lines), parts):
            starts.append(starts[-1] + size)
    for i, out in enumerate(args.outputs):
        write_atomic(out, lines[starts[i]:starts[i + 1]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
