"""Reading reference/hypothesis text files and pairing them by utterance id for scoring."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from chunkssl.fileio import DataError, read_kv


def _preview(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def load_text(path: str | os.PathLike) -> dict[str, str]:
    """Read a Kaldi ``text`` file (``utt words...``; empty transcripts allowed) in file order.

    Raises DataError on a missing file or a repeated utterance id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a Kaldi text file (one 'utt-id words...' per line)")
    out: dict[str, str] = {}
    for key, value in read_kv(path, allow_empty_value=True):
        if key in out:
            raise DataError(f"{path}: utterance {key!r} appears more than once; keep one line per utterance")
        out[key] = value
    return out


def load_lines(path: str | os.PathLike) -> dict[str, str]:
    """Read a plain line-aligned text file; keys are 1-based line numbers as strings (blank lines kept)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a plain text file with one segment per line")
    with open(path, encoding="utf-8") as f:
        return {str(i): line.rstrip("\n").strip() for i, line in enumerate(f, 1)}


def pair_texts(refs: dict[str, str], hyps: dict[str, str], ref_name: str = "reference",
               hyp_name: str = "hypothesis", allow_missing: bool = False,
               prog: str = "score") -> tuple[list[tuple[str, str, str]], list[str]]:
    """Pair hypotheses with references in reference order: ``([(utt, ref, hyp)], missing_ids)``.

    A hypothesis id absent from the references is always an error (wrong file or wrong set).
    A reference id without a hypothesis is an error unless ``allow_missing``, in which case it is
    scored against an empty hypothesis (every reference token a deletion) and a warning names it.
    """
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise DataError(f"{hyp_name}: {len(extra)} utterance(s) not in {ref_name}: {_preview(extra)}; "
                        f"score against the matching reference set, or drop them (utils/filter_scp.pl)")
    missing = [u for u in refs if u not in hyps]
    if missing and not allow_missing:
        raise DataError(f"{hyp_name}: no hypothesis for {len(missing)} utterance(s) of {ref_name}: "
                        f"{_preview(missing)}; rerun decoding for them, or pass --allow-missing to score "
                        f"them as empty hypotheses")
    if missing:
        print(f"{prog}: warning: {len(missing)} utterance(s) have no hypothesis in {hyp_name} and are scored "
              f"as empty: {_preview(missing)}", file=sys.stderr)
    return [(u, refs[u], hyps.get(u, "")) for u in refs], missing
