"""Cut every recording of a Kaldi data dir into equal pieces of at most --max-seconds (unlabelled copy).

    python local/cut_segments.py --max-seconds 4 data/src/libritrans/train data/src/libritrans_seg

Pre-training cost grows with the square of the utterance length (full attention over the CADA layout),
and Libri-Trans has recordings up to a minute long, so they are cut into segments; short recordings
stay whole as one segment. Writes segments, wav.scp (the recordings), utt2spk, spk2utt and utt2dur;
no text, so nothing downstream can use the transcripts. Segment ids are ``<utt>-<k>``.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import soundfile as sf

from chunkssl.fileio import DataError, read_kv, write_kv


def pieces(duration: float, max_seconds: float) -> list[tuple[float, float]]:
    """(start, end) of the fewest equal pieces of at most ``max_seconds`` covering ``duration``."""
    n = max(1, math.ceil(duration / max_seconds - 1e-9))
    step = duration / n
    return [(round(k * step, 3), round(duration if k == n - 1 else (k + 1) * step, 3)) for k in range(n)]


def cut(src: Path, dest: Path, max_seconds: float) -> int:
    """Write the segmented copy of ``src`` to ``dest``; returns the number of segments."""
    if (src / "segments").exists():
        raise DataError(f"{src}/segments exists: this tool cuts whole recordings only")
    wav = dict(read_kv(src / "wav.scp"))
    spk = dict(read_kv(src / "utt2spk"))
    seg_rows, spk_rows, dur_rows = [], [], []
    for utt, path in sorted(wav.items()):
        try:
            duration = sf.info(path).duration
        except RuntimeError as err:
            raise DataError(f"{src}/wav.scp: cannot read {path} of {utt} ({err}); plain audio files only") from err
        for k, (start, end) in enumerate(pieces(duration, max_seconds)):
            seg = f"{utt}-{k:03d}"
            seg_rows.append((seg, f"{utt} {start:.3f} {end:.3f}"))
            spk_rows.append((seg, spk[utt]))
            dur_rows.append((seg, f"{end - start:.3f}"))
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_kv(tmp / "wav.scp", sorted(wav.items()))
    write_kv(tmp / "segments", sorted(seg_rows))
    write_kv(tmp / "utt2spk", sorted(spk_rows))
    write_kv(tmp / "utt2dur", sorted(dur_rows))
    by_spk: dict[str, list[str]] = {}
    for seg, s in spk_rows:
        by_spk.setdefault(s, []).append(seg)
    write_kv(tmp / "spk2utt", [(s, " ".join(segs)) for s, segs in sorted(by_spk.items())])
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return len(seg_rows)


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-seconds", type=float, default=4.0)
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args()
    if args.max_seconds <= 0:
        p.error(f"--max-seconds must be positive, got {args.max_seconds}")
    n = cut(args.src, args.dest, args.max_seconds)
    print(f"cut_segments: {n} segments of at most {args.max_seconds:g} s from {args.src} in {args.dest}")


if __name__ == "__main__":
    main()
