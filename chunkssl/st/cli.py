"""Command-line parts shared by the ST decoders (``chunkssl.bin.st_inference``, ``chunkssl.bin.st_simultaneous``):
model and set options, and the feature reader."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import kaldiio
import numpy as np

from chunkssl.fileio import DataError


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


def read_feats(path: str) -> Iterator[tuple[str, np.ndarray]]:
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
