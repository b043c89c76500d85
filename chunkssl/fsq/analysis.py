"""Code-quality metrics: codebook utilisation, perplexity, and HuBERT's phone purity, cluster purity, PNMI.

With ``y`` the frame's phone and ``z`` its code, and ``p(y, z)`` their joint distribution over frames
(Hsu et al., HuBERT, 2021):

- phone purity   = E_z[max_y p(y | z)]  = sum_z max_y p(y, z)
- cluster purity = E_y[max_z p(z | y)]  = sum_y max_z p(y, z)
- PNMI           = I(y; z) / H(y)
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from chunkssl.fileio import DataError

Segment = tuple[float, float, str]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_phone_ali(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """Per-utterance ``(start, end, phone)`` segments sorted by start, from either layout:

    one line per phone, ``utt start_sec end_sec phone`` (CTM-like), or one line per utterance,
    ``utt phone start end phone start end ...`` (the synthetic corpus's ``phone_ali``).
    """
    path = Path(path)
    ali: dict[str, list[Segment]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) < 2:
                continue
            if len(parts) == 4 and _is_number(parts[1]) and _is_number(parts[2]):
                triples = [(parts[1], parts[2], parts[3])]
            elif (len(parts) - 1) % 3 == 0:
                triples = [(parts[i + 1], parts[i + 2], parts[i]) for i in range(1, len(parts), 3)]
            else:
                raise DataError(f"{path}:{lineno}: expected 'utt start end phone' or "
                                f"'utt phone start end phone start end ...', got {line.strip()[:80]!r}")
            for start_s, end_s, phone in triples:
                if not (_is_number(start_s) and _is_number(end_s)):
                    raise DataError(f"{path}:{lineno}: times {start_s!r}, {end_s!r} are not numbers")
                start, end = float(start_s), float(end_s)
                if end < start or start < 0:
                    raise DataError(f"{path}:{lineno}: segment [{start}, {end}) of {phone!r} is negative")
                if end > start:
                    ali[parts[0]].append((start, end, phone))
    return {utt: sorted(segs) for utt, segs in ali.items()}


def frame_labels(segments: Sequence[Segment], num_frames: int, frame_shift: float,
                 gap_label: str | None = None) -> list[str | None]:
    """Phone at the centre of each frame (segments are half-open ``[start, end)``); ``gap_label`` where
    no segment covers the centre (None: leave such frames unlabelled)."""
    if not segments:
        return [gap_label] * num_frames
    starts = np.array([s for s, _, _ in segments])
    ends = np.array([e for _, e, _ in segments])
    centres = (np.arange(num_frames) + 0.5) * frame_shift
    idx = np.searchsorted(starts, centres, side="right") - 1
    labels: list[str | None] = []
    for t, i in enumerate(idx):
        labels.append(segments[i][2] if i >= 0 and centres[t] < ends[i] else gap_label)
    return labels


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of a distribution given by non-negative counts."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def perplexity(values: np.ndarray) -> float:
    """exp(entropy) of the empirical distribution of integer values (effective number of codes used)."""
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        return 0.0
    _, counts = np.unique(values, return_counts=True)
    return math.exp(entropy(counts))


def purity_pnmi(phones: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    """Phone purity, cluster purity and PNMI of integer phone ids vs integer codes (one per frame)."""
    phones = np.asarray(phones).reshape(-1)
    codes = np.asarray(codes).reshape(-1)
    if phones.shape != codes.shape:
        raise ValueError(f"{phones.size} phone labels vs {codes.size} codes")
    n = phones.size
    if n == 0:
        return dict(phone_purity=float("nan"), cluster_purity=float("nan"), pnmi=float("nan"))
    # Sparse joint counts: only observed (phone, code) pairs, so huge vocabularies cost nothing.
    _, y = np.unique(phones, return_inverse=True)
    _, z = np.unique(codes, return_inverse=True)
    pairs, joint = np.unique(np.stack([y, z], axis=1), axis=0, return_counts=True)
    py = np.bincount(y).astype(np.float64)
    pz = np.bincount(z).astype(np.float64)
    best_per_code = np.zeros(pz.size)
    np.maximum.at(best_per_code, pairs[:, 1], joint)
    best_per_phone = np.zeros(py.size)
    np.maximum.at(best_per_phone, pairs[:, 0], joint)
    pxy = joint / n
    mutual = float((pxy * np.log(pxy * n * n / (py[pairs[:, 0]] * pz[pairs[:, 1]]))).sum())
    h_y = entropy(py)
    return dict(
        phone_purity=float(best_per_code.sum() / n),
        cluster_purity=float(best_per_phone.sum() / n),
        pnmi=mutual / h_y if h_y > 0 else float("nan"),
    )


def utilisation(codes: np.ndarray, index: np.ndarray, vocab_size: int) -> dict[str, float | int | list]:
    """Distinct indices used, their share of the vocabulary, joint and per-channel perplexity.

    ``codes`` are frames x channels, ``index`` the matching (group or joint) int64 index per frame.
    """
    distinct = int(np.unique(index).size) if index.size else 0
    return dict(
        frames=int(index.size),
        vocab_size=int(vocab_size),
        distinct=distinct,
        used_fraction=distinct / vocab_size,
        perplexity=perplexity(index),
        channel_perplexity=[perplexity(codes[:, j]) for j in range(codes.shape[1])] if codes.ndim == 2 else [],
    )
