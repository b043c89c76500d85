"""LibriSpeech (and Libri-light's ``librispeech_finetuning`` low-resource sets) to Kaldi data dirs.

Official layout (openslr.org/resources/12): ``LibriSpeech/<subset>/<speaker>/<chapter>/`` holding
``<speaker>-<chapter>-<utt>.flac`` and ``<speaker>-<chapter>.trans.txt`` (``<utt id> <WORDS>`` lines).
Any subset folder name works (train-clean-100, dev-clean, test-other, ...); its data dir is the name
with ``-`` turned into ``_`` (``data/dev_clean``).

Libri-light's limited-supervision archive (librispeech_finetuning.tgz) unpacks to
``librispeech_finetuning/{1h/{0..5}/{clean,other},9h/{clean,other}}/<speaker>/<chapter>/`` with the same
file names; these pseudo-subsets read it (10 h = 1 h + 9 h, as Libri-light defines it):

    train-10min -> 1h/0 (the first 10-minute fold)   -> data/train_10min
    train-1h    -> 1h/*                              -> data/train_1h
    train-10h   -> 1h/* and 9h/*                     -> data/train_10h

Utterance ids are the flac names (``<speaker>-<chapter>-<utt>``), speakers the reader ids, texts the
upper-case LibriSpeech transcripts as shipped. wav.scp points at the flac files (read by libsndfile).
A flac without a transcript line is an error; transcript lines without a flac are ignored, because
the fine-tuning folders keep only part of each chapter.
"""

from __future__ import annotations

import sys

import argparse
import os
import re
from pathlib import Path

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli

FINETUNE_PARTS = {"train-10min": ["1h/0"], "train-1h": ["1h"], "train-10h": ["1h", "9h"]}
_FLAC = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$")


def set_name(subset: str) -> str:
    """Data dir name of a subset: ``dev-clean`` -> ``dev_clean``."""
    return subset.replace("-", "_")


def read_transcripts(trans: Path) -> dict[str, str]:
    """``{utt id: WORDS}`` from one ``<speaker>-<chapter>.trans.txt``."""
    texts = {}
    with open(trans, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if len(parts) < 2 or not parts[1].strip():
                raise DataError(f"{trans}:{lineno}: utterance {parts[0]!r} has no words; expected "
                                f"'<speaker>-<chapter>-<utt> WORDS' on every line")
            texts[parts[0]] = parts[1].strip()
    return texts


def read_tree(root: Path) -> list[Utterance]:
    """Every utterance under a folder of ``<speaker>/<chapter>/`` chapter folders (searched recursively)."""
    if not root.is_dir():
        raise DataError(f"LibriSpeech: {root} is not a folder; check the subset name and the corpus path in db.sh")
    utts = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        flacs = sorted(f for f in filenames if f.endswith(".flac"))
        transcripts: dict[str, dict[str, str]] = {}
        for name in flacs:
            flac = Path(dirpath) / name
            m = _FLAC.match(name)
            if not m:
                raise DataError(f"LibriSpeech: unexpected file name {flac}; expected <speaker>-<chapter>-<utt>.flac")
            speaker, chapter = m.group(1), m.group(2)
            trans = Path(dirpath) / f"{speaker}-{chapter}.trans.txt"
            if trans.name not in transcripts:
                if not trans.is_file():
                    raise DataError(f"LibriSpeech: {flac} has no transcript file {trans}; restore it from the "
                                    f"archive or delete the chapter folder")
                transcripts[trans.name] = read_transcripts(trans)
            utt_id = flac.stem
            if utt_id not in transcripts[trans.name]:
                raise DataError(f"LibriSpeech: {flac} has no line in {trans}; add '{utt_id} WORDS' or delete the flac")
            utts.append(Utterance(utt_id, speaker, str(flac.resolve()), transcripts[trans.name][utt_id]))
    if not utts:
        raise DataError(f"LibriSpeech: no <speaker>-<chapter>-<utt>.flac files under {root}")
    return utts


def locate(src: Path) -> Path:
    """The ``LibriSpeech`` folder: src/LibriSpeech, or src itself."""
    return src / "LibriSpeech" if (src / "LibriSpeech").is_dir() else src


def finetune_folders(root: Path, subset: str) -> list[Path]:
    """Folders of ``librispeech_finetuning`` making up a low-resource subset, checked to exist."""
    folders = [root / part for part in FINETUNE_PARTS[subset]]
    for folder in folders:
        if not folder.is_dir():
            raise DataError(f"LibriSpeech: {subset} needs {folder}, which is missing; unpack "
                            f"librispeech_finetuning.tgz there or pass --finetune-root")
    return folders


def prepare(src: Path, out: Path, subsets: list[str], finetune_root: Path | None = None) -> dict[str, int]:
    """Write out/<set> for each subset; returns utterance counts per data dir name."""
    libri = locate(src)
    ft_root = finetune_root if finetune_root is not None else src / "librispeech_finetuning"
    counts = {}
    for subset in subsets:
        if subset in FINETUNE_PARTS:
            utts = [u for folder in finetune_folders(ft_root, subset) for u in read_tree(folder)]
        else:
            if not (libri / subset).is_dir():
                raise DataError(f"LibriSpeech: subset folder {libri / subset} not found; set LIBRISPEECH in "
                                f"db.sh to the folder holding LibriSpeech/, or run local/download.sh")
            utts = read_tree(libri / subset)
        counts[set_name(subset)] = write_data_dir(out / set_name(subset), utts)
    return counts


def main() -> None:
    """Command line: python -m chunkssl.corpora.librispeech --src $LIBRISPEECH --out data --subsets dev-clean ..."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="folder holding LibriSpeech/ (or that folder)")
    p.add_argument("--out", type=Path, required=True, help="where data/<set> go")
    p.add_argument("--subsets", nargs="+", required=True,
                   help="LibriSpeech subset folders and/or " + ", ".join(FINETUNE_PARTS))
    p.add_argument("--finetune-root", type=Path, default=None,
                   help="the librispeech_finetuning folder (default: <src>/librispeech_finetuning)")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.subsets, args.finetune_root)
    print("librispeech: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("librispeech", main))
