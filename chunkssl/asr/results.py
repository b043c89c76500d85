"""Read the scored decodes of an ASR experiment and present them: a RESULTS.md table and a WER plot.

Reads ``<exp>/decode_<set>/<mode>_<chunk>/{score/result.json,timing.json}`` as written by the asr1
stages: mode ``offline`` (batch decoding, chunk mask applied unless ``full``) or ``stream`` (true
streaming decoder), chunk in ms or ``full``. The entry point is ``chunkssl.bin.asr_results``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from chunkssl.fileio import write_keeping_notes
from chunkssl.metrics.plot import chunk_axis, save_figure

_DIR = re.compile(r"^(offline|stream)_(full|\d+)$")


def collect(exp: Path, set_name: str) -> list[dict]:
    """One row per scored decode dir of ``exp`` for ``set_name``, sorted by mode then chunk."""
    rows = []
    for d in sorted((exp / f"decode_{set_name}").glob("*")):
        m = _DIR.match(d.name)
        if not m or not (d / "score" / "result.json").exists():
            continue
        score = json.loads((d / "score" / "result.json").read_text())
        timing = json.loads((d / "timing.json").read_text()) if (d / "timing.json").exists() else {}
        rows.append({
            "mode": m.group(1), "chunk": m.group(2), "metric": score.get("metric", "WER"),
            "error_rate": score["error_rate"], "num_utts": score["num_utts"], "rtf": timing.get("rtf"),
            "first_token": (timing.get("first_token_latency_s") or {}).get("mean"),
            "emission": (timing.get("token_emission_delay_s") or {}).get("mean"),
        })
    rows.sort(key=lambda r: (r["mode"], r["chunk"] == "full", int(r["chunk"]) if r["chunk"] != "full" else 0))
    return rows


def fmt(value: object, spec: str) -> str:
    """``value`` formatted by ``spec``, or a dash for a missing (None) value."""
    return "–" if value is None else format(value, spec)


def write_table(results: dict[str, dict[str, list[dict]]], out: Path, command: str) -> None:
    """Markdown table of every row, with the command that made it."""
    lines = ["| model | set | decoding | chunk (ms) | utts | WER % | RTF | first token (s) | emission delay (s) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for name, by_set in results.items():
        for set_name, rows in by_set.items():
            for r in rows:
                mode = "streaming" if r["mode"] == "stream" else ("offline" if r["chunk"] == "full"
                                                                  else "simulated streaming")
                lines.append(f"| {name} | {set_name} | {mode} | {r['chunk']} | {r['num_utts']} | "
                             f"{fmt(r['error_rate'], '.2f')} | {fmt(r['rtf'], '.4f')} | "
                             f"{fmt(r['first_token'], '.3f')} | {fmt(r['emission'], '.3f')} |")
    body = "\n".join(lines) + "\n"
    # notes written by hand under a "## Notes" heading survive a rerun that rewrites the table
    write_keeping_notes(out, f"Made by: `{command}`\n\n{body}" if command else body)


def plot(results: dict[str, dict[str, list[dict]]], out: Path) -> None:
    """WER against chunk size (full context at the right), one line per model, set and decoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    chunks = sorted({int(r["chunk"]) for by_set in results.values() for rows in by_set.values()
                     for r in rows if r["chunk"] != "full"})
    xfull = (max(chunks) * 2) if chunks else 1
    for name, by_set in results.items():
        for set_name, rows in by_set.items():
            for mode in ("offline", "stream"):
                pts = [(xfull if r["chunk"] == "full" else int(r["chunk"]), r["error_rate"])
                       for r in rows if r["mode"] == mode and r["error_rate"] is not None]
                if pts:
                    xs, ys = zip(*sorted(pts))
                    label = f"{name} {set_name} ({'streaming' if mode == 'stream' else 'chunk mask'})"
                    ax.plot(xs, ys, marker="o" if mode == "offline" else "s", label=label)
    chunk_axis(ax, chunks, xfull, "chunk size (ms): algorithmic latency")
    save_figure(fig, out, dpi=120)
