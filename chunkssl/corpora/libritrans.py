"""Libri-Trans (Augmented LibriSpeech, English -> French) to Kaldi data dirs for speech translation.

Input layout: ``audio_files/<audio_filename>.flac`` (or ``.wav``, as the original release ships),
``alignments.meta`` (a ``Book_id|Chapter_id|reader_id|...`` header, then tab-separated rows
``book chapter reader librispeech_subset audio_filename duration``), and ``data.en`` / ``data.fr``,
line-aligned with the rows.

Text convention (shared with chunkssl.corpora.must_c): ``text`` holds the SOURCE transcript (English,
as shipped: upper case, LibriSpeech-normalised), so every ASR tool and utils/fix_data_dir.sh work
unchanged; ``text.<src>`` repeats it under its language code and ``text.<tgt>`` holds the TARGET
translation (``text.fr``, as shipped: true case with punctuation). An ST stage reads
``text.<tgt_lang>`` as the target and ``text.<src_lang>`` as the auxiliary ASR target.

Split (deterministic, speaker-disjoint): readers are ordered by number of utterances (then by reader
id) and the smallest are taken for test until it holds at least ``--test-frac`` of all utterances,
then the next ones for dev (``--dev-frac``, default none); the rest is train. On the 500-utterance
sample in ../shared/data/libritrans this gives 9 readers / 51 utterances for test, the split its
PROVENANCE.md describes (which counts "8 smallest readers"; the 51 utterances need 9).
Utterance ids are ``<reader>-<audio_filename>``, speakers the readers. Utterances longer than
``--max-dur`` seconds (from alignments.meta) are dropped from train and dev only, so test scores
stay comparable; 0 keeps everything.
"""

from __future__ import annotations

import sys

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli


@dataclass(frozen=True)
class Row:
    """One Libri-Trans segment: reader, audio file, duration and its two texts."""

    reader: str
    name: str
    audio: Path
    duration: float
    source: str
    target: str


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"Libri-Trans: {path} not found; set LIBRITRANS in db.sh to the folder holding "
                        f"audio_files/, alignments.meta, data.en and data.fr")
    return path.read_text(encoding="utf-8").splitlines()


def read_corpus(src: Path, src_lang: str = "en", tgt_lang: str = "fr") -> list[Row]:
    """All rows of alignments.meta with their texts, checked for alignment and present audio."""
    meta_path, src_path, tgt_path = src / "alignments.meta", src / f"data.{src_lang}", src / f"data.{tgt_lang}"
    meta = _lines(meta_path)
    first = 1 if meta and meta[0].lower().startswith("book_id") else 0
    meta = meta[first:]
    sources, targets = _lines(src_path), _lines(tgt_path)
    if not len(meta) == len(sources) == len(targets):
        raise DataError(f"Libri-Trans: {meta_path} has {len(meta)} rows but {src_path} has {len(sources)} lines "
                        f"and {tgt_path} {len(targets)}; the three files must be line-aligned")
    rows = []
    for i, (line, source, target) in enumerate(zip(meta, sources, targets)):
        where = f"{meta_path}:{i + 1 + first}"
        fields = line.split("\t")
        if len(fields) != 6:
            raise DataError(f"{where}: expected 6 tab-separated fields (book chapter reader subset "
                            f"audio_filename duration), got {line!r}")
        reader, name = fields[2].strip(), fields[4].strip()
        try:
            duration = float(fields[5])
        except ValueError:
            raise DataError(f"{where}: duration {fields[5]!r} is not a number") from None
        for path, text in ((src_path, source), (tgt_path, target)):
            if not text.strip():
                raise DataError(f"{path}:{i + 1}: empty line for segment {name!r}; every segment needs a text")
        audio = next((p for p in (src / "audio_files" / f"{name}.flac", src / "audio_files" / f"{name}.wav")
                      if p.is_file()), None)
        if audio is None:
            raise DataError(f"{where}: audio {src / 'audio_files' / name}.flac (or .wav) is missing")
        rows.append(Row(reader, name, audio, duration, source.strip(), target.strip()))
    return rows


def split_readers(counts: dict[str, int], test_frac: float, dev_frac: float = 0.0) -> tuple[set[str], set[str]]:
    """(test readers, dev readers): the smallest readers until each set holds its fraction of utterances."""
    total = sum(counts.values())
    order = sorted(counts, key=lambda r: (counts[r], int(r) if r.isdigit() else 0, r))
    test: set[str] = set()
    dev: set[str] = set()
    n_test = n_dev = 0
    for reader in order:
        if n_test < test_frac * total:
            test.add(reader)
            n_test += counts[reader]
        elif n_dev < dev_frac * total:
            dev.add(reader)
            n_dev += counts[reader]
    if len(test) + len(dev) == len(counts):
        raise DataError(f"Libri-Trans: --test-frac {test_frac} and --dev-frac {dev_frac} leave no reader for train")
    return test, dev


def prepare(src: Path, out: Path, test_frac: float = 0.1, dev_frac: float = 0.0, max_dur: float = 20.0,
            src_lang: str = "en", tgt_lang: str = "fr") -> dict[str, int]:
    """Write out/{train,test} (and out/dev with dev_frac > 0); returns utterance counts per set."""
    rows = read_corpus(src, src_lang, tgt_lang)
    test, dev = split_readers(Counter(r.reader for r in rows), test_frac, dev_frac)
    sets: dict[str, list[Utterance]] = {"train": [], "test": []}
    if dev:
        sets["dev"] = []
    for r in rows:
        name = "test" if r.reader in test else "dev" if r.reader in dev else "train"
        if name != "test" and max_dur > 0 and r.duration > max_dur:
            continue
        extra = ((f"text.{src_lang}", r.source), (f"text.{tgt_lang}", r.target))
        sets[name].append(Utterance(f"{r.reader}-{r.name}", r.reader, str(r.audio.resolve()), r.source,
                                    extra=extra))
    return {name: write_data_dir(out / name, utts) for name, utts in sets.items()}


def main() -> None:
    """Command line: python -m chunkssl.corpora.libritrans --src $LIBRITRANS --out data."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="folder holding audio_files/, alignments.meta, data.*")
    p.add_argument("--out", type=Path, required=True, help="where data/{train,test[,dev]} go")
    p.add_argument("--test-frac", type=float, default=0.1, help="least share of utterances in test")
    p.add_argument("--dev-frac", type=float, default=0.0, help="least share of utterances in dev (0: no dev)")
    p.add_argument("--max-dur", type=float, default=20.0, help="drop longer train/dev utterances (0: keep all)")
    p.add_argument("--src-lang", default="en")
    p.add_argument("--tgt-lang", default="fr")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.test_frac, args.dev_frac, args.max_dur, args.src_lang, args.tgt_lang)
    print("libritrans: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("libritrans", main))
