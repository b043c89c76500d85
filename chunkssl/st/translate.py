"""Offline and simultaneous ST decoding with ESPnet's ``Speech2Text`` on a chunk-conformer ST model.

Simultaneous policy (local agreement, see docs/metrics.md): the source arrives chunk by chunk; at
each chunk boundary the received fbank prefix is encoded with the chunk mask (what a streaming
encoder gives for those frames), the beam search continues from the committed target tokens, and
the longest common prefix of this hypothesis and the previous one is committed. At the end of the
input the whole final hypothesis is committed. Committed tokens are never retracted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

import chunkssl.espnet_glue  # noqa: F401  (registers chunk_conformer before the model is built)
from chunkssl.st.policy import chunk_schedule, fbank_source_ms, local_agreement, word_delays

FRAME_MS = 40  # one encoder frame


def chunk_frames(chunk_ms: int) -> int:
    """Chunk size in encoder frames for ``chunk_ms`` (<= 0 means offline: -1)."""
    if chunk_ms <= 0:
        return -1
    if chunk_ms % FRAME_MS:
        raise ValueError(f"chunk size {chunk_ms} ms is not a multiple of the {FRAME_MS} ms encoder frame")
    return chunk_ms // FRAME_MS


def load_speech2text(config: str, model_file: str, beam_size: int = 5, maxlenratio: float = 0.0,
                     minlenratio: float = 0.0, device: str = "cpu", bpemodel: Optional[str] = None):
    """ESPnet's ST ``Speech2Text`` (attention beam search, no LM) for our trained model."""
    from espnet2.bin.st_inference import Speech2Text

    return Speech2Text(st_train_config=config, st_model_file=model_file, beam_size=beam_size,
                       maxlenratio=maxlenratio, minlenratio=minlenratio, device=device,
                       bpemodel=bpemodel, ctc_weight=0.0, nbest=1)


def set_chunking(s2t, chunk_size: int, left_chunks: int = -1) -> None:
    """Make the model's encoder use ``chunk_size`` encoder frames (-1 = full context)."""
    enc = s2t.st_model.encoder
    if not hasattr(enc, "chunk_size"):
        raise ValueError(f"the model's encoder {type(enc).__name__} has no chunk mask; train with "
                         f"--encoder chunk_conformer")
    enc.chunk_size, enc.left_chunks = chunk_size, left_chunks


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
def search(s2t, enc: torch.Tensor, prefix: list[int]) -> Optional[list[int]]:
    """Best hypothesis (tokens after <sos>, without <eos>) continuing ``prefix``; None if none ended."""
    bs = s2t.beam_search
    sos, eos = s2t.st_model.sos, s2t.st_model.eos
    maxlenratio = s2t.maxlenratio
    if maxlenratio > 0:
        # the primer does not count in ESPnet's limit: bound the whole output as offline decoding does
        maxlenratio = -max(1, int(maxlenratio * enc.size(0)) - len(prefix))
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


def translate_simultaneous(s2t, feats: np.ndarray, chunk_size: int) -> SimulResult:
    """Local-agreement simultaneous translation of one utterance, ``chunk_size`` encoder frames per chunk.

    Each step sees only ``feats[:step.fbank_frames]``, so no commitment can depend on later audio.
    """
    feats = np.asarray(feats)
    committed: list[int] = []
    times: list[float] = []
    compute: list[float] = []
    previous: Optional[list[int]] = None
    spent = 0.0
    events = []
    for step in chunk_schedule(len(feats), chunk_size):
        start = time.perf_counter()
        enc = encode(s2t, feats[:step.fbank_frames])
        current = search(s2t, enc, committed)
        if current is None:  # nothing ended: no new evidence this step
            current = list(committed)
        new = current if step.final else local_agreement(committed, previous, current)
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
