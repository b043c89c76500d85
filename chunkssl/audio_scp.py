"""``audio.scp``: one line per utterance naming its audio, for training on raw audio (``--feats-type raw``).

Each line is ``<utt-id> <start> <end> <wav.scp entry>``: the seconds of the recording the utterance
covers (``0 -1`` for a whole file, the Kaldi ``segments`` convention) and the recording's wav.scp value
(a path or a ``cmd |`` pipe). One file keyed by utterance, so that ESPnet's ``split_scps`` can shard
it like any other scp (``--multiple_iterator``), where ``wav.scp`` + ``segments`` are keyed by
recording and by utterance. The audio itself is never copied: the manifest is the training data.

ESPnet reads it through the data type ``audio_<rate>`` (registered by :mod:`chunkssl.espnet_glue`), e.g.
``dump/raw/train/audio.scp,speech,audio_16000``: float32 mono audio resampled to ``<rate>`` Hz,
exactly what :func:`chunkssl.audio.load_utterance` gives for the same data dir (so the same fbank as
``compute_fbank`` dumps). A segment of a file is read by seeking (a 15 s piece of a 30 min FLAC reads
15 s, not 30 min); pipes are decoded whole and cut.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from chunkssl.audio import FIX_HINT, Segment, cut_segment, is_pipe, problem_prefix, read_audio, resample
from chunkssl.fileio import DataError, atomic_open

#: ESPnet data type names handled here: ``audio_16000`` reads at 16 kHz.
DATA_TYPE = re.compile(r"audio_(\d+)$")


def format_line(utt_id: str, entry: str, segment: Segment | None) -> str:
    """One ``audio.scp`` line (without newline)."""
    start, end = (0.0, -1.0) if segment is None else (segment.start, segment.end)
    return f"{utt_id} {start:g} {end:g} {entry.strip()}"


def write_audio_scp(path: str | os.PathLike, lines: list[str]) -> None:
    """Write ``audio.scp`` atomically, sorted by utterance id (Kaldi order)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in sorted(lines, key=lambda s: s.split(" ", 1)[0]))


def _read_file_segment(path: str, segment: Segment, utt_id: str, source: str | None) -> tuple[np.ndarray, int]:
    """Seek-read ``[start, end)`` of a sound file: the samples :func:`cut_segment` would cut from it whole."""
    try:
        with sf.SoundFile(path) as f:
            rate, total = f.samplerate, f.frames
            first = int(round(segment.start * rate))
            last = total if segment.end == -1 else min(total, int(round(segment.end * rate)))
            if not 0 <= first < last:
                # let cut_segment word the error, on a stand-in of the recording's length
                cut_segment(np.zeros(total, np.float32), rate, segment, utt_id, source)
            f.seek(first)
            data = f.read(last - first, dtype="float32", always_2d=True)
    except DataError:
        raise
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, EOFError) as e:
        raise DataError(f"{problem_prefix(utt_id, source)}cannot read {path!r} ({e}); {FIX_HINT}") from e
    wave = np.ascontiguousarray(data[:, 0])
    if not np.isfinite(wave).all():
        raise DataError(f"{problem_prefix(utt_id, source)}audio from {path!r} has non-finite samples (NaN or inf); {FIX_HINT}")
    return wave, rate


def load_line(line: str, sample_rate: int, source: str | None = None) -> np.ndarray:
    """Float32 mono audio at ``sample_rate`` of one ``audio.scp`` line."""
    try:
        utt_id, start, end, entry = line.strip().split(maxsplit=3)
        segment = Segment("", float(start), float(end))
    except ValueError as e:
        raise DataError(f"{source or 'audio.scp'}: malformed line {line.strip()!r}; expected "
                        f"'<utt-id> <start-sec> <end-sec> <wav.scp entry>'") from e
    whole = segment.start == 0 and segment.end == -1
    if whole or is_pipe(entry) or not os.path.isfile(entry):
        # read_audio checks the entry (missing file, truncated WAV, failing pipe) and names it
        wave, rate = read_audio(entry, utt_id, source)
        if not whole:
            wave = cut_segment(wave, rate, segment, utt_id, source)
    else:
        wave, rate = _read_file_segment(entry, segment, utt_id, source)
    return resample(wave, rate, sample_rate)


class AudioScp(Mapping):
    """Read-only ``{utt-id: float32 audio at sample_rate}`` over an ``audio.scp`` (lines kept, audio read lazily)."""

    def __init__(self, path: str | os.PathLike, sample_rate: int = 16000):
        self.path, self.sample_rate = str(path), int(sample_rate)
        if not Path(path).is_file():
            raise DataError(f"{path}: audio.scp not found; make it with python -m chunkssl.bin.compute_fbank "
                            f"--raw (the recipes' stage 2 with --feats-type raw)")
        self._lines: dict[str, str] = {}
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                key = line.split(maxsplit=1)[0]
                if key in self._lines:
                    raise DataError(f"{path}:{n}: utterance {key!r} is listed twice; keep one line per utterance")
                self._lines[key] = line

    def __getitem__(self, utt_id: str) -> np.ndarray:
        return load_line(self._lines[utt_id], self.sample_rate, self.path)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def keys(self):  # noqa: D102 (ESPnet's dataset calls keys() on its loaders)
        return self._lines.keys()


def espnet_loader(path: str, loader_type: str) -> AudioScp:
    """ESPnet ``DATA_TYPES`` entry: the reader for ``<path>,<name>,audio_<rate>``."""
    match = DATA_TYPE.match(loader_type)
    if match is None:
        raise DataError(f"{path}: data type {loader_type!r} is not audio_<sample rate>, e.g. audio_16000")
    return AudioScp(path, int(match.group(1)))
