"""Incremental Kaldi fbank: frames come out as soon as their window is complete, equal to the offline ones.

Kaldi's fbank with ``snip_edges=true`` (torchaudio's default) makes frame i from samples
``[i * shift, i * shift + window)`` only (160 and 400 at 16 kHz). Everything else it does is local
to a frame: the DC offset is removed per frame, pre-emphasis looks back only inside the frame,
dither is 0 and no utterance-level mean is subtracted. So computing a batch of new frames from the
samples they cover gives the same numbers as computing them over the whole utterance, and only the
samples of frames not yet complete need to be kept: after each call fewer than one window remains
buffered, whatever the stream length. A caller that needs frames only in batches (the streamer needs
a chunk's worth) passes ``min_frames``: samples are then held until that many frames are complete,
which saves the per-call cost of small pieces and gives the same frames.

Audio shorter than one window yields no frames, as offline. A trailing partial window never becomes
a frame (snip_edges), so :meth:`StreamingFbank.flush` returns only frames held back by ``min_frames``;
it ends the utterance and resets the state. Audio at another sample rate is refused with an error: resample it first.
"""

from __future__ import annotations

import numpy as np
import torch

from chunkssl.features import FbankOptions, fbank, window_samples


class StreamingFbank:
    """Feed audio pieces with :meth:`accept`, get the frames they complete; :meth:`flush` ends the stream."""

    def __init__(self, sample_rate: int = 16000, opts: FbankOptions = FbankOptions()) -> None:
        self.sample_rate = int(sample_rate)
        self.opts = opts
        self.window = window_samples(self.sample_rate, opts)
        self.shift = int(self.sample_rate * opts.frame_shift_ms * 0.001)  # same rounding as torchaudio
        if self.window <= 0 or self.shift <= 0:
            raise ValueError(f"sample rate {sample_rate} Hz gives an empty window or shift")
        if opts.dither != 0.0:
            raise ValueError("streaming fbank needs dither=0: dithered frames cannot match the offline ones")
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next sample is sample 0 of a new utterance."""
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0  # absolute index of _buf[0] in the stream
        self._total = 0  # samples accepted so far
        self._frames = 0  # frames emitted so far

    @property
    def num_samples(self) -> int:
        """Samples accepted since the last reset."""
        return self._total

    @property
    def num_frames(self) -> int:
        """Frames emitted since the last reset."""
        return self._frames

    @property
    def buffered_samples(self) -> int:
        """Samples held for frames not yet returned (fewer than one window plus ``min_frames`` shifts)."""
        return len(self._buf)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(0, self.opts.num_mel_bins, dtype=torch.float32)

    def accept(self, samples: np.ndarray | torch.Tensor, sample_rate: int | None = None,
               min_frames: int = 1) -> torch.Tensor:
        """Append float samples in [-1, 1]; return the ``[n_new_frames, num_mel_bins]`` frames now complete.

        ``sample_rate``, when given, must equal the extractor's: there is no silent resampling.
        Fewer than ``min_frames`` complete frames are held back (returned by a later call).
        """
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ValueError(f"audio is {sample_rate} Hz but this fbank (and the model) expects {self.sample_rate} "
                             f"Hz; resample it first (e.g. torchaudio.functional.resample) or build the "
                             f"StreamingFbank for {sample_rate} Hz to match a model trained at that rate")
        x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"expected a 1-D array of mono samples, got shape {x.shape}; pass one channel")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"expected float samples in [-1, 1], got dtype {x.dtype}; convert int16 PCM "
                             f"with samples.astype(np.float32) / 32768")
        if not np.isfinite(x).all():
            raise ValueError("audio piece contains NaN or infinite samples")
        if x.size:
            self._buf = np.concatenate([self._buf, x.astype(np.float32, copy=False)])
            self._total += x.size
        complete = 0 if self._total < self.window else 1 + (self._total - self.window) // self.shift
        if complete - self._frames < max(1, min_frames):
            return self._empty()
        # Samples of the new frames only: from the first new frame's start to the last one's end.
        lo = self._frames * self.shift - self._buf_start
        hi = (complete - 1) * self.shift + self.window - self._buf_start
        feats = fbank(self._buf[lo:hi], self.sample_rate, self.opts)
        if feats.shape[0] != complete - self._frames:
            raise RuntimeError(f"fbank returned {feats.shape[0]} frames for {complete - self._frames} windows")
        self._frames = complete
        # Keep from the next (incomplete) frame's start onwards; the copy releases the old array.
        keep_from = complete * self.shift - self._buf_start
        self._buf = self._buf[keep_from:].copy()
        self._buf_start += keep_from
        return feats

    def flush(self) -> torch.Tensor:
        """End the utterance: returns the frames still owed (held back by ``min_frames``) and resets."""
        feats = self.accept(np.zeros(0, dtype=np.float32))
        self.reset()
        return feats
