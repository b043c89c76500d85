"""A tiny Libri-light-layout corpus made from real Libri-Trans speech: a stand-in for trying the recipe.

This is NOT Libri-light: it lets egs2/librilight/ssl1 run end to end (data prep, fbank, training) on a
few minutes of real read speech instead of the 35 GB ``small`` download. It writes

    <out>/small/<reader>/book_<book id>_librivox/sample_<k:03d>_64kb.flac   (16 kHz, 16-bit mono)
    <out>/small/<reader>/book_<book id>_librivox/sample_<k:03d>_64kb.json   (Libri-light metadata)
    <out>/sample_manifest.tsv   (which utterance lies where in which file; also marks the folder as ours)

Readers of ``alignments.meta`` are ranked by their total duration (then by reader id) and the first
``--readers`` are taken (0: all). Each reader's utterances, in sorted file-name order, are taken while
they fit in ``--minutes-per-reader`` minutes, grouped by book and concatenated into recordings of at
most ``--recording-minutes`` minutes: ``--silence-sec`` of digital silence before each utterance and
after the last one, so a file lasts the sum of its utterances plus ``(n + 1)`` silences; the samples
of each utterance are copied unchanged. The json has Libri-light's fields: ``speaker``, ``snr`` (a
crude estimate: speech power over the power of the quietest 10 % of 20 ms frames of the speech, in dB),
``voice_activity`` (the utterance boundaries, as ``[start, end]`` seconds with Libri-light's
centisecond precision, rounded outwards) and ``book_meta`` (only ``id``, ``title``, ``language``).
The output is deterministic (same input and options, same files). An existing ``<out>/small`` is
replaced only if it carries a ``sample_manifest.tsv`` beside it, i.e. if it was made by this module.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from chunkssl.fileio import DataError, atomic_open, run_cli

RATE = 16000
MANIFEST = "sample_manifest.tsv"
_TITLES = {"1184": "The Count of Monte Cristo"}  # the one book of the shared Libri-Trans sample


@dataclass(frozen=True)
class Utt:
    """One Libri-Trans utterance: reader, book, audio file name (no extension) and duration in seconds."""

    reader: str
    book: str
    name: str
    duration: float


def read_meta(src: Path) -> list[Utt]:
    """The rows of ``<src>/alignments.meta`` (a header line, then tab-separated rows)."""
    meta = src / "alignments.meta"
    if not meta.is_file():
        raise DataError(f"librilight_sample: {meta} not found; give the Libri-Trans folder holding "
                        f"alignments.meta and audio_files/")
    rows = []
    for lineno, line in enumerate(meta.read_text(encoding="utf-8").splitlines()[1:], 2):
        cols = line.split("\t")
        if not line.strip():
            continue
        try:
            rows.append(Utt(cols[2], cols[0], cols[4], float(cols[5])))
        except (IndexError, ValueError):
            raise DataError(f"librilight_sample: {meta}:{lineno} is not 'book chapter reader subset file "
                            f"duration' (tab-separated); fix the line") from None
    if not rows:
        raise DataError(f"librilight_sample: {meta} lists no utterances")
    return rows


def choose(rows: list[Utt], readers: int, minutes_per_reader: float) -> dict[str, list[Utt]]:
    """The utterances taken per reader (see module docstring), readers in rank order."""
    by_reader: dict[str, list[Utt]] = defaultdict(list)
    for u in rows:
        by_reader[u.reader].append(u)
    ranked = sorted(by_reader, key=lambda r: (-sum(u.duration for u in by_reader[r]), r))
    out = {}
    for reader in ranked[:readers or None]:
        taken, total = [], 0.0
        for u in sorted(by_reader[reader], key=lambda u: u.name):
            if total + u.duration > minutes_per_reader * 60:
                break
            taken.append(u)
            total += u.duration
        if taken:
            out[reader] = taken
    if not out:
        raise DataError(f"librilight_sample: no utterance fits in --minutes-per-reader {minutes_per_reader}; "
                        f"give more minutes")
    return out


def group_recordings(utts: list[Utt], recording_sec: float, silence: float) -> list[list[Utt]]:
    """Consecutive utterances of one book packed into recordings of at most ``recording_sec`` (silences included)."""
    groups: list[list[Utt]] = []
    length = 0.0
    for u in utts:
        extra = u.duration + silence
        if groups and groups[-1][-1].book == u.book and length + extra <= recording_sec:
            groups[-1].append(u)
            length += extra
        else:
            groups.append([u])
            length = silence + extra
    return groups


def load_utterance(src: Path, name: str) -> np.ndarray:
    """16-bit samples of ``audio_files/<name>.flac`` (or .wav); DataError if missing or not 16 kHz mono."""
    for ext in (".flac", ".wav"):
        path = src / "audio_files" / f"{name}{ext}"
        if path.is_file():
            break
    else:
        raise DataError(f"librilight_sample: {src / 'audio_files' / name}.flac (listed in alignments.meta) "
                        f"not found; restore it or remove its row")
    wave, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != RATE or wave.shape[1] != 1:
        raise DataError(f"librilight_sample: {path} is {rate} Hz with {wave.shape[1]} channels; "
                        f"16 kHz mono is needed")
    return wave[:, 0]


def snr_db(speech: list[np.ndarray]) -> float:
    """Crude SNR: mean power of the speech over that of its quietest 10 % of 20 ms frames, in dB."""
    x = np.concatenate(speech).astype(np.float64)
    frame = RATE // 50
    powers = np.sort((x[:len(x) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1))
    if len(powers) == 0:
        return 0.0
    floor = powers[:max(1, len(powers) // 10)].mean()
    return round(10 * math.log10(max(powers.mean(), 1e-9) / max(floor, 1e-9)), 4)


def write_recording(src: Path, flac: Path, utts: list[Utt], silence: float) -> list[tuple[str, int, int]]:
    """Write one recording and its json; returns (utterance, first sample, end sample) of each utterance."""
    gap = np.zeros(round(silence * RATE), dtype=np.int16)
    pieces, placed, pos = [gap], [], len(gap)
    speech = []
    for u in utts:
        wave = load_utterance(src, u.name)
        speech.append(wave)
        placed.append((u.name, pos, pos + len(wave)))
        pieces += [wave, gap]
        pos += len(wave) + len(gap)
    flac.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(flac), np.concatenate(pieces), RATE, subtype="PCM_16", format="FLAC")
    # centiseconds rounded outwards with integer arithmetic: start down, end up
    vad = [[(a * 100 // RATE) / 100, (-(-b * 100 // RATE)) / 100] for _, a, b in placed]
    book = utts[0].book
    meta = {"speaker": utts[0].reader, "snr": snr_db(speech), "voice_activity": vad,
            "book_meta": {"id": book, "title": _TITLES.get(book, f"LibriVox book {book}"), "language": "English"}}
    with atomic_open(flac.with_suffix(".json"), "w", encoding="utf-8") as f:
        json.dump(meta, f)
    return placed


def make_sample(src: Path, out: Path, readers: int = 8, minutes_per_reader: float = 3.0,
                recording_minutes: float = 2.0, silence_sec: float = 0.5) -> int:
    """Write ``<out>/small`` and ``<out>/sample_manifest.tsv`` (see module docstring); returns the file count."""
    if readers < 0 or minutes_per_reader <= 0 or recording_minutes <= 0 or silence_sec < 0.05:
        raise DataError("librilight_sample: need --readers >= 0, --minutes-per-reader > 0, "
                        "--recording-minutes > 0 and --silence-sec >= 0.05 (VAD spans must stay apart)")
    src, out = Path(src), Path(out)
    final = out / "small"
    if final.exists() and not (out / MANIFEST).is_file():
        raise DataError(f"librilight_sample: {final} exists and was not made by this module (no {out / MANIFEST}); "
                        f"choose another output folder")
    chosen = choose(read_meta(src), readers, minutes_per_reader)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".small.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    rows, n_files = [], 0
    try:
        for reader, utts in chosen.items():
            for k, group in enumerate(group_recordings(utts, recording_minutes * 60, silence_sec), 1):
                rel = Path(reader) / f"book_{group[0].book}_librivox" / f"sample_{k:03d}_64kb.flac"
                for name, a, b in write_recording(src, tmp / rel, group, silence_sec):
                    rows.append(f"small/{rel}\t{name}\t{a / RATE:.6f}\t{b / RATE:.6f}\n")
                n_files += 1
        with atomic_open(out / MANIFEST, "w", encoding="utf-8") as f:  # first: it marks small/ as ours
            f.write("file\tutterance\tstart_sec\tend_sec\n")
            f.writelines(rows)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return n_files


def main() -> None:
    """Command line: python -m chunkssl.corpora.librilight_sample [options] <libritrans_dir> <out_dir>."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="Libri-Trans folder (alignments.meta, audio_files/)")
    p.add_argument("out", type=Path, help="where small/ and sample_manifest.tsv go (LIBRILIGHT for the recipe)")
    p.add_argument("--readers", type=int, default=8, help="readers with the most audio first; 0: all")
    p.add_argument("--minutes-per-reader", type=float, default=3.0, help="audio taken per reader, at most")
    p.add_argument("--recording-minutes", type=float, default=2.0, help="longest recording, at most")
    p.add_argument("--silence-sec", type=float, default=0.5, help="silence before, between and after utterances")
    args = p.parse_args()
    n = make_sample(args.src, args.out, args.readers, args.minutes_per_reader, args.recording_minutes,
                    args.silence_sec)
    print(f"librilight_sample: {n} recordings in {args.out / 'small'} (a stand-in made from Libri-Trans speech)")


if __name__ == "__main__":
    sys.exit(run_cli("librilight_sample", main))
