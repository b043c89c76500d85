"""Shared fbank front end of the tokenizers: global CMVN, frame stacking and padding masks."""

from __future__ import annotations

import os

import numpy as np
import torch

from chunkssl.features import read_cmvn_stats
from chunkssl.fileio import DataError


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean ``[B, max_len]`` mask, True on valid (non-padded) frames."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def stacked_lengths(lengths: torch.Tensor, stack: int) -> torch.Tensor:
    """Number of stacked frames of each utterance: trailing frames that do not fill a stack are dropped."""
    return torch.div(lengths, stack, rounding_mode="floor")


def stack_frames(feats: torch.Tensor, stack: int) -> torch.Tensor:
    """``[B, T, D]`` to ``[B, T // stack, stack * D]``; frame ``t`` holds frames ``stack*t .. stack*t+stack-1``."""
    batch, length, dim = feats.shape
    usable = (length // stack) * stack
    return feats[:, :usable].reshape(batch, length // stack, stack * dim)


def unstack_frames(stacked: torch.Tensor, stack: int) -> torch.Tensor:
    """Inverse of :func:`stack_frames`: ``[B, T', stack * D]`` to ``[B, T' * stack, D]``."""
    batch, length, dim = stacked.shape
    return stacked.reshape(batch, length * stack, dim // stack)


def check_feats(feats: torch.Tensor, lengths: torch.Tensor, input_dim: int, stack: int,
                keys: list[str] | None = None, allow_short: bool = False) -> None:
    """Reject fbank of the wrong shape and (unless ``allow_short``) utterances shorter than one stack."""
    if feats.dim() != 3:
        raise DataError(f"fbank batch must be [batch, frames, {input_dim}], got shape {tuple(feats.shape)}")
    if feats.shape[-1] != input_dim:
        what = f"utterance {keys[0]!r}" if keys and len(keys) == 1 else "the fbank batch"
        raise DataError(f"{what} has {feats.shape[-1]} mel bins, the tokenizer expects {input_dim}; "
                        f"compute fbank with the same number of mel bins as the tokenizer was trained on")
    if lengths.shape[0] != feats.shape[0]:
        raise DataError(f"{lengths.shape[0]} lengths for a batch of {feats.shape[0]} utterances")
    if not allow_short:
        short = (lengths < stack).nonzero().flatten().tolist()
        if short:
            names = [keys[i] for i in short] if keys else short
            raise DataError(
                f"utterance(s) {names} have fewer than {stack} fbank frames ({stack * 10} ms), too short "
                f"for one token; drop them from feats.scp (utt2num_frames lists lengths) or tokenize with "
                f"--short-utt skip"
            )


class GlobalCMVN(torch.nn.Module):
    """Global mean/variance normalisation whose statistics live in the checkpoint, not in a path.

    Read with :func:`chunkssl.features.read_cmvn_stats`, so it normalises as ESPnet's GlobalMVN does.
    """

    def __init__(self, dim: int, stats_file: str | os.PathLike | None = None):
        super().__init__()
        mean, std = (np.zeros(dim, np.float32), np.ones(dim, np.float32))
        if stats_file is not None:
            mean, std = read_cmvn_stats(stats_file, dim)
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Normalise ``[B, T, D]`` and zero the padded frames (so padding never leaks into convs)."""
        normed = (feats - self.mean) / self.std
        return normed * length_mask(lengths, feats.shape[1]).unsqueeze(-1).to(normed.dtype)
