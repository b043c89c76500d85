"""CMU AN4 (release layout ``an4/{wav/an4_clstk,wav/an4test_clstk,etc}``, NIST SPHERE) to Kaldi data dirs.

Accepts the folder holding ``an4/``, the ``an4`` folder itself, or a ``downloads.tar.gz`` (or a folder
containing one, like ``../shared/data/mini_an4``), which is unpacked into ``--workdir`` first.
Utterance ids are ESPnet's ``<speaker>-<file less speaker>`` (``fash-an251-b``); transcripts lose their ``<s>``/``</s>`` marks.
"""

from __future__ import annotations

import sys

import argparse
import re
import tarfile
from pathlib import Path

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli

_TRANS = re.compile(r"^(.*)\(([^()\s]+)\)\s*$")


def locate(src: Path, workdir: Path) -> Path:
    """Return the ``an4`` release folder, unpacking a downloads.tar.gz into workdir when needed."""
    for cand in (src, src / "an4", src / "downloads" / "an4"):
        if (cand / "etc").is_dir() and (cand / "wav").is_dir():
            return cand
    tar = src if src.is_file() else src / "downloads.tar.gz"
    if not tar.is_file():
        raise DataError(f"AN4: no an4/ folder or downloads.tar.gz under {src}; set AN4 in db.sh")
    done = workdir / ".an4_unpacked"
    if not done.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar) as tf:
            tf.extractall(workdir, filter="data")
        done.write_text(str(tar) + "\n")
    for cand in (workdir / "an4", workdir / "downloads" / "an4"):
        if (cand / "etc").is_dir():
            return cand
    raise DataError(f"AN4: {tar} holds no an4/etc folder; is it the AN4 release?")


def utt_id(speaker: str, name: str) -> str:
    """ESPnet's AN4 id: file ``an251-fash-b`` of speaker ``fash`` becomes ``fash-an251-b``."""
    parts = name.split("-")
    if len(parts) == 3 and parts[1] == speaker:
        return f"{speaker}-{parts[0]}-{parts[2]}"
    return f"{speaker}-{name}"


def read_split(an4: Path, split: str) -> list[Utterance]:
    """Utterances of split 'train' or 'test' from etc/an4_<split>.{fileids,transcription}."""
    etc = an4 / "etc"
    fileids = (etc / f"an4_{split}.fileids").read_text().split()
    texts = {}
    trans_file = etc / f"an4_{split}.transcription"
    for lineno, line in enumerate(trans_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        m = _TRANS.match(line)
        if not m:
            raise DataError(f"{trans_file}:{lineno}: expected '<words> (<file id>)', got {line!r}")
        words = [w for w in m.group(1).split() if w not in ("<s>", "</s>")]
        texts[m.group(2)] = " ".join(words).upper()
    utts = []
    for fid in fileids:
        name = Path(fid).name
        speaker = Path(fid).parent.name
        sph = an4 / "wav" / f"{fid}.sph"
        if name not in texts:
            raise DataError(f"AN4: {fid} is in an4_{split}.fileids but has no line in {trans_file}")
        if not sph.is_file():
            raise DataError(f"AN4: audio {sph} listed in an4_{split}.fileids is missing")
        if not texts[name]:
            raise DataError(f"AN4: {fid} has an empty transcript in {trans_file}")
        utts.append(Utterance(utt_id(speaker, name), speaker, str(sph.resolve()), texts[name]))
    return utts


def prepare(src: Path, out: Path, workdir: Path, num_dev: int = 0) -> dict[str, int]:
    """Write out/{train,test} (and out/dev, taken from the end of train, when num_dev > 0)."""
    an4 = locate(src, workdir)
    train = read_split(an4, "train")
    counts = {}
    if num_dev > 0:
        if num_dev >= len(train):
            raise DataError(f"AN4: --num-dev {num_dev} leaves no training utterances (train has {len(train)})")
        train, dev = train[:-num_dev], train[-num_dev:]
        counts["dev"] = write_data_dir(out / "dev", dev)
    counts["train"] = write_data_dir(out / "train", train)
    counts["test"] = write_data_dir(out / "test", read_split(an4, "test"))
    return counts


def main() -> None:
    """Command line: python -m chunkssl.corpora.an4 --src $AN4 --out data --workdir downloads."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workdir", type=Path, default=Path("downloads"), help="where a tarball is unpacked")
    p.add_argument("--num-dev", type=int, default=0, help="utterances moved from train to dev")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.workdir, args.num_dev)
    print("an4: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("an4", main))
