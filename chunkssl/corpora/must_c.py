"""MuST-C v1/v2 (English -> <tgt>, TED talks) to Kaldi data dirs for speech translation.

Input layout, as released per language pair: ``en-<tgt>/data/<split>/wav/<talk>.wav`` (one recording
per talk) and ``en-<tgt>/data/<split>/txt/{<split>.yaml,<split>.en,<split>.<tgt>}``. The yaml is a list
of segments ``{duration: s, offset: s, rW: n, uW: n, speaker_id: spk.N, wav: <talk>.wav}``; line i of
``<split>.en`` and ``<split>.<tgt>`` is the transcript and translation of segment i. ``--src`` may be the
folder holding ``en-<tgt>/`` or that folder itself. Splits: train, dev, tst-COMMON, tst-HE (any
``data/<split>`` folder works).

Output ``data/<split with - as _>_en_<tgt>`` (``data/tst_COMMON_en_de``): ``wav.scp`` keyed by talk,
``segments`` (start = offset, end = offset + duration), utterance ids
``<speaker>-<talk>-<start ms:07d>-<end ms:07d>`` (``-`` sorts before every digit and letter, so the
ids sort in the same order as their speaker ids, as Kaldi requires), ``utt2spk`` with the yaml speaker.
Text convention as in chunkssl.corpora.libritrans: ``text`` = English source transcript, ``text.en``
the same, ``text.<tgt>`` the target translation. Segments with an empty transcript or translation are
dropped with a warning (fix_data_dir.sh would drop them anyway).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from chunkssl.corpora.writer import Utterance, write_data_dir
from chunkssl.fileio import DataError, run_cli

SPLITS = ["train", "dev", "tst-COMMON", "tst-HE"]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader parses train.yaml ~10x faster


def set_name(split: str, tgt: str) -> str:
    """Data dir name of a split: ``tst-COMMON``, ``de`` -> ``tst_COMMON_en_de``."""
    return f"{split.replace('-', '_')}_en_{tgt}"


def locate(src: Path, tgt: str) -> Path:
    """The ``en-<tgt>`` folder: src/en-<tgt>, or src itself."""
    for cand in (src / f"en-{tgt}", src):
        if (cand / "data").is_dir():
            return cand
    raise DataError(f"MuST-C: no en-{tgt}/data folder under {src}; set MUST_C in db.sh to the folder holding "
                    f"en-{tgt}/ (MuST-C is downloaded by hand from https://ict.fbk.eu/must-c/)")


def read_segments(yaml_path: Path) -> list[dict]:
    """The segment list of a MuST-C ``<split>.yaml``, each entry checked for the fields used here."""
    try:
        with open(yaml_path, encoding="utf-8") as f:
            segs = yaml.load(f, Loader=_Loader)
    except OSError as e:
        raise DataError(f"MuST-C: cannot read {yaml_path} ({e})") from None
    except yaml.YAMLError as e:
        raise DataError(f"MuST-C: {yaml_path} is not valid YAML ({e})") from None
    if not isinstance(segs, list):
        raise DataError(f"MuST-C: {yaml_path} should hold a list of segments, got {type(segs).__name__}")
    for i, seg in enumerate(segs):
        if not isinstance(seg, dict) or not {"duration", "offset", "speaker_id", "wav"} <= set(seg):
            raise DataError(f"MuST-C: {yaml_path}: segment {i + 1} ({seg!r}) lacks one of duration, offset, "
                            f"speaker_id, wav")
        if not isinstance(seg["duration"], (int, float)) or not isinstance(seg["offset"], (int, float)) \
                or seg["duration"] <= 0 or seg["offset"] < 0:
            raise DataError(f"MuST-C: {yaml_path}: segment {i + 1} has offset {seg['offset']!r} and duration "
                            f"{seg['duration']!r}; both must be seconds, the duration positive")
    return segs


def read_split(pair: Path, split: str, tgt: str) -> list[Utterance]:
    """Utterances of one split, with the English and target texts as text.en / text.<tgt>."""
    base = pair / "data" / split
    txt = base / "txt"
    yaml_path, en_path, tgt_path = txt / f"{split}.yaml", txt / f"{split}.en", txt / f"{split}.{tgt}"
    for path in (yaml_path, en_path, tgt_path):
        if not path.is_file():
            raise DataError(f"MuST-C: {path} not found; is {base} a MuST-C en-{tgt} split?")
    segs = read_segments(yaml_path)
    en = en_path.read_text(encoding="utf-8").splitlines()
    tg = tgt_path.read_text(encoding="utf-8").splitlines()
    if not len(segs) == len(en) == len(tg):
        raise DataError(f"MuST-C: {yaml_path} lists {len(segs)} segments but {en_path} has {len(en)} lines and "
                        f"{tgt_path} {len(tg)}; the three files must be line-aligned")
    utts, empty, talks = [], 0, {}
    for seg, source, target in zip(segs, en, tg):
        wav_name = str(seg["wav"])
        if wav_name not in talks:
            wav = base / "wav" / wav_name
            if not wav.is_file():
                raise DataError(f"MuST-C: {yaml_path} refers to {wav}, which is missing")
            talks[wav_name] = wav.resolve()
        if not source.strip() or not target.strip():
            empty += 1
            continue
        talk = _UNSAFE.sub("_", Path(wav_name).stem)
        speaker = _UNSAFE.sub("_", str(seg["speaker_id"]))
        start = float(seg["offset"])
        end = start + float(seg["duration"])
        utt_id = f"{speaker}-{talk}-{round(start * 1000):07d}-{round(end * 1000):07d}"
        extra = (("text.en", source.strip()), (f"text.{tgt}", target.strip()))
        utts.append(Utterance(utt_id, speaker, str(talks[wav_name]), source.strip(), recording=talk,
                              start=start, end=end, extra=extra))
    if empty:
        print(f"MuST-C: warning: {split}: dropped {empty} segment(s) with an empty line in {en_path} or {tgt_path}",
              file=sys.stderr)
    return utts


def prepare(src: Path, out: Path, tgt: str = "de", splits: list[str] | None = None) -> dict[str, int]:
    """Write out/<split>_en_<tgt> for each split; returns utterance counts per data dir name."""
    pair = locate(src, tgt)
    counts = {}
    for split in splits or SPLITS:
        counts[set_name(split, tgt)] = write_data_dir(out / set_name(split, tgt), read_split(pair, split, tgt))
    return counts


def main() -> None:
    """Command line: python -m chunkssl.corpora.must_c --src $MUST_C --out data --tgt de."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="folder holding en-<tgt>/ (or that folder)")
    p.add_argument("--out", type=Path, required=True, help="where data/<split>_en_<tgt> go")
    p.add_argument("--tgt", default="de", help="target language code (de, fr, es, ...)")
    p.add_argument("--splits", nargs="+", default=SPLITS, help="split folders under en-<tgt>/data")
    args = p.parse_args()
    counts = prepare(args.src, args.out, args.tgt, args.splits)
    print("must_c: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(run_cli("must_c", main))
