"""OpenSLR yesno (SLR1): ``waves_yesno/{b1}_..._{b8}.wav`` (8 kHz, 1 = YES, 0 = NO) to Kaldi data dirs.

Split as Kaldi's egs/yesno does: files whose name starts with ``0_`` are test (31), the others
train (29). ``--num-dev N`` moves the last N train files (in sorted order) to a dev set.
The corpus has one speaker, so every utterance id is ``yesno_<file stem>`` with speaker ``yesno``.
"""

from __future__ import annotations

import sys

import argparse
from pathlib import Path

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli

SPEAKER = "yesno"
WORDS = {"0": "NO", "1": "YES"}


def transcript(stem: str) -> str:
    """Words encoded in a yesno file name such as ``0_1_1_0_0_1_1_0``."""
    bits = stem.split("_")
    if len(bits) != 8 or any(b not in WORDS for b in bits):
        raise ValueError(f"expected 8 underscore-separated 0/1 flags, got {stem!r}")
    return " ".join(WORDS[b] for b in bits)


def locate(src: Path) -> Path:
    """The ``waves_yesno`` folder: src itself or src/waves_yesno."""
    for cand in (src / "waves_yesno", src):
        if cand.is_dir() and any(cand.glob("*.wav")):
            return cand
    raise DataError(f"yesno: no waves_yesno/*.wav under {src}; set YESNO in db.sh to the folder holding "
                    f"waves_yesno/ (unpack openslr.org/resources/1/waves_yesno.tar.gz)")


def prepare(src: Path, out: Path, num_dev: int = 0) -> dict[str, int]:
    """Write out/{train,test} (and out/dev with num_dev > 0); returns utterance counts per set."""
    waves = locate(src)
    train, test = [], []
    for wav in sorted(waves.glob("*.wav")):
        try:
            text = transcript(wav.stem)
        except ValueError as e:
            raise DataError(f"yesno: unexpected file name {wav}: {e}; remove the file or rename it") from None
        utt = Utterance(f"{SPEAKER}_{wav.stem}", SPEAKER, str(wav.resolve()), text)
        (test if wav.name.startswith("0_") else train).append(utt)
    counts = {}
    if num_dev > 0:
        if num_dev >= len(train):
            raise DataError(f"yesno: --num-dev {num_dev} leaves no training utterances (train has {len(train)})")
        train, dev = train[:-num_dev], train[-num_dev:]
        counts["dev"] = write_data_dir(out / "dev", dev)
    counts["train"] = write_data_dir(out / "train", train)
    counts["test"] = write_data_dir(out / "test", test)
    return counts


def main() -> None:
    """Command line: python -m chunkssl.corpora.yesno --src $YESNO --out data [--num-dev N]."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="folder holding waves_yesno/ (or that folder)")
    p.add_argument("--out", type=Path, required=True, help="where data/{train,test[,dev]} go")
    p.add_argument("--num-dev", type=int, default=0, help="train files moved to a dev set")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.num_dev)
    print("yesno: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("yesno", main))
