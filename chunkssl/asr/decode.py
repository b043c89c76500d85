"""Offline (batch) decoding of one utterance's features: CTC prefix beam search + attention rescoring.

This is the simulated-streaming counterpart of :class:`~chunkssl.streaming.streamer.Streamer`: the
encoder runs once over the whole utterance with the chunk mask (or full context), then the same
search and rescoring code runs on all frames at once.
"""

from __future__ import annotations

import torch

from chunkssl.asr.model import LoadedASR, normalize_feats
from chunkssl.chunking import encoder_frames_for
from chunkssl.search.ctc_prefix import CTCPrefixBeamSearch
from chunkssl.search.rescoring import rescore


def set_chunk_mask(encoder: torch.nn.Module, chunk_size: int | None, left_chunks: int | None) -> None:
    """Make the chunk conformer's next forward use this chunk mask (None = full context / unlimited left)."""
    encoder.chunk_size = -1 if chunk_size is None else chunk_size
    encoder.left_chunks = -1 if left_chunks is None else left_chunks


@torch.no_grad()
def encode(asr: LoadedASR, feats: torch.Tensor, chunk_size: int | None, left_chunks: int | None) -> torch.Tensor:
    """Encoder outputs ``[T', D]`` of raw fbank ``[T, F]`` with the given chunk mask (None = full context)."""
    model = asr.model
    enc = model.encoder
    x = normalize_feats(model, feats.float())
    dtype = next(enc.parameters()).dtype
    # the chunk is an argument, not encoder state: a later forward keeps the configured chunk
    out, lens = enc.chunk_forward(x[None].to(dtype), torch.tensor([x.shape[0]]), chunk_size, left_chunks)
    return out[0, : int(lens[0])]


@torch.no_grad()
def ctc_log_probs(asr: LoadedASR, enc: torch.Tensor) -> torch.Tensor:
    """CTC log-posteriors ``[T', V]`` (float32) of encoder outputs."""
    return asr.model.ctc.log_softmax(enc[None])[0].float()


@torch.no_grad()
def decode_rescore(asr: LoadedASR, feats: torch.Tensor, chunk_size: int | None, left_chunks: int | None = -1,
                   beam_size: int = 10, ctc_weight: float = 0.3, length_bonus: float = 0.0) -> tuple[int, ...]:
    """Token ids of the best hypothesis: CTC prefix beam search then attention rescoring."""
    if encoder_frames_for(feats.shape[0]) == 0:
        return ()  # too short for the subsampling: the streamer also gives an empty result
    return search_rescore(asr, encode(asr, feats, chunk_size, left_chunks), beam_size, ctc_weight, length_bonus)


@torch.no_grad()
def search_rescore(asr: LoadedASR, enc: torch.Tensor, beam_size: int = 10, ctc_weight: float = 0.3,
                   length_bonus: float = 0.0) -> tuple[int, ...]:
    """Best token ids for encoder outputs ``[T', D]``: CTC prefix beam search, then attention rescoring."""
    model = asr.model
    search = CTCPrefixBeamSearch(beam_size, blank=model.blank_id)
    search.accept(ctc_log_probs(asr, enc))
    nbest = search.nbest()
    if not nbest:
        return ()
    return rescore(getattr(model, "decoder", None), enc, nbest, model.sos, model.eos, ctc_weight,
                   length_bonus)[0].tokens
