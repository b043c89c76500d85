"""Kaldi-compatible log-mel filterbank features and global CMVN statistics.

Feature settings follow Kaldi's ``compute-fbank-feats`` defaults except for 80 mel bins and
``dither=0`` (Kaldi dithers by 1.0, which makes features random; pass ``dither`` to restore it).
Input is scaled to the int16 range (``wave * 32768``) because Kaldi works on raw sample values,
so the log energies match Kaldi's. ``energy_floor=0.0`` is Kaldi's default (torchaudio's is
1.0); it only matters when ``use_energy`` is on, which it is not here.

CMVN statistics are written in two formats holding the same numbers:
- ``cmvn_stats.npz`` with ``count``, ``sum``, ``sum_square`` (ESPnet's GlobalMVN ``stats_file``),
- ``cmvn.ark`` with one 2 x (D+1) float64 matrix under key ``global`` (Kaldi's cmvn stats layout:
  row 0 = per-dim sums then the frame count, row 1 = per-dim sums of squares then 0).

One reader of the npz, :func:`read_cmvn_stats`, with one variance floor, :data:`CMVN_EPS`: the
tokenizers' ``GlobalCMVN`` (``chunkssl.fsq.features``, so also the codec streamer) use it, and it
normalises as ESPnet's ``GlobalMVN`` does in ASR/SSL/ST training and the streamer.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from chunkssl.fileio import DataError, atomic_open


#: Variance floor of global CMVN: ESPnet GlobalMVN's default ``eps``, so every reader of a stats file
#: normalises exactly as training (``normalize: global_mvn``) does; it only acts on a constant bin.
CMVN_EPS = 1.0e-20


class TooShortError(DataError):
    """The waveform is shorter than one analysis window, so it yields no frames."""


@dataclass(frozen=True)
class FbankOptions:
    """Options for :func:`fbank` (names mirror Kaldi's)."""

    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    energy_floor: float = 0.0

    def as_dict(self) -> dict:
        """Plain dict, e.g. for a run fingerprint."""
        return asdict(self)


def window_samples(sample_rate: int, opts: FbankOptions = FbankOptions()) -> int:
    """Number of samples in one analysis window."""
    return int(sample_rate * opts.frame_length_ms * 0.001)  # same rounding as torchaudio


def num_frames(num_samples: int, sample_rate: int, opts: FbankOptions = FbankOptions()) -> int:
    """Frames Kaldi produces with ``snip_edges=true``: 1 + (n - window) // shift, or 0 if n < window."""
    win = window_samples(sample_rate, opts)
    shift = int(sample_rate * opts.frame_shift_ms * 0.001)
    return 0 if num_samples < win else 1 + (num_samples - win) // shift


def fbank(wave: np.ndarray | torch.Tensor, sample_rate: int = 16000,
          opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """Log-mel filterbank ``Tensor[T, num_mel_bins]`` of a float waveform in [-1, 1].

    Raises TooShortError when the waveform is shorter than one window (25 ms by default).
    """
    import torchaudio.compliance.kaldi as kaldi

    x = torch.as_tensor(wave, dtype=torch.float32).reshape(1, -1)
    win = window_samples(sample_rate, opts)
    if x.shape[1] < win:
        raise TooShortError(f"{x.shape[1]} samples ({x.shape[1] / sample_rate:.3f} s) is shorter than one "
                            f"{opts.frame_length_ms:g} ms frame ({win} samples at {sample_rate} Hz)")
    return kaldi.fbank(x * 32768.0, num_mel_bins=opts.num_mel_bins, frame_length=opts.frame_length_ms,
                       frame_shift=opts.frame_shift_ms, dither=opts.dither, energy_floor=opts.energy_floor,
                       sample_frequency=float(sample_rate))


class CmvnStats:
    """Running global sums for mean/variance normalisation (float64 to keep long sums exact enough)."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_square = np.zeros(dim, dtype=np.float64)

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return len(self.sum)

    def add(self, feats: np.ndarray | torch.Tensor) -> None:
        """Accumulate a ``[T, D]`` feature matrix."""
        x = np.asarray(feats.numpy() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected a [T, {self.dim}] matrix, got shape {x.shape}")
        self.count += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_square += np.square(x).sum(axis=0)

    def merge(self, other: "CmvnStats") -> None:
        """Add another accumulator's sums (e.g. from a parallel job)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge CMVN stats of dim {other.dim} into dim {self.dim}")
        self.count += other.count
        self.sum += other.sum
        self.sum_square += other.sum_square

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Global mean and standard deviation (float64), computed as ESPnet's GlobalMVN does."""
        if self.count <= 0:
            raise ValueError("CMVN stats over no frames have no mean")
        mean = self.sum / self.count
        return mean, np.sqrt(np.maximum(self.sum_square / self.count - mean * mean, CMVN_EPS))

    def to_kaldi(self) -> np.ndarray:
        """Kaldi's 2 x (D+1) cmvn stats matrix."""
        mat = np.zeros((2, self.dim + 1), dtype=np.float64)
        mat[0, :-1], mat[0, -1], mat[1, :-1] = self.sum, self.count, self.sum_square
        return mat

    def save_npz(self, path: str | os.PathLike) -> None:
        """Write ESPnet's ``count``/``sum``/``sum_square`` npz atomically."""
        with atomic_open(path, "wb") as f:
            np.savez(f, count=np.array(self.count, dtype=np.int64), sum=self.sum, sum_square=self.sum_square)

    def save_kaldi(self, path: str | os.PathLike, key: str = "global") -> None:
        """Write the Kaldi cmvn stats matrix as a one-entry binary ark, atomically."""
        import kaldiio

        with atomic_open(path, "wb") as f:
            kaldiio.save_ark(f, {key: self.to_kaldi()})

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> "CmvnStats":
        """Read stats written by :meth:`save_npz` (or by ESPnet's collect_stats); DataError naming the file."""
        if not os.path.isfile(path):
            raise DataError(f"{path}: CMVN stats file not found; compute fbank first (python -m "
                            f"chunkssl.bin.compute_fbank writes cmvn_stats.npz beside feats.scp)")
        with np.load(path) as z:
            missing = {"count", "sum", "sum_square"} - set(z.files)
            if missing:
                raise DataError(f"{path}: CMVN stats lack {sorted(missing)}; expected ESPnet GlobalMVN npz "
                                f"with keys count, sum, sum_square")
            stats = cls(np.asarray(z["sum"]).size)
            stats.count = int(np.asarray(z["count"]).reshape(-1)[0])
            stats.sum = np.asarray(z["sum"], dtype=np.float64).reshape(-1)
            stats.sum_square = np.asarray(z["sum_square"], dtype=np.float64).reshape(-1)
        if stats.sum_square.shape != stats.sum.shape:
            raise DataError(f"{path}: CMVN stats have {stats.sum.size} sums but {stats.sum_square.size} "
                            f"sums of squares; recompute them with chunkssl.bin.compute_fbank")
        return stats


def read_cmvn_stats(path: str | os.PathLike, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Float32 mean and std of an ESPnet GlobalMVN stats npz (variance floor :data:`CMVN_EPS`)."""
    stats = CmvnStats.load_npz(path)
    if dim is not None and stats.dim != dim:
        raise DataError(f"{path}: CMVN stats have dimension {stats.dim}, the model expects {dim}; "
                        f"use the stats of the same fbank features")
    if stats.count <= 0:
        raise DataError(f"{path}: CMVN stats have count {stats.count}; they were computed over no frames")
    mean, std = stats.mean_std()
    return mean.astype(np.float32), std.astype(np.float32)
