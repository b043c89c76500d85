"""Chunk SSL model: fbank -> (SpecAug) -> global MVN -> chunk conformer with CADA -> group loss.

Per batch a chunk size and left-chunk limit are drawn (dynamic chunk training); spans of frames in
the extended chunks are replaced by a learned mask embedding, and the encoder outputs there
predict the FSQ codes of the original frames. With full context drawn (or ``cada: false``) the
masked frames are the utterance's own frames, as in ordinary masked prediction.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from torch import nn

from chunkssl.chunking import ChunkSampler
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.losses import GroupMaskedPredictionLoss
from chunkssl.masking import batch_span_masks, layout_replace, utterance_keys

DEFAULT_DYNAMIC_CHUNK = {"chunk_range_ms": [160, 1280], "full_context_prob": 0.1, "left_chunks": [-1]}


class ChunkSSLModel(AbsESPnetModel):
    """Masked prediction of FSQ codes in CADA extended chunks.

    Args:
        encoder: the chunk conformer (saved as ``encoder.*``, loadable into ASR/ST models).
        normalize, specaug: ESPnet feature normalisation (global MVN) and augmentation, optional.
        levels: FSQ levels per channel; group_sizes: channels per loss group (from code_info.yaml).
        full_softmax: one softmax over the whole code vocabulary instead of per-group heads.
        cada: run the copy-and-append layout (False: mask base frames under a chunk mask).
        mask_prob, mask_length: span start probability per frame and span length (frames).
        dynamic_chunk: :class:`~chunkssl.chunking.ChunkSampler` options for training batches.
        eval_chunk_ms, eval_left_chunks: fixed chunking for validation (-1 = full context/unlimited).
        frame_ms: encoder frame duration; seed: base of chunk and mask draws.
        max_length_mismatch: largest tolerated difference between encoder and code frame counts.
    """

    def __init__(
        self,
        encoder: ChunkConformerEncoder,
        levels: Sequence[int],
        normalize: Optional[AbsNormalize] = None,
        specaug: Optional[AbsSpecAug] = None,
        group_sizes: Optional[Sequence[int]] = None,
        full_softmax: bool = False,
        cada: bool = True,
        mask_prob: float = 0.1,
        mask_length: int = 5,
        dynamic_chunk: Optional[dict] = None,
        eval_chunk_ms: int = 640,
        eval_left_chunks: int = -1,
        frame_ms: int = 40,
        seed: int = 0,
        max_length_mismatch: int = 4,
    ):
        super().__init__()
        if not isinstance(encoder, ChunkConformerEncoder):
            raise TypeError(f"the SSL model needs the chunk_conformer encoder, got {type(encoder).__name__}")
        self.encoder = encoder
        self.normalize = normalize
        self.specaug = specaug
        d = encoder.output_size()
        self.mask_emb = nn.Parameter(torch.empty(d).normal_(0.0, 1.0))
        self.predictor = GroupMaskedPredictionLoss(d, levels, group_sizes, full_softmax)
        conf = dict(DEFAULT_DYNAMIC_CHUNK if dynamic_chunk is None else dynamic_chunk)
        conf.setdefault("frame_ms", frame_ms)
        conf.setdefault("seed", seed)
        self.chunk_sampler = ChunkSampler(**conf)
        self.cada = cada
        self.mask_prob, self.mask_length = mask_prob, mask_length
        self.eval_chunk = None if eval_chunk_ms <= 0 else ChunkSampler._frames(eval_chunk_ms, frame_ms)
        self.eval_left_chunks = None if eval_left_chunks < 0 else eval_left_chunks
        self.frame_ms, self.seed = frame_ms, seed
        self.max_length_mismatch = max_length_mismatch

    def _features(self, speech: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = speech[:, : int(lengths.max())]
        if self.specaug is not None and self.training:
            feats, lengths = self.specaug(feats, lengths)
        if self.normalize is not None:
            feats, lengths = self.normalize(feats, lengths)
        return feats, lengths

    def _aligned_lengths(self, enc_lens: torch.Tensor, codes_lengths: torch.Tensor) -> torch.Tensor:
        gap = (enc_lens - codes_lengths).abs()
        if int(gap.max()) > self.max_length_mismatch:
            b = int(gap.argmax())
            raise ValueError(f"utterance {b} of the batch has {int(enc_lens[b])} encoder frames but "
                             f"{int(codes_lengths[b])} code frames; feats.scp and codes.scp must come "
                             f"from the same fbank (codes at 40 ms = fbank frames // 4)")
        return torch.minimum(enc_lens, codes_lengths)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, codes: torch.Tensor,
                codes_lengths: torch.Tensor, **kwargs) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """Masked prediction loss of a batch; returns ``(loss, stats, weight = masked frames)``."""
        feats, feats_lengths = self._features(speech, speech_lengths)
        x, enc_lens = self.encoder.subsample(feats, feats_lengths)
        lengths = self._aligned_lengths(enc_lens, codes_lengths)
        x = x[:, : int(lengths.max())]
        if self.training:
            chunk, left = self.chunk_sampler()
            step = int(self.chunk_sampler.num_draws)
        else:
            chunk, left, step = self.eval_chunk, self.eval_left_chunks, -1
        keys = utterance_keys(codes[:, : int(lengths.max())], lengths)
        frame_mask = batch_span_masks(lengths, keys, chunk, self.mask_prob, self.mask_length,
                                      self.seed, step)
        layout = self.encoder.layout(lengths, chunk, left, self.cada, x.size(1))
        offline = layout.chunk_size is None or not self.cada
        if chunk is not None and layout.chunk_size is None:
            frame_mask = torch.zeros_like(frame_mask)  # every utterance fits in one chunk: no copies
        replace = layout_replace(frame_mask, layout, offline)
        out, _ = self.encoder.encode(x, lengths, chunk, left, self.cada, replace, self.mask_emb, layout)
        batch_idx, pos = replace.nonzero(as_tuple=True)
        num_masked = batch_idx.numel()
        stats: dict[str, Optional[torch.Tensor]] = {}
        if num_masked == 0:
            logging.warning("a batch without masked frames (utterances shorter than two chunks?)")
            loss = out.sum() * 0.0  # keeps the graph so backward and DDP stay in step
            for k in range(len(self.predictor.heads)):
                stats[f"acc_g{k}"] = None
            stats["acc"] = None
        else:
            targets = codes[batch_idx, layout.source[pos]]
            loss, acc_stats = self.predictor(out[batch_idx, pos], targets)
            stats.update(acc_stats)
        stats["loss"] = loss.detach()
        stats["chunk_ms"] = torch.tensor(float(0 if chunk is None else chunk * self.frame_ms))
        stats["masked_frac"] = torch.tensor(num_masked / max(int(lengths.sum()), 1))
        weight = torch.tensor(max(num_masked, 1), device=loss.device)
        loss, stats, weight = force_gatherable((loss, stats, weight), loss.device)
        return loss, stats, weight

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                      **kwargs) -> dict[str, torch.Tensor]:
        """Features for ESPnet's statistics stage (the fbank as given)."""
        return {"feats": speech[:, : int(speech_lengths.max())], "feats_lengths": speech_lengths}
