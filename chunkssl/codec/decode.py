"""Decoding of Codec-ASR models (token frontend + chunk conformer) from tokenizer codes.

The decoder is the one of fbank models (:mod:`chunkssl.asr.decode`): CTC prefix beam search over the
encoder's CTC posteriors, then attention rescoring of its n-best. Only the input differs: integer
codes ``[T', C]`` (one frame per 40 ms token) go through the model's token frontend, and the encoder
(``input_layer: linear``) keeps that frame rate, so a chunk of ``C`` encoder frames is ``C`` tokens.
"""

from __future__ import annotations

import torch

from chunkssl.asr.decode import search_rescore, set_chunk_mask
from chunkssl.asr.model import LoadedASR
from chunkssl.fsq.frontend import TokenFrontend
from chunkssl.fileio import DataError


def check_token_model(asr: LoadedASR) -> TokenFrontend:
    """The model's token frontend; a clear error for a model trained on fbank."""
    frontend = getattr(asr.model, "frontend", None)
    if not isinstance(frontend, TokenFrontend):
        raise DataError("this ASR model has no token frontend (frontend: token): it was trained on "
                        f"{type(frontend).__name__ if frontend is not None else 'precomputed features'}; "
                        "decode it with chunkssl.bin.asr_inference instead")
    if getattr(asr.model.encoder, "input_layer", "conv2d") != "linear":
        raise DataError("a token model's encoder must not subsample the 40 ms tokens again: train it with "
                        "encoder_conf.input_layer: linear")
    return frontend


def as_codes(codes) -> torch.Tensor:
    """Int64 tensor ``[T', C]`` of an utterance's codes (numpy or torch; one channel may be 1-D)."""
    codes = torch.as_tensor(codes)
    if codes.dim() == 1:
        codes = codes.unsqueeze(-1)
    return codes.to(torch.int64)


@torch.no_grad()
def encode_codes(asr: LoadedASR, codes: torch.Tensor, chunk_size: int | None,
                 left_chunks: int | None = -1) -> torch.Tensor:
    """Encoder outputs ``[T', D]`` of codes ``[T', C]`` with the given chunk mask (None = full context)."""
    model = asr.model
    set_chunk_mask(model.encoder, chunk_size, left_chunks)
    codes = as_codes(codes)
    device = next(model.parameters()).device
    out, lens = model.encode(codes[None].to(device), torch.tensor([codes.shape[0]], device=device))
    return out[0, : int(lens[0])]


@torch.no_grad()
def decode_codes(asr: LoadedASR, codes: torch.Tensor, chunk_size: int | None, left_chunks: int | None = -1,
                 beam_size: int = 10, ctc_weight: float = 0.3, length_bonus: float = 0.0) -> tuple[int, ...]:
    """Token ids of the best hypothesis for codes ``[T', C]``: CTC prefix beam search, attention rescoring."""
    codes = as_codes(codes)
    if codes.shape[0] == 0:
        return ()
    return search_rescore(asr, encode_codes(asr, codes, chunk_size, left_chunks), beam_size, ctc_weight,
                          length_bonus)
