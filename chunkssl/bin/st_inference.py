"""Offline ST decoding: python -m chunkssl.bin.st_inference --config C --model M --feats-scp S --out-dir D.

ESPnet's ``Speech2Text`` beam search over the whole utterance; ``--chunk-ms`` sets the encoder's
chunk mask (0 = full context), so a model trained with dynamic chunks can be scored at the chunk
size it would stream with. Writes ``D/text`` (detokenised target, Kaldi text) and ``D/token``
(sentencepiece pieces), each atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import kaldiio
from tqdm import tqdm

from chunkssl.fileio import DataError, atomic_open
from chunkssl.st.translate import chunk_frames, load_speech2text, set_chunking, translate_offline

PROG = "st_inference"


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Options shared by the offline and simultaneous decoders."""
    p.add_argument("--config", required=True, help="the training config.yaml of the ST model")
    p.add_argument("--model", required=True, help="model weights (.pth)")
    p.add_argument("--feats-scp", required=True, help="fbank feats.scp of the set to translate")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--chunk-ms", type=int, default=0, help="encoder chunk in ms (multiple of 40); 0 = full context")
    p.add_argument("--left-chunks", type=int, default=-1, help="left chunks attended to; -1 = all")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--maxlenratio", type=float, default=0.0, help="ESPnet's: 0 = up to the encoder length")
    p.add_argument("--device", default="cpu")


def read_feats(path: str):
    """Yield ``(utt_id, fbank)`` from a feats.scp, with a clear error for a broken entry."""
    try:
        reader = kaldiio.load_scp(path)
        keys = list(reader.keys())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}; recompute the features (st.sh stage 2)") from None
    for utt in keys:
        try:
            yield utt, reader[utt]
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: utterance {utt}: cannot load its features ({e}); "
                            f"recompute them (st.sh stage 2)") from None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    add_model_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        s2t = load_speech2text(args.config, args.model, args.beam_size, args.maxlenratio, device=args.device)
        set_chunking(s2t, chunk_frames(args.chunk_ms), args.left_chunks)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        n = 0
        with atomic_open(out / "text", "w", encoding="utf-8") as ft, \
                atomic_open(out / "token", "w", encoding="utf-8") as fk:
            for utt, feats in tqdm(read_feats(args.feats_scp), desc=PROG, disable=None):
                text, ids = translate_offline(s2t, feats)
                ft.write(f"{utt} {text}\n")
                fk.write(f"{utt} {' '.join(s2t.converter.ids2tokens(ids))}\n")
                n += 1
    except (DataError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(f"{PROG}: {n} utterances in {time.perf_counter() - start:.1f} s -> {out / 'text'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
