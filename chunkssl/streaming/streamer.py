"""Streaming ASR API: feed audio pieces, get a partial result after every chunk, a final one at the end.

    streamer = Streamer.from_files("exp/asr/config.yaml", "exp/asr/valid.acc.best.pth", chunk_ms=640)
    for piece in pieces:                      # float32 mono samples at 16 kHz
        for event in streamer.accept(piece):  # a partial per chunk encoded
            print(event.audio_s, event.text)
    final = streamer.finalize()               # attention rescoring of the CTC n-best; resets

Pipeline: :class:`~chunkssl.streaming.fbank.StreamingFbank` (equal to the offline fbank), the model's
global MVN, :class:`~chunkssl.streaming.encoder.StreamingEncoder` (cached chunk-by-chunk encoder),
CTC log-softmax, :class:`~chunkssl.streaming.ctc_prefix.CTCPrefixBeamSearch`; at :meth:`finalize`
the encoder's last (shorter) chunk, then :func:`~chunkssl.streaming.rescoring.rescore`.

Times: ``audio_s`` is the audio fed when an event was produced, ``wall_s`` the wall time since the
first sample of the utterance was accepted (``time.perf_counter``), both in seconds.

Memory: the encoder and search state are bounded with a left-chunk limit. Attention rescoring needs
the encoder outputs of the whole utterance, so they are kept (``D`` floats per 40 ms) unless
``rescore=False`` (final = best CTC prefix), the setting for endless streams.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from chunkssl.asr.model import LoadedASR, chunk_frames, load_asr, normalize_feats
from chunkssl.streaming.ctc_prefix import CTCPrefixBeamSearch
from chunkssl.streaming.encoder import StreamingEncoder
from chunkssl.streaming.fbank import StreamingFbank
from chunkssl.streaming.rescoring import rescore as rescore_nbest


@dataclass(frozen=True)
class StreamEvent:
    """A partial or final result: ``type`` is ``"partial"`` or ``"final"``."""

    type: str
    audio_s: float
    wall_s: float
    text: str
    tokens: tuple[int, ...]
    token_strs: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        """JSON-ready dict (without the token strings)."""
        return {"type": self.type, "audio_s": round(self.audio_s, 4), "wall_s": round(self.wall_s, 4),
                "text": self.text, "tokens": list(self.tokens)}


class Streamer:
    """True streaming decoder over a trained chunk-conformer CTC/attention model.

    Args:
        asr: the loaded model (see :func:`chunkssl.asr.model.load_asr`).
        chunk_ms: chunk duration (multiple of 40 ms).
        left_chunks: previous chunks each chunk attends to; -1 = unlimited.
        beam_size: CTC prefix beam and n-best size for rescoring.
        ctc_weight: weight of the CTC score in the final rescoring (1.0 = CTC only).
        length_bonus: added per token to the rescoring score.
        dtype: ``torch.float32`` or ``torch.bfloat16``: the model's encoder, CTC and decoder are cast
            in place (fbank and MVN stay float32); give each streamer its own model for mixed dtypes.
        rescore: attention-rescore at :meth:`finalize` (keeps the utterance's encoder outputs).
        sample_rate: the model's sample rate; other rates are refused.
    """

    def __init__(self, asr: LoadedASR, chunk_ms: int = 640, left_chunks: int = -1, beam_size: int = 10,
                 ctc_weight: float = 0.3, length_bonus: float = 0.0, dtype: torch.dtype = torch.float32,
                 rescore: bool = True, sample_rate: int = 16000):
        frames = chunk_frames(chunk_ms)
        if frames is None:
            raise ValueError("streaming needs a finite chunk size in ms (e.g. 640)")
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        self.asr = asr
        model = asr.model
        for part in (model.encoder, model.ctc, getattr(model, "decoder", None)):
            if part is not None:
                part.to(dtype)
        self.dtype = dtype
        self.chunk_ms, self.left_chunks = int(chunk_ms), left_chunks
        self.ctc_weight, self.length_bonus, self.do_rescore = ctc_weight, length_bonus, rescore
        self.fbank = StreamingFbank(sample_rate)
        self.encoder = StreamingEncoder(model.encoder, frames, left_chunks)
        self.search = CTCPrefixBeamSearch(beam_size, blank=model.blank_id)
        self.reset()

    @classmethod
    def from_files(cls, asr_train_config: str, asr_model_file: str, chunk_ms: int = 640, left_chunks: int = -1,
                   beam_size: int = 10, ctc_weight: float = 0.3, device: str = "cpu",
                   dtype: torch.dtype | str = torch.float32, **kwargs) -> "Streamer":
        """Load ``config.yaml`` + ``.pth`` of an ``asr_train`` run and build a streamer."""
        if isinstance(dtype, str):
            dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[dtype]
        asr = load_asr(asr_train_config, asr_model_file, device)
        return cls(asr, chunk_ms, left_chunks, beam_size, ctc_weight, dtype=dtype, **kwargs)

    def reset(self) -> None:
        """Drop the current utterance; the next :meth:`accept` starts a new one."""
        self.fbank.reset()
        self.encoder.reset()
        self.search.reset()
        self._enc_outs: list[torch.Tensor] = []
        self._t0: float | None = None
        self.chunk_compute_s: list[float] = []  # compute time of each accept/finalize that encoded frames

    @property
    def audio_s(self) -> float:
        """Seconds of audio accepted in this utterance."""
        return self.fbank.num_samples / self.fbank.sample_rate

    def _wall(self) -> float:
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def _event(self, kind: str, tokens: tuple[int, ...]) -> StreamEvent:
        return StreamEvent(kind, self.audio_s, self._wall(), self.asr.text(tokens), tuple(tokens),
                           tuple(self.asr.tokens(tokens)))

    @torch.no_grad()
    def _advance(self, enc: torch.Tensor) -> bool:
        if enc.shape[0] == 0:
            return False
        if self.do_rescore:
            self._enc_outs.append(enc)
        log_probs = self.asr.model.ctc.log_softmax(enc[None])[0].float()
        self.search.accept(log_probs)
        return True

    @torch.no_grad()
    def accept(self, samples: np.ndarray, sample_rate: int = 16000) -> list[StreamEvent]:
        """Feed float32 mono samples in [-1, 1]; returns a partial event per call that completed chunks."""
        if self._t0 is None:
            self._t0 = time.perf_counter()
            self.chunk_compute_s = []
        start = time.perf_counter()
        feats = self.fbank.accept(samples, sample_rate)
        if feats.shape[0] == 0:
            return []
        feats = normalize_feats(self.asr.model, feats)
        if not self._advance(self.encoder.accept(feats)):
            return []
        self.chunk_compute_s.append(time.perf_counter() - start)
        return [self._event("partial", self.search.best())]

    @torch.no_grad()
    def finalize(self) -> StreamEvent:
        """End the utterance: encode the last chunk, rescore, return the final event, and reset.

        Works without any audio (empty result) and for audio shorter than one chunk.
        """
        start = time.perf_counter()
        self._advance(self.encoder.finalize())
        nbest = self.search.nbest()
        if self.do_rescore and self._enc_outs and nbest:
            enc = torch.cat(self._enc_outs)
            model = self.asr.model
            best = rescore_nbest(getattr(model, "decoder", None), enc, nbest, model.sos, model.eos,
                                 self.ctc_weight, self.length_bonus)[0].tokens
        else:
            best = nbest[0].tokens if nbest else ()
        self.chunk_compute_s.append(time.perf_counter() - start)
        event = self._event("final", best)
        compute = self.chunk_compute_s
        self.reset()
        self.chunk_compute_s = compute  # kept for the caller's timing until the next utterance starts
        return event
