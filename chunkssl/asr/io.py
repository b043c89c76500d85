"""Iterate the utterances of a decoding set: fbank from a feats.scp, or audio from a wav.scp (+ segments)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from chunkssl.audio import Segment, load_utterance, read_audio
from chunkssl.fileio import DataError, read_kv
from chunkssl.features import fbank

SAMPLE_RATE = 16000


def _segments(path: str | Path) -> dict[str, Segment]:
    out = {}
    for utt, value in read_kv(path):
        parts = value.split()
        if len(parts) != 3:
            raise DataError(f"{path}: line for {utt} must be 'utt recording start end', got {value!r}")
        try:
            out[utt] = Segment(parts[0], float(parts[1]), float(parts[2]))
        except ValueError as exc:
            raise DataError(f"{path}: bad times for {utt}: {value!r}") from exc
    return out


def iter_audio(wav_scp: str | Path, segments: str | Path | None = None,
               sample_rate: int = SAMPLE_RATE) -> Iterator[tuple[str, np.ndarray]]:
    """``(utt_id, float32 samples at sample_rate)`` for every utterance, in file order."""
    wav = dict(read_kv(wav_scp))
    if segments is None:
        for utt, entry in wav.items():
            yield utt, load_utterance(utt, entry, None, sample_rate, str(wav_scp))
        return
    cached: tuple[str, tuple[np.ndarray, int]] | None = None
    for utt, seg in _segments(segments).items():
        if seg.recording not in wav:
            raise DataError(f"{segments}: {utt} refers to recording {seg.recording!r}, which is not in {wav_scp}")
        if cached is None or cached[0] != seg.recording:
            cached = None
            cached = (seg.recording, read_audio(wav[seg.recording], utt, str(wav_scp)))
        yield utt, load_utterance(utt, wav[seg.recording], seg, sample_rate, str(wav_scp), cached[1], str(segments))


def iter_feats(feats_scp: str | Path) -> Iterator[tuple[str, torch.Tensor]]:
    """``(utt_id, fbank [T, F])`` for every entry of a Kaldi feats.scp."""
    import kaldiio

    for utt, mat in kaldiio.load_scp_sequential(str(feats_scp)):
        yield utt, torch.from_numpy(np.asarray(mat, dtype=np.float32))


def iter_fbank(wav_scp: str | Path | None = None, feats_scp: str | Path | None = None,
               segments: str | Path | None = None) -> Iterator[tuple[str, torch.Tensor, float]]:
    """``(utt_id, fbank, audio seconds)`` from either source; audio seconds = frames * 10 ms for feats."""
    if (wav_scp is None) == (feats_scp is None):
        raise ValueError("give exactly one of --wav-scp or --feats-scp")
    if feats_scp is not None:
        for utt, feats in iter_feats(feats_scp):
            yield utt, feats, feats.shape[0] * 0.01
        return
    for utt, wave in iter_audio(wav_scp, segments):
        feats = fbank(wave, SAMPLE_RATE) if wave.size >= 400 else torch.zeros(0, 80)
        yield utt, feats, wave.size / SAMPLE_RATE
