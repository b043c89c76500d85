"""Corpus BLEU and chrF with sacrebleu on detokenised, case-sensitive translations.

Inputs must already be detokenised (sentencepiece pieces joined back into text); sacrebleu then
applies its own standard tokenisation (13a for BLEU) so scores are comparable across papers. The
sacrebleu signature string is kept with every score.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from chunkssl.fileio import atomic_open


def score_translations(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "13a") -> dict:
    """Corpus BLEU and chrF of ``hyps`` against one reference each; returns a JSON-ready dict."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses; need one per segment")
    if not refs:
        raise ValueError("no segments to score")
    bleu_metric, chrf_metric = BLEU(tokenize=tokenize), CHRF()
    bleu = bleu_metric.corpus_score(list(hyps), [list(refs)])
    chrf = chrf_metric.corpus_score(list(hyps), [list(refs)])
    return {"num_segments": len(refs),
            "bleu": bleu.score, "bleu_precisions": list(bleu.precisions), "bleu_bp": bleu.bp,
            "hyp_len": bleu.sys_len, "ref_len": bleu.ref_len, "bleu_signature": str(bleu_metric.get_signature()),
            "chrf": chrf.score, "chrf_signature": str(chrf_metric.get_signature())}


def format_report(result: dict, set_name: str) -> str:
    """Human-readable ``result.txt`` for an ST score dict (plus latency keys if present)."""
    lines = [f"ST scores of {set_name} ({result['num_segments']} segments, detokenised, case-sensitive)",
             f"BLEU = {result['bleu']:.2f} ({'/'.join(f'{p:.1f}' for p in result['bleu_precisions'])}, "
             f"BP = {result['bleu_bp']:.3f}, hyp_len = {result['hyp_len']}, ref_len = {result['ref_len']})  "
             f"[{result['bleu_signature']}]",
             f"chrF = {result['chrf']:.2f}  [{result['chrf_signature']}]"]
    if "latency" in result:
        lat = result["latency"]
        for key in ("AL", "LAAL", "AL_CA", "LAAL_CA"):
            if key in lat:
                lines.append(f"{key} = {'n/a' if lat[key] is None else f'{lat[key]:.1f}'} ms")
        lines.append(f"latency: {lat['num_scored']} segments scored, {len(lat['skipped_empty'])} with no "
                     f"output skipped, unit = {lat['unit']}")
    return "\n".join(lines) + "\n"


def write_results(result: dict, out_dir: str | os.PathLike, set_name: str) -> tuple[Path, Path]:
    """Write ``result.txt`` and ``result.json`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    txt, js = out_dir / "result.txt", out_dir / "result.json"
    with atomic_open(js, "w", encoding="utf-8") as f:
        json.dump({"set": set_name, **result}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with atomic_open(txt, "w", encoding="utf-8") as f:
        f.write(format_report(result, set_name))
    return txt, js
