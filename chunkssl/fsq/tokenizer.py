"""FSQ fbank tokenizer: conv ResNet encoder -> FSQ -> conv ResNet decoder, trained on reconstruction.

Input is log-mel fbank ``[B, T, D]`` at 10 ms; it is globally normalised and stacked ``stack`` frames
at a time (default 4 -> 40 ms, the frame rate of an encoder with 4x subsampling). Codes are
``[B, T // stack, channels]``. Every conv sees zeros past an utterance's end whether it is alone or
padded in a batch (masks before each conv, per-frame LayerNorm, no BatchNorm), so batching does not
change the codes.

``quantizer: rvq`` swaps the FSQ bottleneck for a residual VQ (``chunkssl.fsq.rvq``, options in
``rvq_conf``) in the same encoder/decoder, trained on reconstruction plus the RVQ's commitment loss;
its codes are ``[B, T', num_codebooks]`` and everything downstream (tokenize, code_info) is shared.
"""

from __future__ import annotations

from typing import Sequence

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from chunkssl.fsq.rvq import ResidualVQ
from chunkssl.fileio import DataError
from chunkssl.fsq.features import GlobalCMVN, check_feats, length_mask, stack_frames, stacked_lengths
from chunkssl.fsq.quantizer import FSQ

QUANTIZERS = ("fsq", "rvq")


class ResBlock1d(torch.nn.Module):
    """Pre-norm residual block of two same-padded 1-D convs over time."""

    def __init__(self, channels: int, kernel_size: int, dropout: float = 0.0):
        super().__init__()
        self.norm = torch.nn.LayerNorm(channels)
        self.conv1 = torch.nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = torch.nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.act = torch.nn.GELU()
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]``, ``mask [B, 1, T]`` (1.0 on valid frames)."""
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)
        h = self.conv1(self.act(h) * mask)
        h = self.conv2(self.dropout(self.act(h)) * mask)
        return (x + h) * mask


class ConvResNet(torch.nn.Module):
    """Input conv, residual blocks, pointwise output projection; ``[B, T, in] -> [B, T, out]``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_blocks: int, kernel_size: int,
                 dropout: float = 0.0):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number (same padding), got {kernel_size}")
        self.inp = torch.nn.Conv1d(in_dim, hidden, kernel_size, padding=kernel_size // 2)
        self.blocks = torch.nn.ModuleList(ResBlock1d(hidden, kernel_size, dropout) for _ in range(num_blocks))
        self.norm = torch.nn.LayerNorm(hidden)
        self.out = torch.nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, in]`` and boolean ``mask [B, T]``; padded output frames are zero."""
        m = mask.unsqueeze(1).to(x.dtype)
        h = self.inp(x.transpose(1, 2) * m) * m
        for block in self.blocks:
            h = block(h, m)
        return self.out(torch.nn.functional.gelu(self.norm(h.transpose(1, 2)))) * mask.unsqueeze(-1).to(x.dtype)


class FSQTokenizer(AbsESPnetModel):
    """Reconstruction autoencoder over stacked fbank whose bottleneck is an FSQ (or an RVQ); its codes
    are targets."""

    def __init__(
        self,
        levels: str | Sequence[int] | Sequence[Sequence[int]] = "6m",
        input_dim: int = 80,
        stack: int = 4,
        hidden: int = 256,
        num_blocks: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.0,
        loss: str = "mse",
        cmvn_stats: str | None = None,
        quantizer: str = "fsq",
        rvq_conf: dict | None = None,
        frontend: torch.nn.Module | None = None,
    ):
        super().__init__()
        # training on raw audio (--frontend kaldi_fbank): fbank made here; no state, so checkpoints and
        # tokenize() (which takes fbank) are the same either way
        self.audio_frontend = frontend
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {quantizer!r}")
        if rvq_conf is not None and quantizer != "rvq":
            raise ValueError("rvq_conf is given but quantizer is 'fsq'; set quantizer: rvq to use it")
        if stack < 1:
            raise ValueError(f"stack must be >= 1, got {stack}")
        if loss not in ("mse", "l1"):
            raise ValueError(f"loss must be 'mse' or 'l1', got {loss!r}")
        self.input_dim = input_dim
        self.stack = stack
        self.loss_type = loss
        self.cmvn = GlobalCMVN(input_dim, cmvn_stats)
        self.quantizer_type = quantizer
        if quantizer == "rvq":
            self.quantizer = ResidualVQ(**(rvq_conf or {}))
        else:
            self.quantizer = FSQ(levels)
        frame_dim = input_dim * stack
        self.encoder = ConvResNet(frame_dim, hidden, self.quantizer.dim, num_blocks, kernel_size, dropout)
        self.decoder = ConvResNet(self.quantizer.dim, hidden, frame_dim, num_blocks, kernel_size, dropout)

    # -- the common tokenizer interface (shared with BestRQTokenizer) --
    @property
    def code_levels(self) -> list[int]:
        """Number of values each code channel takes."""
        return list(self.quantizer.levels)

    @property
    def code_groups(self) -> list[list[int]]:
        """Channel groups (levels per group); a group's codes form one index."""
        return [list(g) for g in self.quantizer.groups]

    @property
    def frame_shift_ms(self) -> int:
        """Duration of one token frame, assuming 10 ms fbank frames."""
        return 10 * self.stack

    def frontend(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised, stacked frames ``[B, T', stack*D]``, their lengths and boolean valid mask."""
        normed = self.cmvn(feats, lengths)
        out_lengths = stacked_lengths(lengths, self.stack)
        stacked = stack_frames(normed, self.stack)
        return stacked, out_lengths, length_mask(out_lengths, stacked.shape[1])

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantized values, int64 codes ``[B, T', channels]`` and token lengths."""
        values, codes, out_lengths, _ = self._encode(feats, lengths)
        return values, codes, out_lengths

    def _encode(self, feats: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`encode` plus the RVQ commitment loss (None for FSQ)."""
        stacked, out_lengths, mask = self.frontend(feats, lengths)
        if stacked.shape[1] == 0:
            raise DataError(f"every utterance in the batch is shorter than {self.stack} fbank frames "
                            f"(one token); remove such utterances (utt2num_frames < {self.stack})")
        out = self.quantizer(self.encoder(stacked, mask), mask)
        return out.values, out.codes, out_lengths, out.commit

    def decode(self, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Reconstruct normalised stacked fbank ``[B, T', stack*D]`` from quantized values."""
        return self.decoder(values, length_mask(lengths, values.shape[1]))

    def decode_codes(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Reconstruct normalised stacked fbank from integer codes ``[B, T', channels]``."""
        if self.quantizer_type == "rvq":
            values = self.quantizer.decode(codes.clamp(min=0)).to(self.cmvn.mean.dtype)
        else:
            values = self.quantizer.codes_to_values(codes.clamp(min=0), dtype=self.cmvn.mean.dtype)
        return self.decode(values * length_mask(lengths, codes.shape[1]).unsqueeze(-1), lengths)

    @torch.no_grad()
    def tokenize(self, feats: torch.Tensor, lengths: torch.Tensor,
                 keys: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``[B, T', channels]`` (int64, padding -1) and token lengths, for fbank ``[B, T, D]``."""
        check_feats(feats, lengths, self.input_dim, self.stack, keys)
        _, codes, out_lengths = self.encode(feats, lengths)
        return codes.masked_fill(~length_mask(out_lengths, codes.shape[1]).unsqueeze(-1), -1), out_lengths

    # -- ESPnet training interface --
    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                **kwargs) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Reconstruction loss of a padded fbank batch (audio with a frontend); utterances shorter than one
        stack are ignored."""
        if self.audio_frontend is not None:
            with torch.autocast(speech.device.type, enabled=False):
                speech, speech_lengths = self.audio_frontend(speech.float(), speech_lengths)
        check_feats(speech, speech_lengths, self.input_dim, self.stack, allow_short=True)
        values, codes, lengths, commit = self._encode(speech, speech_lengths)
        target, _, mask = self.frontend(speech, speech_lengths)
        recon = self.decode(values, lengths)
        valid = mask.unsqueeze(-1).to(recon.dtype)
        n_values = valid.sum().clamp(min=1.0) * recon.shape[-1]
        diff = (recon - target) * valid
        mse = diff.pow(2).sum() / n_values
        loss = mse if self.loss_type == "mse" else diff.abs().sum() / n_values
        # Predicting the global mean is predicting 0 in normalised space: the baseline error.
        mean_mse = (target * valid).pow(2).sum() / n_values
        extra = {}
        if commit is not None:
            loss = loss + self.quantizer.commitment_weight * commit
            extra["commit"] = commit.detach()
        with torch.no_grad():
            used = self.quantizer.joint_index(codes[mask])
            usage = torch.unique(used).numel() / max(used.numel(), 1)
        stats = dict(
            loss=loss.detach(),
            mse=mse.detach(),
            rel_mse=(mse / mean_mse.clamp(min=1e-8)).detach(),
            code_usage=torch.tensor(float(usage), device=loss.device),
            **extra,
        )
        loss, stats, weight = force_gatherable((loss, stats, speech.shape[0]), loss.device)
        return loss, stats, weight

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                      **kwargs) -> dict[str, torch.Tensor]:
        """Raw fbank for ESPnet's --collect_stats mode (writes GlobalMVN stats)."""
        if self.audio_frontend is not None:
            speech, speech_lengths = self.audio_frontend(speech.float(), speech_lengths)
        return {"feats": speech, "feats_lengths": speech_lengths}


def build_fsq_from_config(config: dict) -> FSQTokenizer:
    """An untrained tokenizer from a saved ESPnet training config; CMVN buffers come from the checkpoint."""
    conf = dict(config.get("model_conf") or {})
    conf.pop("cmvn_stats", None)
    return FSQTokenizer(**conf, cmvn_stats=None)
