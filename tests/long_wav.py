"""Long recordings for the long-audio tests and bench: real speech from ../shared/data with pauses.

Libri-Trans readings (16 kHz) alternate with runs of FSDD digits (8 kHz, resampled) said one after
another; a pause of 0.4-1.5 s of faint noise separates them. The corpora are read in a fixed shuffled
order and reused when they run out. The file is written block by block, so making an hour costs no
hour of memory; it is written into the caller's (temporary) folder, never into the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from chunkssl.audio import resample

SR = 16000


def _sources(shared_data: Path, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless stream of speech pieces (float32 at 16 kHz): a reading, then a run of 3-8 digits, ..."""
    readings = sorted((shared_data / "libritrans" / "audio_files").glob("*.flac"))
    digits = sorted((shared_data / "fsdd" / "recordings").glob("*.wav"))
    if not readings or not digits:
        raise FileNotFoundError(f"Libri-Trans or FSDD recordings not found under {shared_data}")
    while True:
        for i in rng.permutation(len(readings)):
            wave, rate = sf.read(readings[i], dtype="float32")
            yield resample(wave, rate, SR)
            run = []
            for j in rng.choice(len(digits), size=int(rng.integers(3, 9)), replace=False):
                wave, rate = sf.read(digits[j], dtype="float32")
                run += [resample(wave, rate, SR), np.zeros(int(rng.integers(1600, 4800)), np.float32)]
            yield np.concatenate(run)


def write_long_wav(path: Path, seconds: float, shared_data: Path, seed: int = 0, repeat_head_s: float = 10.0) -> Path:
    """Write ``seconds`` of 16 kHz 16-bit audio to ``path``; its last ``repeat_head_s`` repeat its first ones.

    The repeated head lets a caller compare the end of a stream with its start on the same audio.
    """
    rng = np.random.default_rng(seed)
    total, head_n = int(seconds * SR), int(repeat_head_s * SR)
    if head_n * 2 > total:
        raise ValueError(f"{seconds} s is too short to repeat its first {repeat_head_s} s at the end")
    head = np.zeros(0, np.float32)
    written = 0
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as out:
        for speech in _sources(shared_data, rng):
            pause = rng.normal(0, 0.002, int(rng.uniform(0.4, 1.5) * SR)).astype(np.float32)
            block = np.concatenate([speech, pause])[: total - head_n - written]
            if head.size < head_n:
                head = np.concatenate([head, block[: head_n - head.size]])
            out.write(block)
            written += block.size
            if written >= total - head_n:
                break
        out.write(head)
    return path
