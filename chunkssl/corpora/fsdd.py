"""Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz) to Kaldi data dirs.

Official split: index 0-4 is test. Of the rest we hold out index 5-9 as dev and train on 10-49,
unless ``--dev-in-train`` keeps all of 5-49 in train (dev is then still 5-9, for monitoring only).
"""

from __future__ import annotations

import sys

import argparse
import re
from pathlib import Path

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli

DIGIT_WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def split_of(index: int, dev_in_train: bool = False) -> list[str]:
    """Sets an FSDD recording of the given index belongs to."""
    if index < 5:
        return ["test"]
    if index < 10:
        return ["dev", "train"] if dev_in_train else ["dev"]
    return ["train"]


def prepare(src: Path, out: Path, dev_in_train: bool = False) -> dict[str, int]:
    """Write out/{train,dev,test} from an FSDD checkout; returns utterance counts per set."""
    rec_dir = src / "recordings"
    if not rec_dir.is_dir():
        raise DataError(f"FSDD: {rec_dir} not found; set FSDD in db.sh to the folder holding recordings/")
    sets: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    for wav in sorted(rec_dir.glob("*.wav")):
        m = _NAME.match(wav.name)
        if not m:
            raise DataError(f"FSDD: unexpected file name {wav}; expected {{digit}}_{{speaker}}_{{index}}.wav")
        digit, speaker, index = int(m.group(1)), m.group(2).lower(), int(m.group(3))
        utt = Utterance(f"{speaker}_{digit}_{index:02d}", speaker, str(wav.resolve()), DIGIT_WORDS[digit])
        for s in split_of(index, dev_in_train):
            sets[s].append(utt)
    return {name: write_data_dir(out / name, utts) for name, utts in sets.items()}


def main() -> None:
    """Command line: python -m chunkssl.corpora.fsdd --src $FSDD --out data."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--src", type=Path, required=True, help="FSDD folder containing recordings/")
    p.add_argument("--out", type=Path, required=True, help="where data/{train,dev,test} go")
    p.add_argument("--dev-in-train", action="store_true", help="keep index 5-9 in train as well as in dev")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.dev_in_train)
    print("fsdd: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("fsdd", main))
