"""BEST-RQ targets: a frozen, seeded random projection of stacked fbank and the nearest codeword by cosine.

Each of ``num_codebooks`` codebooks has its own projection ``[stack*D, codebook_dim]`` (Xavier-normal)
and codebook ``[codebook_size, codebook_dim]`` (standard normal, rows l2-normalised). A frame's code
in a codebook is the codeword with the highest cosine similarity to its projection. Everything is
drawn from one ``torch.Generator`` seeded by ``seed``, so the same config always gives the same codes.
"""

from __future__ import annotations

import math
import os

import torch

from chunkssl.fileio import DataError
from chunkssl.fsq.features import GlobalCMVN, check_feats, length_mask, stack_frames, stacked_lengths
from chunkssl.fsq.quantizer import resolve_levels


class BestRQTokenizer(torch.nn.Module):
    """Random-projection quantizer with the same ``tokenize`` interface as :class:`FSQTokenizer`."""

    def __init__(
        self,
        input_dim: int = 80,
        stack: int = 4,
        codebook_size: int = 8192,
        codebook_dim: int = 16,
        num_codebooks: int = 1,
        seed: int = 0,
        cmvn_stats: str | os.PathLike | None = None,
    ):
        super().__init__()
        if codebook_size < 2 or codebook_dim < 1 or num_codebooks < 1 or stack < 1:
            raise ValueError(
                f"BEST-RQ needs codebook_size >= 2, codebook_dim >= 1, num_codebooks >= 1, stack >= 1; got "
                f"{codebook_size}, {codebook_dim}, {num_codebooks}, {stack}"
            )
        # One code channel per codebook, each its own group; also checks the joint index fits int64.
        resolve_levels([[codebook_size] for _ in range(num_codebooks)])
        self.input_dim = input_dim
        self.stack = stack
        self.codebook_size = codebook_size
        self.num_codebooks = num_codebooks
        self.seed = seed
        self.cmvn = GlobalCMVN(input_dim, cmvn_stats)
        gen = torch.Generator().manual_seed(seed)
        frame_dim = input_dim * stack
        std = math.sqrt(2.0 / (frame_dim + codebook_dim))  # Xavier-normal
        projection = torch.randn(num_codebooks, frame_dim, codebook_dim, generator=gen) * std
        codebooks = torch.randn(num_codebooks, codebook_size, codebook_dim, generator=gen)
        self.register_buffer("projection", projection)
        self.register_buffer("codebooks", torch.nn.functional.normalize(codebooks, dim=-1))

    @property
    def code_levels(self) -> list[int]:
        """Number of values each code channel (one per codebook) takes."""
        return [self.codebook_size] * self.num_codebooks

    @property
    def code_groups(self) -> list[list[int]]:
        """Each codebook is its own group."""
        return [[self.codebook_size] for _ in range(self.num_codebooks)]

    @property
    def frame_shift_ms(self) -> int:
        """Duration of one token frame, assuming 10 ms fbank frames."""
        return 10 * self.stack

    @torch.no_grad()
    def tokenize(self, feats: torch.Tensor, lengths: torch.Tensor,
                 keys: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``[B, T', num_codebooks]`` (int64, padding -1) and token lengths, for fbank ``[B, T, D]``."""
        check_feats(feats, lengths, self.input_dim, self.stack, keys)
        stacked = stack_frames(self.cmvn(feats, lengths), self.stack)
        out_lengths = stacked_lengths(lengths, self.stack)
        if stacked.shape[1] == 0:
            raise DataError(f"every utterance in the batch is shorter than {self.stack} fbank frames")
        projected = torch.einsum("btf,nfd->btnd", stacked, self.projection.to(stacked.dtype))
        # argmax of dot products with unit codewords == nearest codeword by cosine.
        scores = torch.einsum("btnd,nkd->btnk", projected, self.codebooks.to(stacked.dtype))
        codes = scores.argmax(dim=-1)
        return codes.masked_fill(~length_mask(out_lengths, codes.shape[1]).unsqueeze(-1), -1), out_lengths
