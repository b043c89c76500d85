"""Chunk SSL model: fbank -> (SpecAug) -> global MVN -> input masking -> chunk conformer with CADA -> group loss.

Per batch a chunk size and left-chunk limit are drawn (dynamic chunk training) and spans of 40 ms
frames are drawn in the extended chunks; the encoder outputs there predict the FSQ codes of the
original frames. The spans are masked in the *input* fbank, before the subsampling: base chunks are
subsampled from the clean fbank, the extended copies from the masked fbank, so no frame a copy
sees carries the input of its own masked frames (a subsampled frame reads 7 fbank frames with hop
4: masking after the subsampling leaves 3 of a masked frame's 4 fbank frames in its left
neighbour). The first frame of each chunk is never masked (see :mod:`chunkssl.masking`). With full
context drawn (or ``cada: false``) the masked frames are the utterance's own frames, as in
ordinary masked prediction, and the whole utterance is subsampled from the masked fbank.

Inputs come dumped or are made on the fly (``--feats-type raw --ssl-targets online`` in ssl1): with a
``frontend`` the ``speech`` of a batch is raw audio and the fbank is computed here; with ``targets``
(the frozen FSQ tokenizer or BEST-RQ) the codes of a batch without ``codes`` are computed here from
that fbank. Both run in float32 outside autocast, so they equal what compute_fbank and fsq_tokenize
dump (the codes exactly: a bf16 fbank would move some of them across an FSQ rounding boundary).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from torch import nn

from chunkssl.chunking import ChunkSampler
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.losses import GroupMaskedPredictionLoss
from chunkssl.cada import Layout
from chunkssl.masking import batch_span_masks, input_frame_mask, layout_replace, utterance_keys

MASK_INPUTS = ("learned", "noise")
DEFAULT_DYNAMIC_CHUNK = {"chunk_range_ms": [160, 1280], "full_context_prob": 0.1, "left_chunks": [-1]}


class ChunkSSLModel(AbsESPnetModel):
    """Masked prediction of FSQ codes in CADA extended chunks.

    Args:
        encoder: the chunk conformer (saved as ``encoder.*``, loadable into ASR/ST models).
        normalize, specaug: ESPnet feature normalisation (global MVN) and augmentation, optional.
        frontend: fbank from raw audio (``kaldi_fbank``), when ``speech`` is audio; optional.
        targets: frozen tokenizer (``tokenize(fbank, lengths) -> (codes, lengths)``) for batches
            without ``codes``; saved with the model, never trained; optional.
        levels: FSQ levels per channel; group_sizes: channels per loss group (from code_info.yaml).
        full_softmax: one softmax over the whole code vocabulary instead of per-group heads.
        cada: run the copy-and-append layout (False: mask base frames under a chunk mask).
        mask_prob, mask_length: span start probability per frame and span length (frames).
        mask_input: what replaces masked fbank frames (after MVN). ``learned`` (default): one
            learned fbank-space vector, the same for every masked frame; a constant the encoder can
            recognise, and deterministic, so the CADA copies equal a streaming run on the same
            masked input. ``noise``: Gaussian noise of std ``mask_noise_std``, as BEST-RQ does.
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
        mask_input: str = "learned",
        mask_noise_std: float = 0.1,
        frontend: Optional[AbsFrontend] = None,
        targets: Optional[nn.Module] = None,
    ):
        super().__init__()
        if not isinstance(encoder, ChunkConformerEncoder):
            raise TypeError(f"the SSL model needs the chunk_conformer encoder, got {type(encoder).__name__}")
        self.encoder = encoder
        self.frontend = frontend
        self.targets = targets
        if targets is not None:
            targets.requires_grad_(False)
            targets.eval()
        self.normalize = normalize
        self.specaug = specaug
        d = encoder.output_size()
        if mask_input not in MASK_INPUTS:
            raise ValueError(f"model_conf mask_input must be one of {MASK_INPUTS}, got {mask_input!r}")
        self.mask_input, self.mask_noise_std = mask_input, mask_noise_std
        # zeros = the global mean after MVN; the vector is learned from there
        self.mask_feat = nn.Parameter(torch.zeros(encoder.input_size)) if mask_input == "learned" else None
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

    def train(self, mode: bool = True) -> "ChunkSSLModel":
        """As ``nn.Module.train``, but the target tokenizer stays in eval mode (frozen)."""
        super().train(mode)
        if self.targets is not None:
            self.targets.eval()
        return self

    def input_fbank(self, speech: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fbank of a batch: ``speech`` itself, or the frontend's fbank when it is audio."""
        if self.frontend is None:
            if speech.dim() != 3:
                raise ValueError(f"speech of shape {tuple(speech.shape)} is not fbank [batch, frames, bins]; "
                                 f"audio needs --frontend kaldi_fbank (ssl.sh --feats-type raw)")
            return speech, lengths
        return self.frontend(speech, lengths)  # the frontend runs in float32 under any autocast itself

    @torch.no_grad()
    def online_codes(self, fbank: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes of the batch from the frozen target tokenizer (float32, as fsq_tokenize dumps them)."""
        if self.targets is None:
            raise ValueError("the batch has no codes and the model no target tokenizer: give the codes "
                             "(--ssl-targets dumped) or --target_tokenizer (--ssl-targets online)")
        with torch.autocast(fbank.device.type, enabled=False):
            return self.targets.tokenize(fbank.float(), lengths)

    def _features(self, speech: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # a copy: ESPnet's GlobalMVN normalises in place, and the caller's batch must stay as it was
        feats = speech[:, : int(lengths.max())].clone()
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

    def span_masks(self, lengths: torch.Tensor, keys: list[int], chunk: Optional[int],
                   step: int) -> torch.Tensor:
        """Masked spans ``[B, T]`` over encoder frames for a batch of ``lengths`` frames."""
        anchor = self.encoder.lookahead_frames if self.cada else 0
        return batch_span_masks(lengths, keys, chunk, self.mask_prob, self.mask_length, self.seed,
                                step, anchor)

    def mask_features(self, feats: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """A copy of ``feats [B, L, F]`` whose input frames under ``frame_mask [B, T]`` are replaced."""
        where = input_frame_mask(frame_mask, self.encoder.subsampling[0], feats.size(1)).unsqueeze(-1)
        if self.mask_feat is not None:
            fill = self.mask_feat.to(feats.dtype).expand_as(feats)
        else:
            fill = torch.randn_like(feats) * self.mask_noise_std
        return torch.where(where, fill, feats)

    def encode_masked(self, feats: torch.Tensor, feats_lengths: torch.Tensor, x: torch.Tensor,
                      lengths: torch.Tensor, chunk: Optional[int], left: Optional[int],
                      frame_mask: torch.Tensor) -> tuple[torch.Tensor, Layout, torch.Tensor]:
        """Encode a batch with ``frame_mask`` masked in its input; ``(outputs, layout, predicted positions)``.

        ``x`` is the clean subsampled ``feats`` cut to ``lengths`` frames. Under CADA the base chunks take
        ``x`` and the copies take frames subsampled from the masked fbank; offline (or without CADA)
        every frame does.
        """
        layout = self.encoder.layout(lengths, chunk, left, self.cada, x.size(1))
        offline = layout.chunk_size is None or not self.cada
        if chunk is not None and layout.chunk_size is None:
            frame_mask = torch.zeros_like(frame_mask)  # every utterance fits in one chunk: no copies
        replace = layout_replace(frame_mask, layout, offline)
        # run even without masked frames, so the mask vector is in every graph (DDP expects it)
        masked, _ = self.encoder.subsample(self.mask_features(feats, frame_mask), feats_lengths)
        masked = masked[:, : x.size(1)]
        if offline:
            out, _ = self.encoder.encode(masked, lengths, chunk, left, self.cada, layout=layout)
        else:
            out, _ = self.encoder.encode(x, lengths, chunk, left, self.cada, masked, layout)
        return out, layout, replace

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, codes: Optional[torch.Tensor] = None,
                codes_lengths: Optional[torch.Tensor] = None, **kwargs) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """Masked prediction loss of a batch; returns ``(loss, stats, weight = masked frames)``.

        ``speech`` is fbank, or audio with a frontend; ``codes`` None: the target tokenizer's codes.
        """
        fbank, fbank_lengths = self.input_fbank(speech, speech_lengths)
        if codes is None:
            codes, codes_lengths = self.online_codes(fbank, fbank_lengths)
        feats, feats_lengths = self._features(fbank, fbank_lengths)
        x, enc_lens = self.encoder.subsample(feats, feats_lengths)
        lengths = self._aligned_lengths(enc_lens, codes_lengths)
        x = x[:, : int(lengths.max())]
        if self.training:
            chunk, left = self.chunk_sampler()
            step = int(self.chunk_sampler.num_draws)
        else:
            chunk, left, step = self.eval_chunk, self.eval_left_chunks, -1
        keys = utterance_keys(codes[:, : int(lengths.max())], lengths)
        frame_mask = self.span_masks(lengths, keys, chunk, step)
        out, layout, replace = self.encode_masked(feats, feats_lengths, x, lengths, chunk, left, frame_mask)
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
        """Features for ESPnet's statistics stage (the fbank, from the frontend for audio)."""
        fbank, lengths = self.input_fbank(speech, speech_lengths)
        return {"feats": fbank[:, : int(lengths.max())], "feats_lengths": lengths}
