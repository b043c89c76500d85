"""Tables, plot and acceptance checks of the small-scale Chunk SSL replication (egs2/synth_pool, issue 13).

    python -m chunkssl.bin.replication_results --manifest exp/replication/rows.tsv --fbank-dir dump/fbank \\
        --out-dir exp/replication --command "./run.sh" [--timing ../ssl1/exp/timing.tsv exp/timing.tsv]

The manifest (written by egs2/synth_pool/asr1/run.sh) has a header and one tab-separated line per fine-tuned
model: ``model targets cada set seed exp ref``; lines with the same model, targets and set are the seeds of
one row. Every decode dir ``<exp>/decode_<ref>/{offline,stream}_<chunk>/text`` is scored against
``<fbank-dir>/<ref>/text`` for WER and CER (chunkssl.metrics; a missing hypothesis counts as empty and
is reported). Writes, in --out-dir: RESULTS.json (exactly ``{"rows": [{"model", "targets", "cada", "chunk_ms",
"decoding", "wer": [per seed], "cer": [per seed], "set"}]}``), details.json (the same rows with their seeds,
utterance and missing-hypothesis counts, and the acceptance checks), RESULTS.md (mean, standard deviation
and range over seeds, the checks, the wall times, the command) and wer_vs_chunk.png; prints the checks.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from pathlib import Path

from chunkssl.fileio import DataError, atomic_open, run_cli, write_keeping_notes
from chunkssl.metrics.asr import score_pairs
from chunkssl.metrics.io import load_text, pair_texts
from chunkssl.metrics.plot import chunk_axis, save_figure

PROG = "replication_results"
DECODE_DIR = re.compile(r"^(offline|stream)_(full|\d+)$")
FIELDS = ("model", "targets", "cada", "set", "seed", "exp", "ref")
SCHEMA = ("model", "targets", "cada", "chunk_ms", "decoding", "wer", "cer", "set")  # the keys of a RESULTS.json row
MAIN, BASELINE, FULLCTX = ("chunk_ssl", "fsq_6m"), ("scratch", "none"), ("full_context", "fsq_6m")


def read_manifest(path: Path) -> list[dict]:
    """The manifest's lines as dicts (cada as bool), checked for its columns."""
    with open(path, encoding="utf-8") as f:
        lines = list(csv.DictReader(f, delimiter="\t"))
    if not lines or tuple(lines[0].keys()) != FIELDS:
        raise DataError(f"{path}: expected a header with the columns {' '.join(FIELDS)} and one line per model")
    for i, line in enumerate(lines, 2):
        if line["cada"] not in ("true", "false"):
            raise DataError(f"{path}:{i}: cada must be true or false, got {line['cada']!r}")
        line["cada"] = line["cada"] == "true"
    return lines


def score_decodes(exp: Path, ref: Path) -> dict[tuple[str, int | str], dict]:
    """``{(decoding, chunk_ms): {"wer", "cer", "num_utts", "missing"}}`` for every decode dir of one model."""
    refs = load_text(ref)
    out = {}
    root = exp / f"decode_{ref.parent.name}"
    for d in sorted(root.glob("*")) if root.is_dir() else []:
        m = DECODE_DIR.match(d.name)
        if not m or not (d / "text").is_file():
            continue
        pairs, missing = pair_texts(refs, load_text(d / "text"), str(ref), str(d / "text"), True, PROG)
        chunk = m.group(2) if m.group(2) == "full" else int(m.group(2))
        out[("streaming" if m.group(1) == "stream" else "simulated", chunk)] = {
            "wer": score_pairs(pairs, "word", missing).error_rate,
            "cer": score_pairs(pairs, "char", missing).error_rate,
            "num_utts": len(pairs), "missing": len(missing)}
    return out


def collect(manifest: list[dict], fbank_dir: Path, base: Path) -> list[dict]:
    """RESULTS.json rows: one per (model, targets, set, decoding, chunk), seeds in manifest order."""
    rows: dict[tuple, dict] = {}
    for line in manifest:
        exp = base / line["exp"]
        scores = score_decodes(exp, fbank_dir / line["ref"] / "text")
        if not scores:
            print(f"{PROG}: warning: no decodes under {exp}/decode_{line['ref']}: seed {line['seed']} of "
                  f"{line['model']}/{line['targets']} is left out (run its stages 4-8)", file=sys.stderr)
        for (decoding, chunk), s in scores.items():
            key = (line["model"], line["targets"], line["set"], decoding, chunk)
            row = rows.setdefault(key, {"model": line["model"], "targets": line["targets"], "cada": line["cada"],
                                        "chunk_ms": chunk, "decoding": decoding, "wer": [], "cer": [],
                                        "set": line["set"], "seeds": [], "num_utts": s["num_utts"],
                                        "missing_hyp": []})
            row["wer"].append(s["wer"])
            row["cer"].append(s["cer"])
            row["seeds"].append(int(line["seed"]))
            row["missing_hyp"].append(s["missing"])
    order: dict[str, int] = {}  # sets and models in the manifest's order of first appearance
    for m in manifest:
        order.setdefault(m["set"], len(order))
        order.setdefault(m["model"] + "/" + m["targets"], len(order))

    def sort_key(r: dict) -> tuple:
        return (order[r["set"]], order[r["model"] + "/" + r["targets"]], r["decoding"] == "streaming",
                r["chunk_ms"] == "full", r["chunk_ms"] if r["chunk_ms"] != "full" else 0)
    return sorted(rows.values(), key=sort_key)


def stats(values: list[float | None]) -> dict:
    """Mean, sample standard deviation (0 for one value) and range of the values that exist."""
    v = [x for x in values if x is not None]
    if not v:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "n": len(v)}


def find(rows: list[dict], who: tuple[str, str], set_name: str, decoding: str, chunk) -> dict | None:
    """The row of one model/targets at one set, decoding and chunk, or None."""
    for r in rows:
        if (r["model"], r["targets"], r["set"], r["decoding"], r["chunk_ms"]) == (*who, set_name, decoding, chunk):
            return r
    return None


def compare(rows: list[dict], better: tuple[str, str], worse: tuple[str, str], decoding: str, chunk,
            min_rel: float) -> dict:
    """Does ``better`` beat ``worse`` on unseen voices by >= min_rel relative WER (means), with the seed
    ranges apart (better's worst seed below worse's best)? Missing rows give held=None."""
    a, b = (find(rows, w, "unseen_voices", decoding, chunk) for w in (better, worse))
    what = {"better": "/".join(better), "worse": "/".join(worse), "decoding": decoding, "chunk_ms": chunk,
            "min_relative": min_rel}
    if a is None or b is None or stats(a["wer"])["n"] == 0 or stats(b["wer"])["n"] == 0:
        return {**what, "held": None, "why": "rows missing"}
    sa, sb = stats(a["wer"]), stats(b["wer"])
    rel = (sb["mean"] - sa["mean"]) / sb["mean"] if sb["mean"] else 0.0
    apart = sa["max"] < sb["min"]
    return {**what, "wer_better": sa, "wer_worse": sb, "relative": rel, "ranges_apart": apart,
            "held": rel >= min_rel and apart}


def acceptance(rows: list[dict]) -> list[dict]:
    """The issue's targets: Chunk SSL vs scratch (>= 25 % relative at 640 ms streaming and 320 ms),
    CADA vs full-context masked prediction (better at 160 and 320 ms)."""
    return [compare(rows, MAIN, BASELINE, "streaming", 640, 0.25),
            compare(rows, MAIN, BASELINE, "simulated", 320, 0.25),
            compare(rows, MAIN, FULLCTX, "simulated", 160, 0.0),
            compare(rows, MAIN, FULLCTX, "simulated", 320, 0.0)]


def _cell(values: list[float | None]) -> str:
    s = stats(values)
    if s["n"] == 0:
        return "–"
    if s["n"] == 1:
        return f"{s['mean']:.1f}"
    return f"{s['mean']:.1f} ± {s['sd']:.1f} ({s['min']:.1f}–{s['max']:.1f})"


def _check_line(c: dict) -> str:
    name = f"{c['better']} vs {c['worse']}, {c['decoding']} {c['chunk_ms']} ms"
    if c["held"] is None:
        return f"- {name}: not measured ({c['why']})"
    verdict = "HELD" if c["held"] else "MISSED"
    return (f"- {name}: WER {c['wer_better']['mean']:.2f} vs {c['wer_worse']['mean']:.2f} %, relative "
            f"{100 * c['relative']:+.1f} % (target >= {100 * c['min_relative']:.0f} %), seed ranges "
            f"{'apart' if c['ranges_apart'] else 'overlap'}: **{verdict}**")


def timing_table(paths: list[Path]) -> str:
    """Markdown table of the steps in the recipes' timing.tsv files: runs, last and longest wall time."""
    steps: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for p in paths:
        if not p.is_file():
            continue
        for line in p.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 5 and parts[2].isdigit():
                steps.setdefault((parts[0], parts[1]), []).append((int(parts[2]), int(parts[3]), parts[4]))
    if not steps:
        return ""
    lines = ["| recipe | step | runs | last run (s) | longest (s) | last exit | last finished |",
             "|---|---|---:|---:|---:|---:|---|"]
    for (recipe, step), runs in steps.items():
        last = runs[-1]
        lines.append(f"| {recipe} | {step} | {len(runs)} | {last[0]} | {max(r[0] for r in runs)} | {last[1]} | "
                     f"{last[2]} |")
    return "\n".join(lines) + "\n"


def write_markdown(rows: list[dict], checks: list[dict], out: Path, command: str, timing: str) -> None:
    """RESULTS.md: WER (and CER) per row and chunk, mean ± sd (range) over seeds; checks; times."""
    chunks = sorted({r["chunk_ms"] for r in rows if r["chunk_ms"] != "full" and r["decoding"] == "simulated"})
    cols = [("simulated", c) for c in chunks] + [("simulated", "full")] + sorted(
        {(r["decoding"], r["chunk_ms"]) for r in rows if r["decoding"] == "streaming"}, key=lambda k: str(k[1]))
    head = [f"{c} ms" if d == "simulated" and c != "full" else ("offline" if c == "full" else f"stream {c} ms")
            for d, c in cols]
    parts = [f"Made by: `{command}`\n" if command else "",
             "WER % (CER % below each WER line) on each test set; several seeds: mean ± sd (min–max). "
             "Chunk columns: chunk-mask (simulated streaming) decoding; offline: full context; stream: the "
             "true streaming decoder.\n"]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        parts.append(f"\n### {set_name}\n")
        lines = ["| model | targets | CADA | seeds | metric | " + " | ".join(head) + " |",
                 "|---|---|---|---:|---|" + "---:|" * len(cols)]
        for who in dict.fromkeys((r["model"], r["targets"]) for r in rows if r["set"] == set_name):
            mine = [r for r in rows if (r["model"], r["targets"], r["set"]) == (*who, set_name)]
            seeds = max(len(r["wer"]) for r in mine)
            for metric in ("wer", "cer"):
                cells = [_cell(next((r[metric] for r in mine if (r["decoding"], r["chunk_ms"]) == k), []))
                         for k in cols]
                lines.append(f"| {who[0]} | {who[1]} | {'yes' if mine[0]['cada'] else 'no'} | {seeds} | "
                             f"{metric.upper()} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    parts.append("\n### Acceptance targets (unseen voices)\n\n" + "\n".join(_check_line(c) for c in checks) + "\n")
    parts.append("\n![WER vs chunk](wer_vs_chunk.png)\n")
    if timing:
        parts.append("\n### Wall time of each step (2-core CPU unless noted)\n\n" + timing)
    write_keeping_notes(out, "".join(parts))


def plot(rows: list[dict], out: Path) -> None:
    """WER (mean over seeds, bars = range) against chunk size, one line per model on each set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    chunks = sorted({r["chunk_ms"] for r in rows if r["chunk_ms"] != "full"}) or [1]
    xfull = max(chunks) * 2
    for ax, set_name in zip(axes[0], sets):
        for who in dict.fromkeys((r["model"], r["targets"]) for r in rows if r["set"] == set_name):
            for decoding, marker in (("simulated", "o"), ("streaming", "s")):
                pts = []
                for r in rows:
                    s = stats(r["wer"])
                    if (r["model"], r["targets"], r["set"], r["decoding"]) == (*who, set_name, decoding) and s["n"]:
                        x = xfull if r["chunk_ms"] == "full" else r["chunk_ms"]
                        pts.append((x, s["mean"], s["mean"] - s["min"], s["max"] - s["mean"]))
                if pts:
                    pts.sort()
                    xs, ys, lo, hi = zip(*pts)
                    label = f"{who[0]} {who[1]}" + (" (streaming)" if decoding == "streaming" else "")
                    ax.errorbar(xs, ys, yerr=[lo, hi], marker=marker, capsize=3, label=label,
                                linestyle="-" if decoding == "simulated" else "none")
        ax.set_title(set_name)
        chunk_axis(ax, chunks, xfull)
    save_figure(fig, out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--manifest", type=Path, required=True, help="rows.tsv written by the asr1 recipe")
    p.add_argument("--fbank-dir", type=Path, required=True, help="dir of <set>/text references (dump/fbank)")
    p.add_argument("--out-dir", type=Path, required=True, help="where RESULTS.{md,json} and the plot go")
    p.add_argument("--base", type=Path, default=Path("."), help="exp paths of the manifest are relative to it")
    p.add_argument("--command", default="", help="the command that made these results")
    p.add_argument("--timing", type=Path, nargs="*", default=[], help="timing.tsv files of the recipes")
    args = p.parse_args(argv)
    if not args.manifest.is_file():
        raise DataError(f"{args.manifest}: no such manifest; the asr1 recipe's stage 9 writes it")
    rows = collect(read_manifest(args.manifest), args.fbank_dir, args.base)
    if not rows:
        raise DataError(f"no decodes found for any model of {args.manifest}: run the fine-tuning and "
                        f"decoding stages first")
    checks = acceptance(rows)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(args.out_dir / "RESULTS.json") as f:
        json.dump({"rows": [{k: r[k] for k in SCHEMA} for r in rows]}, f, indent=1)
    with atomic_open(args.out_dir / "details.json") as f:
        json.dump({"rows": rows, "acceptance": checks, "command": args.command}, f, indent=1)
    plot(rows, args.out_dir / "wer_vs_chunk.png")
    write_markdown(rows, checks, args.out_dir / "RESULTS.md", args.command, timing_table(args.timing))
    for c in checks:
        print(_check_line(c)[2:].replace("**", ""))
    print(f"{PROG}: wrote {args.out_dir}/RESULTS.md, RESULTS.json and wer_vs_chunk.png")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
