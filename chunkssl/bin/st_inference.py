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

from tqdm import tqdm

from chunkssl.chunking import chunk_frames, parse_chunk_ms
from chunkssl.fileio import DataError, atomic_open, run_cli
from chunkssl.st.cli import add_model_args, read_feats
from chunkssl.st.translate import load_speech2text, set_chunking, translate_offline

PROG = "st_inference"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    add_model_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        s2t = load_speech2text(args.config, args.model, args.beam_size, args.maxlenratio, device=args.device)
        set_chunking(s2t, chunk_frames(parse_chunk_ms(args.chunk_ms)), args.left_chunks)
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
    except ValueError as e:  # a chunk size or model the decoder cannot use: reported as bad input
        if isinstance(e, DataError):
            raise
        raise DataError(str(e)) from e
    print(f"{PROG}: {n} utterances in {time.perf_counter() - start:.1f} s -> {out / 'text'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
