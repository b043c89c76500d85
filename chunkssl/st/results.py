"""Collect ST scores into a RESULTS.md table: python -m chunkssl.st.results --exp E --decodes SET:CHUNK:DIR ... --out F.

Each decode dir holds ``full/score/result.json`` (full-utterance beam search with the chunk mask)
and ``simul/score/result.json`` (simultaneous local agreement, with latency), as st.sh stage 7
writes them. Chunk 0 is offline (full context). ``--policies la=simul waitk=simul_waitk`` adds the
rows of other simultaneous decodes (st.sh --simul-tag); ``--json F`` also writes the rows as
``{"rows": [{"init", "set", "policy", "chunk_ms", "bleu", "chrf", "al", "laal", "al_ca", "laal_ca"}]}``
(policy ``full`` is the beam search, without latency; chunk_ms 0 is full context).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chunkssl.fileio import DataError, atomic_open, run_cli, write_keeping_notes

PROG = "chunkssl.st.results"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} ({e}); run st.sh stage 7 scoring first") from None


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def results_table(decodes: list[tuple[str, int, Path]], simul_dir: str = "simul", policy: str = "") -> str:
    """Markdown table: one row per (set, chunk size) with BLEU/chrF and AL/LAAL (+CA) in ms."""
    head = ("|set|chunk|BLEU full|chrF full|BLEU simul|chrF simul|AL|LAAL|AL_CA|LAAL_CA|\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for set_name, chunk, d in decodes:
        if policy and not (d / simul_dir / "score/result.json").exists():
            continue  # an extra policy need not cover every chunk size (offline is the same for all)
        simul = _load(d / simul_dir / "score/result.json")
        # the full-utterance decode is optional (n/a when it was not run)
        full = _load(d / "full/score/result.json") if (d / "full/score/result.json").exists() else {}
        lat = simul.get("latency", {})
        label = ("offline" if chunk <= 0 else f"{chunk} ms") + (f" {policy}" if policy else "")
        rows.append(f"|{set_name}|{label}|{_fmt(full.get('bleu'), 2)}|"
                    f"{_fmt(full.get('chrf'))}|{simul['bleu']:.2f}|{simul['chrf']:.1f}|{_fmt(lat.get('AL'))}|"
                    f"{_fmt(lat.get('LAAL'))}|{_fmt(lat.get('AL_CA'))}|{_fmt(lat.get('LAAL_CA'))}|")
    return head + "\n".join(rows) + "\n"


def result_rows(decodes: list[tuple[str, int, Path]], policies: list[tuple[str, str]], init: str) -> list[dict]:
    """One row per scored decode: the beam search (policy ``full``) and each ``(policy, subdir)``."""
    rows = []
    for set_name, chunk, d in decodes:
        found = [("full", d / "full/score/result.json")]
        found += [(name, d / sub / "score/result.json") for name, sub in policies]
        for name, path in found:
            if not path.exists():
                continue
            res = _load(path)
            lat = res.get("latency", {})
            rows.append({"init": init, "set": set_name, "policy": name, "chunk_ms": chunk,
                         "bleu": round(res["bleu"], 2), "chrf": round(res["chrf"], 2),
                         **{k.lower(): None if lat.get(k) is None else round(lat[k], 1)
                            for k in ("AL", "LAAL", "AL_CA", "LAAL_CA")}})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--exp", required=True, help="the ST experiment directory (for the header)")
    p.add_argument("--decodes", nargs="+", required=True, help="SET:CHUNK_MS:DECODE_DIR entries")
    p.add_argument("--out", required=True, help="the RESULTS.md to write")
    p.add_argument("--command", default="", help="the command that produced the results")
    p.add_argument("--note", default="", help="free text put under the table (e.g. timings)")
    p.add_argument("--policies", nargs="+", default=["la=simul"],
                   help="NAME=SUBDIR of the simultaneous decodes, the first one in the main table")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--init", default="", help="the encoder initialisation, for the JSON rows")
    args = p.parse_args(argv)
    decodes = []
    for spec in args.decodes:
        parts = spec.split(":", 2)
        if len(parts) != 3 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"--decodes entry {spec!r} is not SET:CHUNK_MS:DIR")
        decodes.append((parts[0], int(parts[1]), Path(parts[2])))
    policies = [tuple(spec.split("=", 1)) for spec in args.policies]
    if any(len(pol) != 2 for pol in policies):
        raise DataError(f"--policies takes NAME=SUBDIR entries, got {args.policies}")
    table = results_table(decodes, policies[0][1])
    for name, sub in policies[1:]:
        table += "\n" + results_table(decodes, sub, name)
    sig = _load(decodes[0][2] / policies[0][1] / "score/result.json")
    text = (f"# ST results: {args.exp}\n\n" + (f"Command: `{args.command}`\n\n" if args.command else "")
            + "BLEU/chrF: sacrebleu on detokenised, case-sensitive output "
            f"(`{sig['bleu_signature']}`, `{sig['chrf_signature']}`). *full*: beam search over the whole "
            "utterance with the encoder's chunk mask; *simul*: local-agreement simultaneous decoding "
            "(docs/metrics.md). AL/LAAL in ms of source (words), SimulEval definitions; _CA adds "
            "the decoder's compute time.\n\n" + table + (f"\n{args.note}\n" if args.note else ""))
    write_keeping_notes(Path(args.out), text)  # a hand-written "## Notes" part survives a rerun
    if args.json:
        with atomic_open(args.json, "w", encoding="utf-8") as f:
            json.dump({"command": args.command, "rows": result_rows(decodes, policies, args.init)}, f, indent=1)
            f.write("\n")
    print(f"{PROG}: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
