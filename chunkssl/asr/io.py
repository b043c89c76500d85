"""Iterate the utterances of a decoding set: fbank from a feats.scp, or audio from a wav.scp (+ segments)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from chunkssl.asr.pieces import feats_pieces, wave_pieces
from chunkssl.audio import Segment, load_utterance, read_audio
from chunkssl.fileio import DataError, read_kv
from chunkssl.features import fbank, window_samples

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


def read_scp(path: str | Path) -> dict[str, str]:
    """A decoder's ``wav.scp``/``segments`` as a dict; a repeated id is an error (a dict would keep one silently)."""
    pairs = read_kv(path)
    table = dict(pairs)
    if len(table) != len(pairs):
        seen: set[str] = set()
        repeated = sorted({k for k, _ in pairs if k in seen or seen.add(k)})
        raise DataError(f"{path}: utterance id(s) {', '.join(map(repr, repeated[:5]))} appear more than once; "
                        f"ids must be unique: rename or remove the repeated lines (utils/fix_data_dir.sh)")
    return table


OnError = Callable[[str, DataError], None]


def iter_audio(wav_scp: str | Path, segments: str | Path | None = None, sample_rate: int = SAMPLE_RATE,
               on_error: OnError | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """``(utt_id, float32 samples at sample_rate)`` for every utterance, in file order.

    ``on_error(utt, error)`` takes an utterance whose audio cannot be used and the set goes on;
    without it the first such error is raised.
    """
    wav = read_scp(wav_scp)
    if segments is None:
        todo = [(utt, entry, None) for utt, entry in wav.items()]
    else:
        read_scp(segments)  # only for the repeated-id check
        todo = []
        for utt, seg in _segments(segments).items():
            if seg.recording not in wav:
                raise DataError(f"{segments}: {utt} refers to recording {seg.recording!r}, which is not in {wav_scp}")
            todo.append((utt, wav[seg.recording], seg))
    cached: tuple[str, tuple[np.ndarray, int] | DataError] | None = None
    for utt, entry, seg in todo:
        try:
            recording = None
            if seg is not None:
                if cached is None or cached[0] != seg.recording:
                    cached = None  # the old recording's samples go before the next one is read
                    try:
                        cached = (seg.recording, read_audio(entry, utt, str(wav_scp)))
                    except DataError as exc:  # every segment of the recording fails with it
                        cached = (seg.recording, exc)
                if isinstance(cached[1], DataError):
                    raise DataError(f"{segments}: utterance {utt!r}: {cached[1]}")
                recording = cached[1]
            wave = load_utterance(utt, entry, seg, sample_rate, str(wav_scp), recording,
                                  None if segments is None else str(segments))
        except DataError as exc:
            if on_error is None:
                raise
            on_error(utt, exc)
            continue
        yield utt, wave


def iter_feats(feats_scp: str | Path, on_error: OnError | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """``(utt_id, fbank [T, F])`` for every entry of a Kaldi feats.scp (non-finite features are an error)."""
    import kaldiio

    for utt, mat in kaldiio.load_scp_sequential(str(feats_scp)):
        feats = torch.from_numpy(np.asarray(mat, dtype=np.float32))
        if not torch.isfinite(feats).all():
            exc = DataError(f"{feats_scp}: utterance {utt!r}: its features hold NaN or inf values; "
                            f"recompute them (compute_fbank refuses audio with non-finite samples)")
            if on_error is None:
                raise exc
            on_error(utt, exc)
            continue
        yield utt, feats


def iter_fbank(wav_scp: str | Path | None = None, feats_scp: str | Path | None = None,
               segments: str | Path | None = None, on_error: OnError | None = None,
               max_piece_s: float | None = None) -> Iterator[tuple[str, Iterator[torch.Tensor], float]]:
    """``(utt_id, its fbank pieces, audio seconds)`` from either source; audio seconds = frames * 10 ms for feats.

    An utterance longer than ``max_piece_s`` comes in pieces cut at pauses (:mod:`chunkssl.asr.pieces`),
    each made when it is taken, so no fbank or encoder pass spans a long recording; otherwise in one piece.
    """
    if (wav_scp is None) == (feats_scp is None):
        raise ValueError("give exactly one of --wav-scp or --feats-scp")
    if feats_scp is not None:
        for utt, feats in iter_feats(feats_scp, on_error):
            yield utt, feats_pieces(feats, max_piece_s), feats.shape[0] * 0.01
        return
    for utt, wave in iter_audio(wav_scp, segments, on_error=on_error):
        # a piece shorter than one fbank window has no frames (fbank itself refuses it)
        pieces = (fbank(w, SAMPLE_RATE) if w.size >= window_samples(SAMPLE_RATE) else torch.zeros(0, 80)
                  for w in wave_pieces(wave, SAMPLE_RATE, max_piece_s))
        yield utt, pieces, wave.size / SAMPLE_RATE
