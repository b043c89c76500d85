"""Libri-light unlabelled audio (``<subset>/<speaker>/<book>/<file>.flac`` + ``<file>.json``) to Kaldi data dirs.

Each flac comes with a json of metadata whose ``voice_activity`` is a list of ``[start, end]`` seconds
(Libri-light's VAD); other fields (``speaker``, ``snr``, ``book_meta``) are not needed here. Files run
for minutes to hours, so each is cut into segments of at most ``--max-seg-sec`` seconds by merging
consecutive voice-activity spans greedily (the silence between merged spans is kept, so a segment is
contiguous audio); a single span longer than the limit is split into equal pieces under it, and
segments shorter than ``--min-seg-sec`` are dropped. Spans past the end of the audio are clipped.

Output per subset (``data/<subset>``, e.g. ``data/small``): ``wav.scp`` keyed by recording id
``<speaker>-<book>-<file>`` (characters outside ``[A-Za-z0-9_.]`` become ``_``), ``segments`` with
utterance ids ``<recording>-<start ms:08d>-<end ms:08d>``, ``utt2spk``/``spk2utt`` (the LibriVox
speaker). There is deliberately no ``text``: the SSL stage needs none, and utils/validate_data_dir.sh
--no-text and utils/fix_data_dir.sh accept a data dir without it.
``--dev-recordings N`` holds out the last N recordings of each subset as ``data/<subset>_dev``.
"""

from __future__ import annotations

import sys

import argparse
import json
import math
import os
import re
from pathlib import Path

import soundfile as sf

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
_EPS = 1e-6  # VAD times have centisecond precision; this absorbs float error in the length test


def merge_vad(spans: list[tuple[float, float]], max_sec: float, min_sec: float = 0.0,
              total: float | None = None) -> list[tuple[float, float]]:
    """Greedily merge voice-activity spans into segments of at most ``max_sec`` seconds.

    Spans are taken in time order; a span joins the open segment when the result stays within
    ``max_sec`` (measured from the segment start, gaps included), else it opens a new one. A span
    longer than ``max_sec`` is first split into equal pieces. With ``total`` (the audio length) spans
    are clipped to it. Segments shorter than ``min_sec`` are dropped.
    """
    if max_sec <= 0:
        raise ValueError(f"max_sec must be positive, got {max_sec}")
    segments: list[tuple[float, float]] = []
    current: tuple[float, float] | None = None
    for start, end in sorted(spans):
        if total is not None:
            end = min(end, total)
        if end <= start:
            continue
        pieces = math.ceil((end - start) / max_sec - _EPS)
        step = (end - start) / pieces
        for k in range(pieces):
            p_start, p_end = start + k * step, end if k == pieces - 1 else start + (k + 1) * step
            if current is not None and max(current[1], p_end) - current[0] <= max_sec + _EPS:
                current = (current[0], max(current[1], p_end))
            else:
                if current is not None:
                    segments.append(current)
                current = (p_start, p_end)
    if current is not None:
        segments.append(current)
    return [s for s in segments if s[1] - s[0] >= min_sec - _EPS]


def read_vad(meta: Path) -> list[tuple[float, float]]:
    """The ``voice_activity`` spans of one Libri-light json file."""
    try:
        with open(meta, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"Libri-light: cannot read voice-activity metadata {meta} ({e}); restore it from the archive")
    spans = info.get("voice_activity") if isinstance(info, dict) else None
    if not isinstance(spans, list):
        raise DataError(f"Libri-light: {meta} has no 'voice_activity' list of [start, end] seconds; "
                        f"is it a Libri-light metadata file?")
    out = []
    for i, span in enumerate(spans):
        if not (isinstance(span, (list, tuple)) and len(span) == 2
                and all(isinstance(t, (int, float)) for t in span) and 0 <= span[0]):
            raise DataError(f"Libri-light: {meta}: voice_activity[{i}] = {span!r} is not a [start, end] pair "
                            f"of non-negative seconds")
        out.append((float(span[0]), float(span[1])))
    return out


def recording_id(speaker: str, book: str, stem: str) -> str:
    """Whitespace-free recording id ``<speaker>-<book>-<file>`` that starts with the speaker id."""
    return "-".join(_UNSAFE.sub("_", part) for part in (speaker, book, stem))


def read_subset(root: Path, max_sec: float, min_sec: float) -> dict[str, list[Utterance]]:
    """Segments of every recording under ``<root>/<speaker>/<book>/``, grouped by recording id."""
    if not root.is_dir():
        raise DataError(f"Libri-light: subset folder {root} not found; set LIBRILIGHT in db.sh to the folder "
                        f"holding it, or run local/download.sh")
    by_rec: dict[str, list[Utterance]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(f for f in filenames if f.endswith(".flac")):
            flac = Path(dirpath) / name
            rel = flac.relative_to(root).parts
            if len(rel) != 3:
                raise DataError(f"Libri-light: {flac} is not at <subset>/<speaker>/<book>/<file>.flac")
            speaker, book = rel[0], rel[1]
            meta = flac.with_suffix(".json")
            if not meta.is_file():
                raise DataError(f"Libri-light: {flac} has no voice-activity file {meta}; restore it from the "
                                f"archive or delete the flac")
            info = sf.info(str(flac))
            total = info.frames / info.samplerate
            rec = recording_id(speaker, book, flac.stem)
            if rec in by_rec:
                raise DataError(f"Libri-light: {flac} gives recording id {rec!r}, already used by another file; "
                                f"rename one of them")
            by_rec[rec] = [
                Utterance(f"{rec}-{round(s * 1000):08d}-{round(e * 1000):08d}", _UNSAFE.sub("_", speaker),
                          str(flac.resolve()), None, recording=rec, start=s, end=e)
                for s, e in merge_vad(read_vad(meta), max_sec, min_sec, total)
            ]
    if not by_rec:
        raise DataError(f"Libri-light: no <speaker>/<book>/*.flac files under {root}")
    return by_rec



def prepare(src: Path, out: Path, subsets: list[str], max_sec: float = 15.0, min_sec: float = 1.0,
            dev_recordings: int = 0) -> dict[str, int]:
    """Write out/<subset> (and out/<subset>_dev) for each subset; returns segment counts per set."""
    counts = {}
    for subset in subsets:
        by_rec = read_subset(src / subset, max_sec, min_sec)
        recs = sorted(by_rec)
        if dev_recordings >= len(recs):
            raise DataError(f"Libri-light: --dev-recordings {dev_recordings} leaves no training recordings in "
                            f"{src / subset} ({len(recs)} recordings)")
        name = subset.replace("-", "_")
        train_recs = recs[:len(recs) - dev_recordings]
        counts[name] = write_data_dir(out / name, [u for r in train_recs for u in by_rec[r]])
        if dev_recordings > 0:
            counts[f"{name}_dev"] = write_data_dir(out / f"{name}_dev",
                                                      [u for r in recs[len(train_recs):] for u in by_rec[r]])
    return counts


def main() -> None:
    """Command line: python -m chunkssl.corpora.librilight --src $LIBRILIGHT --out data --subsets small."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="folder holding the subset folders (small/, ...)")
    p.add_argument("--out", type=Path, required=True, help="where data/<subset> go")
    p.add_argument("--subsets", nargs="+", default=["small"], help="small, medium, large, duplicate")
    p.add_argument("--max-seg-sec", type=float, default=15.0, help="longest segment, seconds")
    p.add_argument("--min-seg-sec", type=float, default=1.0, help="shorter segments are dropped")
    p.add_argument("--dev-recordings", type=int, default=0, help="recordings per subset held out as <subset>_dev")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.subsets, args.max_seg_sec, args.min_seg_sec, args.dev_recordings)
    print("librilight: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("librilight", main))
