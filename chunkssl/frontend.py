"""``kaldi_fbank``: the fbank of :mod:`chunkssl.features`, computed from raw audio inside the model.

An ESPnet frontend (``--frontend kaldi_fbank``) so that training can read ``wav.scp`` audio instead of
dumped features: the features are made on the training device, a whole padded batch at a time, and
equal :func:`chunkssl.features.fbank` of each utterance (the same Kaldi steps in the same order:
frames with ``snip_edges``, DC removal, pre-emphasis 0.97, Povey window, power spectrum, mel banks,
log). A model trained this way therefore decodes with the same streaming fbank as one trained on
dumped features. Padded frames of the output are zero.
"""

from __future__ import annotations

import torch
import torchaudio.compliance.kaldi as kaldi
from espnet2.asr.frontend.abs_frontend import AbsFrontend

from chunkssl.features import FbankOptions, window_samples

PREEMPHASIS = 0.97  # Kaldi's default, as in features.fbank (torchaudio's kaldi.fbank default too)


def fbank_lengths(num_samples: torch.Tensor, sample_rate: int, opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """Frames of each utterance (``features.num_frames``, vectorised): 0 below one window."""
    win = window_samples(sample_rate, opts)
    shift = int(sample_rate * opts.frame_shift_ms * 0.001)
    frames = torch.div(num_samples - win, shift, rounding_mode="floor") + 1
    return torch.where(num_samples < win, torch.zeros_like(frames), frames)


class KaldiFbankFrontend(AbsFrontend):
    """Log-mel fbank ``[B, T, n_mels]`` of float waveforms ``[B, S]`` in [-1, 1] at ``fs`` Hz."""

    def __init__(self, fs: int = 16000, n_mels: int = 80, frame_length_ms: float = 25.0,
                 frame_shift_ms: float = 10.0):
        super().__init__()
        self.fs = int(fs)
        self.opts = FbankOptions(num_mel_bins=n_mels, frame_length_ms=frame_length_ms,
                                 frame_shift_ms=frame_shift_ms)
        self.window = window_samples(self.fs, self.opts)
        self.shift = int(self.fs * frame_shift_ms * 0.001)
        self.fft_size = 1 << (self.window - 1).bit_length()  # round_to_power_of_two, as Kaldi
        povey = torch.hann_window(self.window, periodic=False, dtype=torch.float32).pow(0.85)
        banks, _ = kaldi.get_mel_banks(n_mels, self.fft_size, float(self.fs), 20.0, 0.0, 100.0, -500.0, 1.0)
        # buffers follow the model to its device; not saved: they depend on the options only
        self.register_buffer("povey", povey, persistent=False)
        self.register_buffer("mel", torch.nn.functional.pad(banks, (0, 1)).T.contiguous(), persistent=False)

    def output_size(self) -> int:
        """Mel bins."""
        return self.opts.num_mel_bins

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fbank [B, T, n_mels], frames [B])``; an utterance shorter than one window has 0 frames."""
        if input.dim() != 2:
            raise ValueError(f"kaldi_fbank expects mono waveforms [batch, samples], got shape "
                             f"{tuple(input.shape)}; is the data type 'sound' (not fbank features)?")
        # float32 whatever the trainer's autocast says: bf16 mel energies would not equal the dumped fbank
        with torch.autocast(input.device.type, enabled=False):
            return self._fbank(input, input_lengths)

    def _fbank(self, input: torch.Tensor, input_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = fbank_lengths(input_lengths, self.fs, self.opts)
        num = int(lengths.max()) if lengths.numel() else 0
        wave = input.float() * 32768.0
        if num == 0:
            return wave.new_zeros(input.size(0), 0, self.opts.num_mel_bins), lengths
        valid = torch.arange(num, device=wave.device).unsqueeze(0) < lengths.unsqueeze(1)
        # only the real frames go through the FFT: padding would cost as much as speech in a mixed batch
        frames = wave[:, : (num - 1) * self.shift + self.window].unfold(1, self.window, self.shift)[valid]
        frames = frames - frames.mean(dim=-1, keepdim=True)
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=-1)
        frames = (frames - PREEMPHASIS * previous) * self.povey
        frames = torch.nn.functional.pad(frames, (0, self.fft_size - self.window))
        power = torch.fft.rfft(frames).abs().pow(2.0)
        energies = torch.mm(power, self.mel)
        energies = torch.max(energies, torch.tensor(torch.finfo(energies.dtype).eps, device=wave.device)).log()
        feats = wave.new_zeros(input.size(0), num, self.opts.num_mel_bins)
        feats[valid] = energies
        return feats, lengths


def drop_fbank_frontend(model: torch.nn.Module) -> None:
    """Let a model trained on raw audio take fbank: decoders feed the (dumped or streaming) fbank itself.

    The frontend holds no weights, so nothing of the trained model is lost; ESPnet's ``encode`` then skips it
    as it does for a model trained on dumped features.
    """
    if isinstance(getattr(model, "frontend", None), KaldiFbankFrontend):
        model.frontend = None
