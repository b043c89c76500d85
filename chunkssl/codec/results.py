"""Codec-ASR comparison table: WER of fbank and token models beside their input's bitrate and storage.

    python -m chunkssl.codec.results --exp "fbank=exp/asr_fbank@dump/fbank/test" \\
        --exp "FSQ 64k, codebook init=exp/asr_64k_codebook@dump/tokens/64k/test" \\
        --set test --chunk 640 --out RESULTS.md --command "./run.sh"

Each ``--exp NAME=EXP_DIR@INPUT_DIR`` names a trained model and the input it decoded: a code directory
(``code_info.yaml``, ``codes.scp``: FSQ/RVQ tokens) or an fbank directory (``feats.scp``). Per model, the
row gives the input's information rate (``sum log2(levels)`` bits per token, or 32-bit floats for fbank),
the bytes its archives take on disk for the set and that as bits per second of audio, and the WER of the
scored decodes ``decode_<set>/{offline_full, offline_<chunk>, stream_<chunk>}`` (as
``chunkssl.bin.asr_results`` reads them), with the streaming decoder's mean first-token latency.
Audio duration comes from the fbank ``utt2num_frames`` (10 ms frames) of the set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chunkssl.asr.results import collect, fmt
from chunkssl.codec.bitrate import code_info_bitrate
from chunkssl.fileio import DataError, read_kv, run_cli, write_keeping_notes
from chunkssl.fsq.io import read_code_info

FBANK_FRAME_S = 0.01


def _scp_archives(scp: Path) -> list[Path]:
    """The archive files an scp points into (a relative path not found from here is looked up beside it)."""
    out = []
    for ark in sorted({entry.rsplit(":", 1)[0] for _, entry in read_kv(scp)}):
        path = Path(ark)
        if not path.is_file() and not path.is_absolute() and (scp.parent / path.name).is_file():
            path = scp.parent / path.name  # recipes write paths relative to the recipe folder
        if not path.is_file():
            raise DataError(f"{scp}: archive {ark} not found (run from the recipe folder that wrote it)")
        out.append(path)
    return out


def _fbank_seconds(fbank_dir: Path) -> float:
    path = fbank_dir / "utt2num_frames"
    if not path.is_file():
        raise DataError(f"{path} not found: the audio duration of the set is read from the fbank dir's "
                        f"utt2num_frames (written by chunkssl.bin.compute_fbank)")
    return sum(int(n) for _, n in read_kv(path)) * FBANK_FRAME_S


def input_stats(input_dir: str | Path) -> dict:
    """Kind, information bitrate, stored bytes and stored bitrate of a code or fbank directory."""
    d = Path(input_dir)
    if (d / "code_info.yaml").is_file():
        info = read_code_info(d)
        if not info.get("feats_scp"):
            raise DataError(f"{d}/code_info.yaml records no feats_scp: cannot find the set's duration")
        seconds = _fbank_seconds(Path(info["feats_scp"]).parent)
        stored = sum(p.stat().st_size for p in _scp_archives(d / "codes.scp"))
        levels = "x".join(str(v) for v in info["levels"])
        return dict(kind=f"{info['tokenizer']} [{levels}]", info_bps=code_info_bitrate(info)["bits_per_second"],
                    bytes=stored, seconds=seconds, stored_bps=stored * 8 / seconds if seconds else None)
    if (d / "feats.scp").is_file():
        seconds = _fbank_seconds(d)
        stored = sum(p.stat().st_size for p in _scp_archives(d / "feats.scp"))
        dim = _feat_dim(d)
        return dict(kind=f"fbank {dim}-dim float32", info_bps=32 * dim / FBANK_FRAME_S,
                    bytes=stored, seconds=seconds, stored_bps=stored * 8 / seconds if seconds else None)
    raise DataError(f"{d}: neither a code directory (code_info.yaml) nor an fbank directory (feats.scp)")


def _feat_dim(fbank_dir: Path) -> int:
    path = fbank_dir / "feat_dim"
    if not path.is_file():
        raise DataError(f"{path} not found (chunkssl.bin.compute_fbank writes it beside feats.scp)")
    return int(path.read_text().split()[0])


def model_row(name: str, exp: str | Path, input_dir: str | Path, set_name: str, chunk: str) -> dict:
    """Input statistics and the WERs of one model on one set."""
    rows = {(r["mode"], r["chunk"]): r for r in collect(Path(exp), set_name)}

    def wer(mode: str, c: str):
        r = rows.get((mode, c))
        return None if r is None else r["error_rate"]

    stream = rows.get(("stream", chunk)) or {}
    return dict(name=name, exp=str(exp), **input_stats(input_dir), offline=wer("offline", "full"),
                masked=wer("offline", chunk), stream=wer("stream", chunk), first_token=stream.get("first_token"),
                utts=(rows.get(("offline", "full")) or {}).get("num_utts"))


def write_table(rows: list[dict], set_name: str, chunk: str, out: Path, command: str) -> None:
    """Markdown table; hand-written text under ``## Notes`` in an existing file is kept."""
    lines = [f"| model | input | bit/s (information) | {set_name} storage (bytes) | storage bit/s | "
             f"WER % offline | WER % {chunk} ms chunk mask | WER % streaming {chunk} ms | first token (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['kind']} | {fmt(r['info_bps'], ',.0f')} | {r['bytes']:,} | "
                     f"{fmt(r['stored_bps'], ',.0f')} | {fmt(r['offline'], '.2f')} | {fmt(r['masked'], '.2f')} | "
                     f"{fmt(r['stream'], '.2f')} | {fmt(r['first_token'], '.3f')} |")
    seconds = rows[0]["seconds"] if rows else 0.0
    utts = next((r["utts"] for r in rows if r["utts"]), None)
    head = f"Made by: `{command}`\n\n" if command else ""
    body = (f"{head}Set `{set_name}`: {fmt(utts, 'd')} utterances, {seconds:.1f} s of audio.\n\n"
            + "\n".join(lines) + "\n")
    write_keeping_notes(out, body)


def parse_exp(spec: str) -> tuple[str, str, str]:
    """``NAME=EXP_DIR@INPUT_DIR`` to its three parts."""
    name, sep, rest = spec.partition("=")
    exp, at, input_dir = rest.rpartition("@")
    if not sep or not at or not name or not exp or not input_dir:
        raise DataError(f"--exp {spec!r}: expected NAME=EXP_DIR@INPUT_DIR")
    return name, exp, input_dir


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", action="append", required=True, help="NAME=EXP_DIR@INPUT_DIR (repeatable)")
    p.add_argument("--set", required=True, help="the decoded set, e.g. test")
    p.add_argument("--chunk", default="640", help="chunk size (ms) of the streaming columns")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--command", default="", help="the command that made these results")
    args = p.parse_args(argv)
    rows = [model_row(*parse_exp(spec), args.set, args.chunk) for spec in args.exp]
    write_table(rows, args.set, args.chunk, args.out, args.command)
    print(args.out.read_text(encoding="utf-8").split("\n## Notes")[0])


if __name__ == "__main__":
    sys.exit(run_cli("codec.results", main))
