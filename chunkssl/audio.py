"""Read the audio behind a wav.scp entry (file or ``cmd |`` pipe), cut segments and resample.

Conventions (kept close to Kaldi so recipes behave the same):
- Waveforms are float32 in [-1, 1] (soundfile's scaling); multichannel audio keeps the FIRST
  channel, as Kaldi's feature extractors do for ``--channel=-1`` on stereo input.
- A wav.scp value ending in ``|`` is a shell pipeline run with ``bash -o pipefail -c`` so that a
  failure anywhere in the pipe is caught; its stdout must hold a complete audio file (wav, flac,
  NIST SPHERE, ... anything libsndfile reads).
- Audio must be finite: a NaN or inf sample is an error naming the utterance (one would turn its
  features and the global CMVN stats into NaN). A WAV file whose data chunk is shorter than its
  header says (a cut copy) is refused too; pipes are exempt, as their headers cannot know the length.
- Segment times are seconds; sample indices are ``round(t * sample_rate)``; ``end == -1`` means the
  end of the recording; an end up to ``MAX_OVERSHOOT`` seconds past the recording is clipped
  (as Kaldi's extract-segments does), anything further is an error.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from chunkssl.fileio import DataError

DEFAULT_SAMPLE_RATE = 16000
# Kaldi's extract-segments tolerates segment ends this far past the recording end.
MAX_OVERSHOOT = 0.5
FIX_HINT = "fix the entry, or delete its wav.scp line and run utils/fix_data_dir.sh to drop the utterance everywhere"


@dataclass(frozen=True)
class Segment:
    """One line of a Kaldi ``segments`` file: a [start, end) slice of a recording, in seconds."""

    recording: str
    start: float
    end: float  # -1 means "to the end of the recording"


def problem_prefix(utt_id: str | None, source: str | None) -> str:
    """Prefix naming the data file and utterance a problem came from."""
    parts = [p for p in (source, f"utterance {utt_id!r}" if utt_id is not None else None) if p]
    return ": ".join(parts) + ": " if parts else ""


def is_pipe(entry: str) -> bool:
    """True for a wav.scp value of the form ``cmd args... |``."""
    return entry.rstrip().endswith("|")


def _run_pipe(command: str, where: str) -> bytes:
    """Run a wav.scp pipe command and return its stdout, or raise naming the command and its stderr."""
    try:
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    except OSError as e:  # bash itself missing: nothing a data fix can solve
        raise DataError(f"{where}cannot run pipe command {command!r}: {e}") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise DataError(f"{where}pipe command {command!r} failed with exit status {proc.returncode}"
                        f" (stderr: {' | '.join(tail) or 'empty'}); {FIX_HINT}")
    return proc.stdout


def _decode(source: str | io.BytesIO, where: str, what: str) -> tuple[np.ndarray, int]:
    """Decode audio with soundfile into a float32 mono array and its sample rate."""
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, EOFError) as e:
        raise DataError(f"{where}cannot decode audio from {what} ({e}); the file is corrupt or in a "
                        f"format libsndfile cannot read (convert it to wav/flac); {FIX_HINT}") from e
    if data.shape[0] == 0:
        raise DataError(f"{where}audio from {what} has zero samples; {FIX_HINT}")
    wave = np.ascontiguousarray(data[:, 0])
    bad = ~np.isfinite(wave)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(f"{where}audio from {what} has {int(bad.sum())} non-finite sample(s) (NaN or inf), "
                        f"the first at {first / rate:.3f} s; re-export the audio as PCM, or {FIX_HINT}")
    return wave, int(rate)


def wav_shortfall(path: str) -> tuple[int, int] | None:
    """``(bytes the data chunk claims, bytes present)`` of a RIFF/WAVE file cut short; None if whole or not WAV."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, length = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                present = size - pos - 8
                # 0xFFFFFFFF is the "length unknown" mark of streamed WAVs, not a claim
                return (length, present) if present < length != 0xFFFFFFFF else None
            pos += 8 + length + (length & 1)  # chunks are word aligned
    return None


def read_audio(entry: str, utt_id: str | None = None, source: str | None = None) -> tuple[np.ndarray, int]:
    """Read a wav.scp value (file path or ``cmd |`` pipe) into (float32 mono waveform, sample rate).

    ``utt_id`` and ``source`` (e.g. ``data/train/wav.scp``) only make error messages name the
    offending utterance and file.
    """
    where = problem_prefix(utt_id, source)
    entry = entry.strip()
    if is_pipe(entry):
        command = entry[:-1].strip()
        data = _run_pipe(command, where)
        if not data:
            raise DataError(f"{where}pipe command {command!r} wrote no audio to stdout; {FIX_HINT}")
        return _decode(io.BytesIO(data), where, f"pipe command {command!r}")
    if not os.path.exists(entry):
        raise DataError(f"{where}audio file {entry!r} does not exist; check the path in wav.scp "
                        f"(relative paths are resolved from the current directory), or delete the line and run "
                        f"utils/fix_data_dir.sh to drop the utterance everywhere")
    if not os.path.isfile(entry):
        raise DataError(f"{where}audio path {entry!r} is not a regular file; check the path in wav.scp")
    if os.path.getsize(entry) == 0:
        raise DataError(f"{where}audio file {entry!r} is empty (0 bytes); {FIX_HINT}")
    short = wav_shortfall(entry)
    if short is not None:
        raise DataError(f"{where}WAV file {entry!r} is truncated: its header announces {short[0]} bytes of audio "
                        f"but only {short[1]} follow (an interrupted copy?); copy it again, or {FIX_HINT}")
    return _decode(entry, where, f"file {entry!r}")


def cut_segment(wave: np.ndarray, sample_rate: int, segment: Segment, utt_id: str | None = None,
                source: str | None = None) -> np.ndarray:
    """Slice ``segment`` out of a recording, clipping a small overshoot past its end."""
    where = problem_prefix(utt_id, source)
    duration = len(wave) / sample_rate
    if segment.start < 0:
        raise DataError(f"{where}segment start {segment.start} is negative; fix the segments file")
    if segment.end != -1 and segment.end <= segment.start:
        raise DataError(f"{where}segment end {segment.end} is not after its start {segment.start}; "
                        f"fix the segments file or remove the utterance (utils/fix_data_dir.sh)")
    if segment.start >= duration:
        raise DataError(f"{where}segment starts at {segment.start} s but recording {segment.recording!r} "
                        f"is only {duration:.3f} s long; fix the segments file")
    if segment.end != -1 and segment.end > duration + MAX_OVERSHOOT:
        raise DataError(f"{where}segment ends at {segment.end} s, past the end of recording "
                        f"{segment.recording!r} ({duration:.3f} s); fix the segments file")
    first = int(round(segment.start * sample_rate))
    last = len(wave) if segment.end == -1 else min(len(wave), int(round(segment.end * sample_rate)))
    if last <= first:
        raise DataError(f"{where}segment [{segment.start}, {segment.end}] holds no samples of recording "
                        f"{segment.recording!r}; fix the segments file")
    return wave[first:last]


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a float32 waveform with torchaudio's windowed-sinc resampler (no-op if rates match)."""
    if orig_rate == new_rate:
        return wave
    import torch
    import torchaudio.functional as taf

    out = taf.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), orig_rate, new_rate)
    return out.numpy()


def load_utterance(utt_id: str, entry: str, segment: Segment | None = None,
                   sample_rate: int = DEFAULT_SAMPLE_RATE, source: str | None = None,
                   recording: tuple[np.ndarray, int] | None = None,
                   segments_source: str | None = None) -> np.ndarray:
    """Load one utterance as float32 mono audio at ``sample_rate``, applying its segment if any.

    ``recording`` is an already-read ``(wave, rate)`` of ``entry``, so that many segments of one
    long recording decode it only once. ``source``/``segments_source`` name the wav.scp and
    segments files in error messages.
    """
    wave, rate = recording if recording is not None else read_audio(entry, utt_id, source)
    if segment is not None:
        wave = cut_segment(wave, rate, segment, utt_id, segments_source or source)
    return resample(wave, rate, sample_rate)
