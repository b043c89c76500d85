#!/usr/bin/env python3
"""Keep the lines of a Kaldi file whose key is listed in another file (Kaldi's filter_scp).

    filter_scp.py data/dev/utt2spk exp/feats.scp > exp/dev_feats.scp
    filter_scp.py --exclude bad_ids text < text > text.clean
    filter_scp.py -f 2 recordings segments   # match on the 2nd field

The ids are the first field of each line of the id list; lines keep their input order.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, Iterator


def filter_lines(lines: Iterable[str], ids: set[str], field: int = 1, exclude: bool = False) -> Iterator[str]:
    """Yield the lines whose ``field``-th (1-based) field is in ``ids`` (or not, with ``exclude``)."""
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        key = fields[field - 1] if len(fields) >= field else None
        if (key in ids) != exclude:
            yield line if line.endswith("\n") else line + "\n"


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exclude", action="store_true", help="keep the lines whose key is NOT listed")
    parser.add_argument("-f", "--field", type=int, default=1, help="1-based field to match (default 1)")
    parser.add_argument("id_list", help="file whose first field gives the ids")
    parser.add_argument("input", nargs="?", default="-", help="file to filter (default: stdin)")
    args = parser.parse_args()
    if args.field < 1:
        parser.error("--field counts from 1")
    try:
        with open(args.id_list, encoding="utf-8") as f:
            ids = {line.split()[0] for line in f if line.strip()}
        stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    except OSError as e:
        raise SystemExit(f"filter_scp.py: cannot read {e.filename}: {e.strerror}")
    with stream:
        sys.stdout.writelines(filter_lines(stream, ids, args.field, args.exclude))
    return 0


if __name__ == "__main__":
    sys.exit(main())
