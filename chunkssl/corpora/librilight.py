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
``--dev-recordings N`` holds out the last N recordings of each subset (in sorted recording-id order)
as ``data/<subset>_dev``.

``--nj N`` spreads the scan over a job array run through ``--cmd`` (the recipe's ``$train_cmd``:
``run.pl`` by default, ``slurm.pl`` works the same) as ``<cmd> JOB=1:N <out>/local/librilight/log/
prep.JOB.log python -m chunkssl.corpora.librilight ... --job JOB``. Job ``j`` takes every N-th speaker
folder of each subset (sorted names, starting at the ``j``-th), so the parts are disjoint and fixed
for a given N; each job writes its recordings to a part file in a temp dir, and only when every job
succeeded are the parts merged (sorted by recording id, so the data dirs are byte-identical for any
N, hold-out included), written to temp dirs and moved over ``<out>/<subset>``. A failed job leaves
the data dirs as they were and is reported with its log.
"""

from __future__ import annotations

import sys

import argparse
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, atomic_open, job_launcher, job_log_tail, run_cli, run_job_array

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


@dataclass(frozen=True)
class Recording:
    """One Libri-light file of a subset: its id, speaker, absolute flac path and segments (seconds)."""

    subset: str
    rec: str
    speaker: str
    audio: str
    segments: tuple[tuple[float, float], ...]


def speaker_folders(root: Path) -> list[str]:
    """Sorted speaker folder names of one subset folder (DataError if it is missing or holds stray flacs)."""
    if not root.is_dir():
        raise DataError(f"Libri-light: subset folder {root} not found; set LIBRILIGHT in db.sh to the folder "
                        f"holding it, or run local/download.sh")
    names = []
    for entry in os.scandir(root):
        if entry.is_dir():
            names.append(entry.name)
        elif entry.name.endswith(".flac"):
            raise DataError(f"Libri-light: {root / entry.name} is not at <subset>/<speaker>/<book>/<file>.flac")
    return sorted(names)


def job_share(speakers: list[str], nj: int, job: int) -> list[str]:
    """The speakers job ``job`` (1..nj) handles: every ``nj``-th of the sorted list from the ``job``-th."""
    if not 1 <= job <= nj:
        raise ValueError(f"job {job} is not in 1..{nj}")
    return sorted(speakers)[job - 1::nj]


def scan_speaker(root: Path, speaker: str, max_sec: float, min_sec: float, subset: str = "") -> list[Recording]:
    """Segments of every recording under ``<root>/<speaker>/<book>/``, in sorted path order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root / speaker):
        dirnames.sort()
        for name in sorted(f for f in filenames if f.endswith(".flac")):
            flac = Path(dirpath) / name
            rel = flac.relative_to(root).parts
            if len(rel) != 3:
                raise DataError(f"Libri-light: {flac} is not at <subset>/<speaker>/<book>/<file>.flac")
            meta = flac.with_suffix(".json")
            if not meta.is_file():
                raise DataError(f"Libri-light: {flac} has no voice-activity file {meta}; restore it from the "
                                f"archive or delete the flac")
            try:
                info = sf.info(str(flac))
            except RuntimeError as e:  # soundfile's LibsndfileError is a RuntimeError
                raise DataError(f"Libri-light: cannot read audio {flac} ({e}); restore it from the archive "
                                f"or delete it with its json")
            segs = merge_vad(read_vad(meta), max_sec, min_sec, info.frames / info.samplerate)
            out.append(Recording(subset, recording_id(speaker, rel[1], flac.stem), _UNSAFE.sub("_", speaker),
                                 str(flac.resolve()), tuple(segs)))
    return out


def scan_part(src: Path, subsets: list[str], max_sec: float, min_sec: float, nj: int = 1,
              job: int = 1) -> list[Recording]:
    """The recordings of job ``job`` of ``nj`` over all ``subsets`` (see :func:`job_share`)."""
    out = []
    for subset in subsets:
        root = src / subset
        for speaker in job_share(speaker_folders(root), nj, job):
            out += scan_speaker(root, speaker, max_sec, min_sec, subset)
    return out


def _header(subsets: list[str], max_sec: float, min_sec: float, nj: int, job: int) -> dict:
    return {"job": job, "nj": nj, "subsets": list(subsets), "max_seg_sec": max_sec, "min_seg_sec": min_sec}


def write_part(path: Path, header: dict, recs: list[Recording]) -> None:
    """One job's result as json lines (a header, then one recording a line), written atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for r in recs:
            f.write(json.dumps({"subset": r.subset, "rec": r.rec, "speaker": r.speaker, "audio": r.audio,
                                "segments": [list(s) for s in r.segments]}) + "\n")


def read_part(path: Path, header: dict) -> list[Recording]:
    """A part written by :func:`write_part`; DataError if it is from another run (other options or nj)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or json.loads(lines[0]) != header:
        raise DataError(f"Libri-light: {path} was written by another run ({lines[0] if lines else 'empty'}, "
                        f"expected {json.dumps(header)}); delete it and rerun")
    return [Recording(d["subset"], d["rec"], d["speaker"], d["audio"], tuple(tuple(s) for s in d["segments"]))
            for d in map(json.loads, lines[1:])]


def run_jobs(src: Path, subsets: list[str], max_sec: float, min_sec: float, nj: int, cmd: str | None,
             parts: Path, log_dir: Path) -> list[Recording]:
    """Scan as a job array through ``cmd`` (run.pl/slurm.pl); all parts, or DataError naming failed jobs' logs."""
    log = log_dir / "prep.JOB.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("prep.*.log"):
        old.unlink()  # a log of an earlier run must not be mistaken for this one's
    parts = parts.resolve()  # the jobs may start elsewhere (slurm.pl)
    job = [sys.executable, "-m", "chunkssl.corpora.librilight", "--src", str(src.resolve()), "--out", str(parts),
           "--subsets", *subsets, "--max-seg-sec", repr(max_sec), "--min-seg-sec", repr(min_sec),
           "--nj", str(nj), "--job", "JOB", "--parts-dir", str(parts)]
    status = run_job_array(job_launcher(cmd), nj, log, job)
    failed = [j for j in range(1, nj + 1) if not (parts / f"part.{j}.jsonl").is_file()]
    if status != 0 or failed:
        tails = " | ".join(f"job {j} ({str(log).replace('JOB', str(j))}): "
                           + " / ".join(job_log_tail(log, j, 3) or ["no log"]) for j in failed)
        raise DataError(f"Libri-light: preparation job(s) {failed or 'of the array'} of {nj} failed (exit status "
                        f"{status}); no data dir was changed. Fix the cause and rerun; {tails}")
    recs = []
    for j in range(1, nj + 1):
        recs += read_part(parts / f"part.{j}.jsonl", _header(subsets, max_sec, min_sec, nj, j))
    return recs


def build_sets(src: Path, subsets: list[str], recs: list[Recording],
               dev_recordings: int) -> dict[str, list[Utterance]]:
    """Utterances of each data dir (``<subset>`` and ``<subset>_dev``) from all scanned recordings."""
    sets: dict[str, list[Utterance]] = {}
    for subset in subsets:
        by_rec: dict[str, Recording] = {}
        for r in (r for r in recs if r.subset == subset):
            if r.rec in by_rec:
                raise DataError(f"Libri-light: {r.audio} gives recording id {r.rec!r}, already used by "
                                f"{by_rec[r.rec].audio}; rename one of them")
            by_rec[r.rec] = r
        if not by_rec:
            raise DataError(f"Libri-light: no <speaker>/<book>/*.flac files under {src / subset}")
        ids = sorted(by_rec)
        if dev_recordings >= len(ids):
            raise DataError(f"Libri-light: --dev-recordings {dev_recordings} leaves no training recordings in "
                            f"{src / subset} ({len(ids)} recordings)")
        name = subset.replace("-", "_")
        n_train = len(ids) - dev_recordings
        for set_name, part in ((name, ids[:n_train]), (f"{name}_dev", ids[n_train:])):
            if part:
                sets[set_name] = [
                    Utterance(f"{rid}-{round(s * 1000):08d}-{round(e * 1000):08d}", by_rec[rid].speaker,
                              by_rec[rid].audio, None, recording=rid, start=s, end=e)
                    for rid in part for s, e in by_rec[rid].segments]
    return sets


def _install(staged: Path, final: Path) -> None:
    """Move a finished data dir over ``final`` (the old one, if any, is deleted after)."""
    old = final.with_name(f".{final.name}.old.{os.getpid()}")
    if final.exists() or final.is_symlink():
        os.replace(final, old)
    os.replace(staged, final)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif old.exists() or old.is_symlink():
        old.unlink()


def prepare(src: Path, out: Path, subsets: list[str], max_sec: float = 15.0, min_sec: float = 1.0,
            dev_recordings: int = 0, nj: int = 1, cmd: str | None = None) -> dict[str, int]:
    """Write out/<subset> (and out/<subset>_dev) for each subset; returns segment counts per set.

    With ``nj > 1`` or a ``cmd`` the scan runs as a job array (logs in ``out/local/librilight/log``);
    otherwise in this process. Either way nothing under ``out`` changes unless everything succeeded.
    """
    if nj < 1 or dev_recordings < 0:
        raise DataError(f"Libri-light: --nj must be >= 1 and --dev-recordings >= 0 (got {nj}, {dev_recordings})")
    src, out = Path(src), Path(out)
    for subset in subsets:
        speaker_folders(src / subset)  # a missing subset fails here, before any job starts
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".librilight_prep.{os.getpid()}"
    tmp.mkdir()
    try:
        if nj == 1 and cmd is None:
            recs = scan_part(src, subsets, max_sec, min_sec)
        else:
            recs = run_jobs(src, subsets, max_sec, min_sec, nj, cmd, tmp, out / "local" / "librilight" / "log")
        sets = build_sets(src, subsets, recs, dev_recordings)
        counts = {name: write_data_dir(tmp / "sets" / name, utts) for name, utts in sets.items()}
        for name in sets:
            _install(tmp / "sets" / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
    p.add_argument("--nj", type=int, default=1, help="parallel jobs (through --cmd)")
    p.add_argument("--cmd", default=None,
                   help="job launcher, e.g. the recipe's $train_cmd (default: run.pl from utils/ when --nj > 1)")
    p.add_argument("--job", type=int, default=0, help=argparse.SUPPRESS)  # set by the job array
    p.add_argument("--parts-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.job:  # one job of the array started by prepare()
        recs = scan_part(args.src, args.subsets, args.max_seg_sec, args.min_seg_sec, args.nj, args.job)
        header = _header(args.subsets, args.max_seg_sec, args.min_seg_sec, args.nj, args.job)
        write_part(args.parts_dir / f"part.{args.job}.jsonl", header, recs)
        print(f"librilight job {args.job}/{args.nj}: {len(recs)} recordings")
        return
    counts = prepare(args.src, args.out, args.subsets, args.max_seg_sec, args.min_seg_sec, args.dev_recordings,
                     args.nj, args.cmd)
    print("librilight: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("librilight", main))
