"""Streaming ASR API: feed audio pieces, get a partial result after every chunk, a final one at the end.

    streamer = Streamer.from_files("exp/asr/config.yaml", "exp/asr/valid.acc.best.pth", chunk_ms=640)
    for piece in pieces:                      # float32 mono samples at 16 kHz
        for event in streamer.accept(piece):  # a partial per chunk encoded (+ a segment when one ends)
            print(event.type, event.segment, event.audio_s, event.text)
    final = streamer.finalize()               # attention rescoring of the CTC n-best; resets

Pipeline: :class:`~chunkssl.streaming.fbank.StreamingFbank` (equal to the offline fbank), the model's
global MVN, :class:`~chunkssl.streaming.encoder.StreamingEncoder` (cached chunk-by-chunk encoder),
CTC log-softmax, :class:`~chunkssl.search.ctc_prefix.CTCPrefixBeamSearch`; at :meth:`finalize`
the encoder's last (shorter) chunk, then :func:`~chunkssl.search.rescoring.rescore`.

Times: ``audio_s`` is the audio fed when an event was produced, ``wall_s`` the wall time since the
first sample of the utterance was accepted (``time.perf_counter``), both in seconds.

Memory: the encoder and search state are bounded with a left-chunk limit. Attention rescoring needs
the encoder outputs of the segment it rescores, so they are kept (``D`` floats per 40 ms). By default
the whole utterance is one segment, which makes the final result exactly the simulated-streaming
decode. For long or endless streams set ``endpoint_ms`` (a segment ends after that much trailing
blank in the best path, i.e. at a pause) and ``max_segment_s`` (a segment is cut anyway after that
long): each segment is rescored and committed when it ends and its encoder outputs and search state
are dropped, so memory and the per-chunk cost stay flat however long the stream runs.

Events: a ``"partial"`` holds the current segment's best hypothesis only, a ``"segment"`` event the
result of a segment when it is committed (once; it is never revised), and the ``"final"`` event the
whole utterance (every segment joined). So an event costs the length of a segment, not of everything
said so far; what the streamer keeps of ended segments is their token ids, for the final event.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import torch

from chunkssl.asr.model import LoadedASR, load_asr, normalize_feats
from chunkssl.chunking import FRAME_MS, chunk_frames
from chunkssl.asr.precision import NUMBER_FORMATS, set_number_format_
from chunkssl.search.ctc_prefix import CTCPrefixBeamSearch
from chunkssl.streaming.encoder import StreamingEncoder
from chunkssl.streaming.fbank import StreamingFbank
from chunkssl.search.rescoring import AttentionScorer, rescore as rescore_nbest


@dataclass(frozen=True)
class StreamEvent:
    """A result: ``type`` is ``"partial"`` or ``"segment"`` (segment ``segment`` only) or ``"final"`` (all)."""

    type: str
    audio_s: float
    wall_s: float
    text: str
    tokens: tuple[int, ...]
    token_strs: tuple[str, ...] = field(default=())
    segment: int = 0  # index of the segment (0-based); for the final event, its last segment

    def as_dict(self) -> dict:
        """JSON-ready dict (without the token strings)."""
        return {"type": self.type, "segment": self.segment, "audio_s": round(self.audio_s, 4),
                "wall_s": round(self.wall_s, 6), "text": self.text, "tokens": list(self.tokens)}

    def at(self, wall_s: float) -> "StreamEvent":
        """The same event with another wall time (a simulated live clock)."""
        return replace(self, wall_s=wall_s)


class Streamer:
    """True streaming decoder over a trained chunk-conformer CTC/attention model.

    Args:
        asr: the loaded model (see :func:`chunkssl.asr.model.load_asr`).
        chunk_ms: chunk duration (multiple of 40 ms).
        left_chunks: previous chunks each chunk attends to; -1 = unlimited.
        beam_size: CTC prefix beam and n-best size for rescoring.
        ctc_weight: weight of the CTC score in the final rescoring (1.0 = CTC only).
        length_bonus: added per token to the rescoring score.
        dtype: ``torch.float32``, ``torch.bfloat16`` or ``torch.qint8``: the model's encoder, CTC and
            decoder are cast in place (fbank and MVN stay float32), or for ``qint8`` their linear layers
            get dynamic int8 weights (CPU; see :mod:`chunkssl.asr.precision`); give each streamer its
            own model for mixed dtypes.
        rescore: attention-rescore each segment's n-best (keeps the segment's encoder outputs).
        sample_rate: the model's sample rate; other rates are refused.
        endpoint_ms: end a segment after this much trailing blank (None: never; the exact setting).
        max_segment_s: end a segment after this much audio even without a pause (None: never).
        make_encoder: builds the streaming encoder from (chunk frames, left chunks) once the model is
            cast (default :class:`~chunkssl.streaming.encoder.StreamingEncoder`; codec models feed codes).
            An encoder with ``takes_raw_fbank = True`` gets raw fbank (no MVN) and returns
            ``(encoder frames, CTC log-probs)`` from ``accept``/``finalize`` (the onnxruntime step).
        attention_scorer: scores a segment's n-best in rescoring instead of the model's PyTorch decoder
            (same contract as :func:`~chunkssl.search.rescoring.attention_scores` without the decoder
            argument; e.g. the ONNX decoder); None: the PyTorch decoder.
    """

    def __init__(self, asr: LoadedASR, chunk_ms: int = 640, left_chunks: int = -1, beam_size: int = 10,
                 ctc_weight: float = 0.3, length_bonus: float = 0.0, dtype: torch.dtype = torch.float32,
                 rescore: bool = True, sample_rate: int = 16000, endpoint_ms: int | None = None,
                 max_segment_s: float | None = None,
                 make_encoder: Callable[[int, int], StreamingEncoder] | None = None,
                 attention_scorer: AttentionScorer | None = None):
        frames = chunk_frames(chunk_ms)
        if frames is None:
            raise ValueError("streaming needs a finite chunk size in ms (e.g. 640)")
        set_number_format_(asr.model, dtype)
        self.asr = asr
        model = asr.model
        self.dtype = dtype
        self.chunk_ms, self.left_chunks = int(chunk_ms), left_chunks
        self.ctc_weight, self.length_bonus, self.do_rescore = ctc_weight, length_bonus, rescore
        self.attention_scorer = attention_scorer
        for name, value in (("endpoint_ms", endpoint_ms), ("max_segment_s", max_segment_s)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        self.endpoint_frames = None if endpoint_ms is None else max(1, math.ceil(endpoint_ms / FRAME_MS))
        self.max_segment_frames = None if max_segment_s is None else max(1, round(max_segment_s * 1000 / FRAME_MS))
        self.fbank = StreamingFbank(sample_rate)
        self.encoder = (make_encoder or partial(StreamingEncoder, model.encoder))(frames, left_chunks)
        self.search = CTCPrefixBeamSearch(beam_size, blank=model.blank_id)
        self.reset()

    @classmethod
    def from_files(cls, asr_train_config: str, asr_model_file: str, chunk_ms: int = 640, left_chunks: int = -1,
                   beam_size: int = 10, ctc_weight: float = 0.3, device: str = "cpu",
                   dtype: torch.dtype | str = torch.float32, **kwargs) -> "Streamer":
        """Load ``config.yaml`` + ``.pth`` of an ``asr_train`` run and build a streamer."""
        if isinstance(dtype, str):
            if dtype not in NUMBER_FORMATS:
                raise ValueError(f"dtype must be one of {', '.join(NUMBER_FORMATS)}, got {dtype!r}")
            dtype = NUMBER_FORMATS[dtype]
        asr = load_asr(asr_train_config, asr_model_file, device)
        return cls(asr, chunk_ms, left_chunks, beam_size, ctc_weight, dtype=dtype, **kwargs)

    def reset(self) -> None:
        """Drop the current utterance; the next :meth:`accept` starts a new one."""
        self.fbank.reset()
        self.encoder.reset()
        self.search.reset()
        self._enc_outs: list[torch.Tensor] = []  # encoder outputs of the current segment
        self._ended: list[tuple[int, ...]] = []  # token ids of each committed segment (for the final event)
        self._pending: list[StreamEvent] = []    # segment events not yet returned
        self._segment_frames = 0
        self._blank_run = 0                      # trailing frames whose most likely output is blank
        self._t0: float | None = None
        self.chunk_compute_s: list[float] = []  # compute time of each accept/finalize that encoded frames

    @property
    def num_segments(self) -> int:
        """Segments committed so far in this utterance."""
        return len(self._ended)

    @property
    def audio_s(self) -> float:
        """Seconds of audio accepted in this utterance."""
        return self.fbank.num_samples / self.fbank.sample_rate

    def _wall(self) -> float:
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def _event(self, kind: str, tokens: tuple[int, ...], audio_s: float | None = None) -> StreamEvent:
        """An event of the current segment holding ``tokens``."""
        return StreamEvent(kind, self.audio_s if audio_s is None else audio_s, self._wall(), self.asr.text(tokens),
                           tuple(tokens), tuple(self.asr.tokens(tokens)), self.num_segments)

    def _final(self, last: tuple[int, ...], audio_s: float) -> StreamEvent:
        """The final event: every committed segment and the last one joined (built once per utterance)."""
        segments = [*self._ended, tuple(last)]
        tokens = tuple(t for seg in segments for t in seg)
        text = " ".join(t for t in map(self.asr.text, segments) if t)
        return StreamEvent("final", audio_s, self._wall(), text, tokens, tuple(self.asr.tokens(tokens)),
                           self.num_segments)

    def _encode(self, feats: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder frames (and CTC log-probs when the encoder gives them) of raw fbank; None: the last chunk."""
        if getattr(self.encoder, "takes_raw_fbank", False):  # MVN and CTC inside the encoder (onnxruntime)
            return self.encoder.finalize() if feats is None else self.encoder.accept(feats)
        if feats is None:
            return self.encoder.finalize(), None
        return self.encoder.accept(normalize_feats(self.asr.model, feats)), None

    @torch.no_grad()
    def _advance(self, enc: torch.Tensor, log_probs: torch.Tensor | None = None) -> bool:
        if enc.shape[0] == 0:
            return False
        if self.do_rescore:
            self._enc_outs.append(enc)
        if log_probs is None:
            log_probs = self.asr.model.ctc.log_softmax(enc[None])[0].float()
        self.search.accept(log_probs)
        self._segment_frames += enc.shape[0]
        pause = False
        if self.endpoint_frames is not None:  # the blank run is only needed to find pauses
            non_blank = (log_probs.argmax(-1) != self.asr.model.blank_id).nonzero()
            n = log_probs.shape[0]
            self._blank_run = self._blank_run + n if non_blank.numel() == 0 else n - 1 - int(non_blank[-1])
            pause = self._blank_run >= self.endpoint_frames
        if pause or (self.max_segment_frames is not None and self._segment_frames >= self.max_segment_frames):
            self._end_segment(commit=not pause or bool(self.search.best()))
        return True

    def _segment_result(self) -> tuple[int, ...]:
        """Best tokens of the current segment: its CTC n-best, attention-rescored if enabled."""
        nbest = self.search.nbest()
        if self.do_rescore and self._enc_outs and nbest:
            model = self.asr.model
            return rescore_nbest(getattr(model, "decoder", None), torch.cat(self._enc_outs), nbest, model.sos,
                                 model.eos, self.ctc_weight, self.length_bonus, self.attention_scorer)[0].tokens
        return nbest[0].tokens if nbest else ()

    def _end_segment(self, commit: bool = True) -> None:
        """Commit the current segment's result (unless a pause with nothing said) and start an empty one."""
        if commit:
            tokens = tuple(self._segment_result())
            self._pending.append(self._event("segment", tokens))
            self._ended.append(tokens)
        self.search.reset()
        self._enc_outs = []
        self._segment_frames = self._blank_run = 0

    @torch.no_grad()
    def accept(self, samples: np.ndarray, sample_rate: int = 16000) -> list[StreamEvent]:
        """Feed float32 mono samples in [-1, 1]; returns, when chunks were completed, the event of a segment
        that ended (if one did) and a partial of the current segment."""
        if self._t0 is None:
            self._t0 = time.perf_counter()
            self.chunk_compute_s = []
        start = time.perf_counter()
        # fbank and subsampling run once per chunk, not once per (possibly tiny) piece
        feats = self.fbank.accept(samples, sample_rate, min_frames=self.encoder.fbank_frames_needed())
        if feats.shape[0] == 0:
            return []
        if not self._advance(*self._encode(feats)):
            return []
        self.chunk_compute_s.append(time.perf_counter() - start)
        events, self._pending = self._pending, []
        return [*events, self._event("partial", self.search.best())]

    @torch.no_grad()
    def finalize(self) -> StreamEvent:
        """End the utterance: encode the last chunk, rescore, return the final event (the whole utterance),
        and reset. Segments that end here are only in the final event.

        Works without any audio (empty result) and for audio shorter than one chunk.
        """
        start = time.perf_counter()
        audio_s = self.audio_s
        feats = self.fbank.flush()
        if feats.shape[0]:
            self._advance(*self._encode(feats))
        self._advance(*self._encode(None))
        best = self._segment_result()
        self.chunk_compute_s.append(time.perf_counter() - start)
        event = self._final(best, audio_s)
        compute = self.chunk_compute_s
        self.reset()
        self.chunk_compute_s = compute  # kept for the caller's timing until the next utterance starts
        return event
