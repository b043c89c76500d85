"""Collect scored decodes of one or more ASR experiments into a RESULTS.md table and a WER plot.

    python -m chunkssl.bin.asr_results --exp pretrained=exp/asr_ssl --exp scratch=exp/asr_scratch \\
        --sets test --out RESULTS.md --plot wer_vs_chunk.png --command "./run.sh"

Reads ``<exp>/decode_<set>/<mode>_<chunk>/{score/result.json,timing.json}`` as written by the asr1
stages: mode ``offline`` (batch decoding, chunk mask applied unless ``full``) or ``stream`` (true
streaming decoder), chunk in ms or ``full``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chunkssl.asr.results import collect, plot, write_table
from chunkssl.fileio import DataError, run_cli


def main(argv: list[str] | None = None) -> None:
    """Command line: write the table (and plot) of the experiments' scored decodes."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", action="append", required=True, help="name=exp dir (repeatable)")
    p.add_argument("--sets", nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True, help="markdown table to write")
    p.add_argument("--plot", type=Path, help="PNG of WER against chunk size")
    p.add_argument("--command", default="", help="the command that made these results, recorded above the table")
    args = p.parse_args(argv)
    results: dict[str, dict[str, list[dict]]] = {}
    for spec in args.exp:
        name, sep, path = spec.partition("=")
        if not sep:
            raise DataError(f"--exp {spec!r}: expected name=dir")
        results[name] = {s: collect(Path(path), s) for s in args.sets}
    if not any(rows for by_set in results.values() for rows in by_set.values()):
        raise DataError(f"no scored decodes found under {[s.partition('=')[2] for s in args.exp]} "
                        f"for sets {args.sets}: run the decode and scoring stages first")
    write_table(results, args.out, args.command)
    if args.plot:
        plot(results, args.plot)
    print(f"asr_results: wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))


if __name__ == "__main__":
    sys.exit(run_cli("asr_results", main))
