"""Offline and simultaneous ST decoding with ESPnet's ``Speech2Text`` on a chunk-conformer ST model.

Simultaneous decoding (see docs/metrics.md): the source arrives chunk by chunk. At each chunk
boundary the new chunk is encoded by the cached :class:`~chunkssl.streaming.encoder.StreamingEncoder`
(each chunk once, from its own frames and the caches: the same frames as the chunk-masked encoding
of the received prefix, at a cost that does not grow with the prefix), and a policy
(:mod:`chunkssl.st.policy`) decides which target tokens to commit:

- ``la`` (local agreement, LA-2): the beam search continues from the committed tokens to the end of
  a hypothesis; the longest common prefix of this hypothesis and the previous one is committed.
- ``waitk``: wait ``k`` chunks, then commit a fixed number of tokens per chunk (the search only
  extends the committed tokens by that many).

At the end of the input the whole final hypothesis is committed. Committed tokens are never retracted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

import chunkssl.espnet_glue  # noqa: F401  (registers chunk_conformer before the model is built)
from chunkssl.asr.model import normalize_feats
from chunkssl.frontend import drop_fbank_frontend
from chunkssl.st.policy import WaitK, chunk_schedule, fbank_source_ms, local_agreement, word_delays
from chunkssl.streaming.encoder import StreamingEncoder


def load_speech2text(config: str, model_file: str, beam_size: int = 5, maxlenratio: float = 0.0,
                     minlenratio: float = 0.0, device: str = "cpu", bpemodel: Optional[str] = None):
    """ESPnet's ST ``Speech2Text`` (attention beam search, no LM) for our trained model."""
    from espnet2.bin.st_inference import Speech2Text

    from chunkssl.checkpoint import check_keys, read_state
    from chunkssl.saved_config import resolved_config_file

    state = read_state(model_file)  # ESPnet loads non-strictly: the keys are checked below
    with resolved_config_file(config) as resolved:  # relative paths work from any directory
        s2t = Speech2Text(st_train_config=resolved, st_model_file=model_file, beam_size=beam_size,
                          maxlenratio=maxlenratio, minlenratio=minlenratio, device=device,
                          bpemodel=bpemodel, ctc_weight=0.0, nbest=1)
    check_keys(s2t.st_model, state, model_file, config)
    drop_fbank_frontend(s2t.st_model)
    return s2t


def set_chunking(s2t, chunk_size: int | None, left_chunks: int | None = -1) -> None:
    """Make the model's encoder use ``chunk_size`` encoder frames (None or -1 = full context; left -1/None = all)."""
    enc = s2t.st_model.encoder
    if not hasattr(enc, "chunk_size"):
        raise ValueError(f"the model's encoder {type(enc).__name__} has no chunk mask; train with "
                         f"--encoder chunk_conformer")
    # ESPnet's Speech2Text runs the encoder's own forward, so the chunk goes into its config (-1 = offline)
    enc.chunk_size = -1 if chunk_size is None else chunk_size
    enc.left_chunks = -1 if left_chunks is None else left_chunks


def detokenize(s2t, token_ids: list[int]) -> str:
    """Target text of token ids (sentencepiece pieces joined back into words)."""
    tokens = s2t.converter.ids2tokens(token_ids)
    return s2t.tokenizer.tokens2text(tokens) if s2t.tokenizer is not None else " ".join(tokens)


@torch.no_grad()
def encode(s2t, feats: np.ndarray) -> torch.Tensor:
    """Encoder output ``[T', D]`` of one utterance's fbank ``[T, 80]`` (normalised inside the model)."""
    # a copy: ESPnet's GlobalMVN normalises in place, which would corrupt the caller's array
    speech = torch.tensor(np.asarray(feats), dtype=torch.float32).unsqueeze(0).to(s2t.device)
    lengths = torch.tensor([speech.size(1)], dtype=torch.long, device=s2t.device)
    enc, _ = s2t.st_model.encode(speech, lengths)
    return enc[0]


@torch.no_grad()
def search(s2t, enc: torch.Tensor, prefix: list[int], max_new: Optional[int] = None) -> Optional[list[int]]:
    """Best hypothesis (tokens after <sos>, without <eos>) continuing ``prefix``; None if none ended.

    ``max_new`` caps the tokens added to ``prefix`` (a hypothesis cut there counts as ended).
    """
    if max_new is not None and max_new <= 0:
        return list(prefix)
    bs = s2t.beam_search
    sos, eos = s2t.st_model.sos, s2t.st_model.eos
    maxlenratio = s2t.maxlenratio
    if maxlenratio > 0:
        # the primer does not count in ESPnet's limit: bound the whole output as offline decoding does
        maxlenratio = -max(1, int(maxlenratio * enc.size(0)) - len(prefix))
    if max_new is not None:
        # a negative ratio is ESPnet's absolute number of new tokens; it appends <eos> after the last
        maxlenratio = -min(max_new, -maxlenratio) if maxlenratio < 0 else -max_new
    bs.set_hyp_primer([sos] + list(prefix))
    try:
        hyps = bs(x=enc, maxlenratio=maxlenratio, minlenratio=s2t.minlenratio)
    finally:
        bs.set_hyp_primer(None)
    if not hyps:
        return None
    ids = hyps[0].yseq.tolist()[1:]
    if ids and ids[-1] == eos:
        ids = ids[:-1]
    return [i for i in ids if i not in (0, eos)]


def translate_offline(s2t, feats: np.ndarray) -> tuple[str, list[int]]:
    """Offline translation of one utterance with the encoder's current chunking."""
    ids = search(s2t, encode(s2t, feats), []) or []
    return detokenize(s2t, ids), ids


class PrefixEncoder:
    """Encoder outputs of a growing fbank prefix of one utterance, read no further than asked.

    ``cached``: new frames are normalised and fed to a :class:`StreamingEncoder` (every chunk encoded
    once; per-step cost independent of the prefix). Otherwise the whole prefix is re-encoded with
    the chunk mask at every step (the reference the cached path must equal; also what a full-context
    encoder needs, since it has no chunks to cache).
    """

    def __init__(self, s2t, feats: np.ndarray, cached: bool):
        self.s2t, self.feats, self.cached = s2t, np.asarray(feats), cached
        self._read = 0
        self._out: Optional[torch.Tensor] = None
        if cached:
            enc = s2t.st_model.encoder
            if not use_cached_encoder(s2t, getattr(enc, "chunk_size", -1)):
                raise ValueError("a cached streaming encoder needs a chunk_conformer encoder with a positive "
                                 "chunk size (set_chunking)")
            self._stream = StreamingEncoder(enc, enc.chunk_size, enc.left_chunks)

    @torch.no_grad()
    def encode_upto(self, num_fbank: int, final: bool) -> torch.Tensor:
        """Encoder output ``[T', D]`` of ``feats[:num_fbank]`` (``final``: the input ends there)."""
        if num_fbank < self._read:
            raise ValueError(f"the prefix cannot shrink: {num_fbank} < {self._read} fbank frames")
        if not self.cached:
            self._read = num_fbank
            return encode(self.s2t, self.feats[:num_fbank])
        # a copy: ESPnet's GlobalMVN normalises in place; it is per frame, so pieces normalise alike
        new = torch.tensor(self.feats[self._read:num_fbank], dtype=torch.float32, device=self.s2t.device)
        self._read = num_fbank
        new = normalize_feats(self.s2t.st_model, new)
        pieces = [] if self._out is None else [self._out]
        pieces.append(self._stream.accept(new))
        if final:
            pieces.append(self._stream.finalize())
        self._out = torch.cat(pieces)
        return self._out


def use_cached_encoder(s2t, chunk_size: int) -> bool:
    """Whether a streaming encoder can cache the schedule's chunks: they are the encoder's own chunks."""
    enc_chunk = getattr(s2t.st_model.encoder, "chunk_size", None)
    return hasattr(s2t.st_model.encoder, "embed") and enc_chunk is not None and 0 < enc_chunk == chunk_size


@dataclass
class SimulResult:
    """One utterance decoded simultaneously; times in ms of source (compute in ms of wall clock)."""

    text: str
    token_ids: list[int]
    token_times: list[float]
    token_compute: list[float]
    source_length: float
    events: list[tuple[float, list[int], bool]] = field(default_factory=list)  # (source ms, committed, final)
    delays: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)

    def latency_record(self, utt_id: str) -> dict:
        """The JSON-lines record ``score_st --latency-log`` reads (one delay per output word)."""
        return {"id": utt_id, "source_length": self.source_length, "delays": self.delays,
                "elapsed": self.elapsed}


def translate_simultaneous(s2t, feats: np.ndarray, chunk_size: int, wait_k: Optional[WaitK] = None,
                           cached: Optional[bool] = None) -> SimulResult:
    """Simultaneous translation of one utterance, ``chunk_size`` encoder frames per chunk.

    ``wait_k`` None is local agreement, else the wait-k schedule. ``cached`` None: the streaming
    encoder when the schedule's chunks are the encoder's (:func:`use_cached_encoder`), else
    re-encoding. Each step sees only ``feats[:step.fbank_frames]``, so no commitment can depend on
    later audio.
    """
    feats = np.asarray(feats)
    if cached is None:
        cached = use_cached_encoder(s2t, chunk_size)
    encoder = PrefixEncoder(s2t, feats, cached)
    committed: list[int] = []
    times: list[float] = []
    compute: list[float] = []
    previous: Optional[list[int]] = None
    spent = 0.0
    events = []
    for step in chunk_schedule(len(feats), chunk_size):
        start = time.perf_counter()
        enc = encoder.encode_upto(step.fbank_frames, step.final)
        if enc.shape[0] != step.encoder_frames:
            raise RuntimeError(f"encoded {enc.shape[0]} frames where the schedule expects {step.encoder_frames}")
        max_new = None
        if wait_k is not None and not step.final:
            max_new = wait_k.allowed(step.encoder_frames // chunk_size) - len(committed)
        current = search(s2t, enc, committed, max_new)
        if current is None:  # nothing ended: no new evidence this step
            current = list(committed)
        if step.final or wait_k is not None:
            new = current
        else:
            new = local_agreement(committed, previous, current)
        spent += (time.perf_counter() - start) * 1000.0
        times += [step.source_ms] * (len(new) - len(committed))
        compute += [spent] * (len(new) - len(committed))
        committed, previous = list(new), current
        events.append((step.source_ms, list(committed), step.final))
    source_length = fbank_source_ms(len(feats))
    text = detokenize(s2t, committed)
    delays = word_delays(committed, times, lambda ids: detokenize(s2t, list(ids)))
    spent_by_word = word_delays(committed, compute, lambda ids: detokenize(s2t, list(ids)))
    return SimulResult(text, committed, times, compute, source_length, events, delays,
                       [d + c for d, c in zip(delays, spent_by_word)])
