"""Bitrate of discrete tokens: bits per token frame and bits per second, for FSQ and RVQ alike.

A token frame carries ``sum_j log2(L_j)`` bits, where ``L_j`` runs over the code channels (FSQ
levels, or one channel of ``codebook_size`` per RVQ codebook); at ``frame_shift_ms`` per frame that
is ``1000 / frame_shift_ms * bits`` bits per second. For example FSQ 64k ``[8,8,8,5,5,5]`` carries
15.97 bits and RVQ 2 x 256 carries 16 bits, both about 400 bit/s at 40 ms frames.

Run ``python -m chunkssl.codec.bitrate DIR_OR_CODE_INFO ...`` to print the figures of code
directories (with their storage size beside fbank when ``feats_scp`` is recorded), or with no
argument the table of the FSQ presets and their equal-bitrate RVQ settings.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

from chunkssl.fileio import run_cli
from chunkssl.fsq.quantizer import PRESETS, resolve_levels

#: RVQ (num_codebooks, codebook_size) at about the bitrate of each FSQ preset.
EQUAL_BITRATE_RVQ: dict[str, tuple[int, int]] = {
    "1k": (1, 1024),      # 9.97 vs 10 bits
    "64k": (2, 256),      # 15.97 vs 16 bits
    "6m": (2, 2401),      # 7**8 == 2401**2: the same vocabulary, 22.46 bits
    "791m": (2, 28125),   # the same per-group vocabulary, 29.56 bits
}


def bits_per_token(groups: Sequence[Sequence[int]] | Sequence[int]) -> float:
    """Bits of one token frame: the sum of ``log2`` of every channel's number of values."""
    return sum(math.log2(level) for group in resolve_levels(list(groups)) for level in group)


def bits_per_second(groups: Sequence[Sequence[int]] | Sequence[int], frame_shift_ms: float = 40.0) -> float:
    """Bitrate of tokens with the given channel levels, one frame every ``frame_shift_ms``."""
    if frame_shift_ms <= 0:
        raise ValueError(f"frame_shift_ms must be positive, got {frame_shift_ms}")
    return bits_per_token(groups) * 1000.0 / frame_shift_ms


def rvq_groups(num_codebooks: int, codebook_size: int) -> list[list[int]]:
    """The code groups of an RVQ: one channel of ``codebook_size`` values per codebook."""
    return [[codebook_size] for _ in range(num_codebooks)]


def code_info_bitrate(info: dict) -> dict[str, float]:
    """Bits per token and per second of a ``code_info.yaml`` mapping (FSQ, RVQ or BEST-RQ)."""
    bits = bits_per_token(info["groups"])
    return dict(bits_per_token=bits, bits_per_second=bits * 1000.0 / float(info["frame_shift_ms"]),
                tokens_per_second=1000.0 / float(info["frame_shift_ms"]))


def preset_table(frame_shift_ms: float = 40.0) -> list[dict]:
    """Bitrate of every FSQ preset beside its equal-bitrate RVQ setting."""
    rows = []
    for name, groups in PRESETS.items():
        n, k = EQUAL_BITRATE_RVQ[name]
        rows.append(dict(preset=name, fsq_levels=groups, fsq_bps=bits_per_second(groups, frame_shift_ms),
                         rvq=f"{n}x{k}", rvq_bps=bits_per_second(rvq_groups(n, k), frame_shift_ms)))
    return rows


def _dir_size(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def main(argv: Sequence[str] | None = None) -> None:
    """Print bitrates (see module docstring)."""
    from chunkssl.fsq.io import read_code_info

    p = argparse.ArgumentParser(prog="codec.bitrate", description=(__doc__ or "").split("\n")[0])
    p.add_argument("code_dirs", nargs="*", help="fsq_tokenize output dirs (or their code_info.yaml); "
                   "none: the table of presets")
    argv = p.parse_args(argv).code_dirs
    if not argv:
        print("| FSQ preset | levels | bit/s | RVQ | bit/s |\n|---|---|---:|---|---:|")
        for r in preset_table():
            print(f"| {r['preset']} | {r['fsq_levels']} | {r['fsq_bps']:.1f} | {r['rvq']} | {r['rvq_bps']:.1f} |")
        return
    print("| codes | kind | bits/token | bit/s | codes storage (bytes) | fbank storage (bytes) |\n"
          "|---|---|---:|---:|---:|---:|")
    for arg in argv:
        path = Path(arg)
        code_dir = path if path.is_dir() else path.parent
        info = read_code_info(code_dir)
        rate = code_info_bitrate(info)
        codes_bytes = _dir_size(sorted(code_dir.glob("codes.*.ark")))
        fbank_bytes = "n/a"
        if info.get("feats_scp") and Path(info["feats_scp"]).is_file():
            arks = {Path(line.split(maxsplit=1)[1].rsplit(":", 1)[0])
                    for line in Path(info["feats_scp"]).read_text(encoding="utf-8").splitlines() if line.strip()}
            fbank_bytes = f"{_dir_size(sorted(arks)):,}"
        print(f"| {code_dir} | {info['tokenizer']} | {rate['bits_per_token']:.2f} | {rate['bits_per_second']:.1f} "
              f"| {codes_bytes:,} | {fbank_bytes} |")


if __name__ == "__main__":
    sys.exit(run_cli("codec.bitrate", main))
