"""Word and character error rates with jiwer, per utterance and per set, plus sclite-like reports.

Scoring is case-sensitive and does no text normalisation: texts are compared token by token as
written (normalise before decoding/scoring if the task needs it). Words are whitespace-separated;
characters are every non-space character, with each run of whitespace between words counted as
one ``<space>`` token, as ESPnet's character scoring does.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from chunkssl.fileio import atomic_open

SPACE = "<space>"
UNITS = ("word", "char")


def tokenize(text: str, unit: str = "word") -> list[str]:
    """Split a transcript into scoring tokens: words, or characters with ``<space>`` between words."""
    words = text.split()
    if unit == "word":
        return words
    if unit == "char":
        out: list[str] = []
        for i, word in enumerate(words):
            if i:
                out.append(SPACE)
            out.extend(word)
        return out
    raise ValueError(f"unknown scoring unit {unit!r}; use one of {UNITS}")


@dataclass(frozen=True)
class Edit:
    """One aligned column: ``op`` is C (correct), S, D or I; the missing side is None."""

    op: str
    ref: str | None
    hyp: str | None


@dataclass(frozen=True)
class UttScore:
    """Edit counts and alignment of one utterance."""

    utt_id: str
    ref: tuple[str, ...]
    hyp: tuple[str, ...]
    edits: tuple[Edit, ...]

    def count(self, op: str) -> int:
        """Number of columns with edit ``op`` (C, S, D or I)."""
        return sum(1 for e in self.edits if e.op == op)

    @property
    def hits(self) -> int:
        return self.count("C")

    @property
    def substitutions(self) -> int:
        return self.count("S")

    @property
    def deletions(self) -> int:
        return self.count("D")

    @property
    def insertions(self) -> int:
        return self.count("I")

    @property
    def errors(self) -> int:
        return len(self.edits) - self.hits

    @property
    def error_rate(self) -> float | None:
        """Errors per reference token in percent; None when the reference is empty."""
        return 100.0 * self.errors / len(self.ref) if self.ref else None

    def to_dict(self) -> dict:
        """JSON-ready summary of this utterance."""
        return {"id": self.utt_id, "ref_tokens": len(self.ref), "hyp_tokens": len(self.hyp), "hits": self.hits,
                "substitutions": self.substitutions, "deletions": self.deletions, "insertions": self.insertions,
                "errors": self.errors, "error_rate": self.error_rate,
                "ref": " ".join(self.ref), "hyp": " ".join(self.hyp)}


@dataclass
class CorpusScore:
    """Scores of a set of utterances; totals are sums over utterances."""

    unit: str
    utts: list[UttScore]
    missing: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum of an UttScore integer attribute (hits, substitutions, deletions, insertions, errors)."""
        return sum(getattr(u, name) for u in self.utts)

    @property
    def ref_tokens(self) -> int:
        return sum(len(u.ref) for u in self.utts)

    @property
    def hyp_tokens(self) -> int:
        return sum(len(u.hyp) for u in self.utts)

    @property
    def error_rate(self) -> float | None:
        """Corpus error rate in percent (total errors / total reference tokens); None if no reference tokens."""
        return 100.0 * self.total("errors") / self.ref_tokens if self.ref_tokens else None

    @property
    def sentence_errors(self) -> int:
        return sum(1 for u in self.utts if u.errors)

    @property
    def metric(self) -> str:
        return "WER" if self.unit == "word" else "CER"

    def to_dict(self, set_name: str = "") -> dict:
        """JSON-ready totals and per-utterance scores."""
        n = len(self.utts)
        return {"set": set_name, "metric": self.metric, "unit": self.unit, "num_utts": n,
                "ref_tokens": self.ref_tokens, "hyp_tokens": self.hyp_tokens, "hits": self.total("hits"),
                "substitutions": self.total("substitutions"), "deletions": self.total("deletions"),
                "insertions": self.total("insertions"), "errors": self.total("errors"),
                "error_rate": self.error_rate, "sentence_errors": self.sentence_errors,
                "sentence_error_rate": 100.0 * self.sentence_errors / n if n else None,
                "missing_hyp": list(self.missing), "utterances": [u.to_dict() for u in self.utts]}


def _edits_from_chunks(ref: list[str], hyp: list[str], chunks) -> tuple[Edit, ...]:
    """Expand jiwer AlignmentChunks into one Edit per aligned column."""
    edits: list[Edit] = []
    for c in chunks:
        r, h = ref[c.ref_start_idx:c.ref_end_idx], hyp[c.hyp_start_idx:c.hyp_end_idx]
        if c.type == "equal":
            edits += [Edit("C", a, b) for a, b in zip(r, h)]
        elif c.type == "substitute":
            edits += [Edit("S", a, b) for a, b in zip(r, h)]
        elif c.type == "delete":
            edits += [Edit("D", a, None) for a in r]
        elif c.type == "insert":
            edits += [Edit("I", None, b) for b in h]
        else:
            raise RuntimeError(f"unexpected jiwer alignment chunk type {c.type!r}")
    return tuple(edits)


def score_pairs(pairs: list[tuple[str, str, str]], unit: str = "word",
                missing: list[str] | None = None) -> CorpusScore:
    """Align each ``(utt_id, reference, hypothesis)`` with jiwer's minimum edit distance and count edits."""
    import jiwer

    toks = [(u, tokenize(r, unit), tokenize(h, unit)) for u, r, h in pairs]
    utts: list[UttScore] = []
    if toks:
        # Tokens never contain whitespace, so jiwer's default split on spaces restores them exactly.
        out = jiwer.process_words([" ".join(r) for _, r, _ in toks], [" ".join(h) for _, _, h in toks])
        for (u, r, h), chunks in zip(toks, out.alignments):
            utts.append(UttScore(u, tuple(r), tuple(h), _edits_from_chunks(r, h, chunks)))
    return CorpusScore(unit, utts, list(missing or []))


def _width(s: str) -> int:
    """Terminal columns of ``s`` (East Asian wide characters take two, combining marks none)."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in s)


def format_alignment(utt: UttScore) -> str:
    """sclite-like block: id, counts, and REF/HYP/Eval lines with one padded column per edit."""
    ref_cols, hyp_cols, eval_cols = [], [], []
    for e in utt.edits:
        r = e.ref if e.ref is not None else "*" * _width(e.hyp or "")
        h = e.hyp if e.hyp is not None else "*" * _width(e.ref or "")
        w = max(_width(r), _width(h), 1)
        ref_cols.append(r + " " * (w - _width(r)))
        hyp_cols.append(h + " " * (w - _width(h)))
        eval_cols.append(("" if e.op == "C" else e.op).ljust(w))
    lines = [f"id: ({utt.utt_id})",
             f"Scores: (#C #S #D #I) {utt.hits} {utt.substitutions} {utt.deletions} {utt.insertions}",
             "REF:  " + " ".join(ref_cols), "HYP:  " + " ".join(hyp_cols), "Eval: " + " ".join(eval_cols)]
    return "".join(line.rstrip() + "\n" for line in lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def summary_table(score: CorpusScore, set_name: str) -> str:
    """Markdown summary row (ESPnet RESULTS.md columns) with its header, percentages of reference tokens."""
    n_ref = score.ref_tokens
    rate = (lambda k: 100.0 * k / n_ref) if n_ref else (lambda k: None)
    n = len(score.utts)
    row = [set_name, str(n), str(n_ref), _pct(rate(score.total("hits"))), _pct(rate(score.total("substitutions"))),
           _pct(rate(score.total("deletions"))), _pct(rate(score.total("insertions"))), _pct(score.error_rate),
           _pct(100.0 * score.sentence_errors / n if n else None)]
    head = "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|" if score.unit == "word" else \
           "|dataset|Snt|Chr|Corr|Sub|Del|Ins|Err|S.Err|"
    return f"{head}\n|---|---|---|---|---|---|---|---|---|\n|{'|'.join(row)}|\n"


def format_report(score: CorpusScore, set_name: str) -> str:
    """Whole ``result.txt``: summary table, one-line total, then every utterance's alignment block."""
    er = score.error_rate
    total = (f"%{score.metric} {'n/a' if er is None else f'{er:.2f}'} [ {score.total('errors')} / "
             f"{score.ref_tokens}, {score.total('insertions')} ins, {score.total('deletions')} del, "
             f"{score.total('substitutions')} sub ]")
    parts = [f"{score.metric} of {set_name} ({len(score.utts)} utterances, case-sensitive, unit={score.unit})\n\n",
             summary_table(score, set_name), "\n", total, "\n"]
    if score.missing:
        parts.append(f"{len(score.missing)} utterance(s) had no hypothesis and were scored as empty: "
                     f"{' '.join(score.missing)}\n")
    parts.append("\n")
    parts += [format_alignment(u) + "\n" for u in score.utts]
    return "".join(parts)


def write_results(score: CorpusScore, out_dir: str | os.PathLike, set_name: str) -> tuple[Path, Path]:
    """Write ``result.txt`` and ``result.json`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    txt, js = out_dir / "result.txt", out_dir / "result.json"
    with atomic_open(js, "w", encoding="utf-8") as f:
        json.dump(score.to_dict(set_name), f, ensure_ascii=False, indent=1)
        f.write("\n")
    with atomic_open(txt, "w", encoding="utf-8") as f:
        f.write(format_report(score, set_name))
    return txt, js
