"""True streaming Codec-ASR: audio -> fbank -> tokenizer codes -> token frontend -> cached chunk encoder.

:class:`StreamingTokenizer` gives, from fbank frames fed a few at a time, exactly the codes the
offline ``FSQTokenizer.tokenize`` gives for the whole utterance. The tokenizer's encoder is a stack of
same-padded 1-D convs over stacked (40 ms) frames, so code ``t`` depends on stacked frames
``t - R .. t + R`` with ``R = sum((kernel - 1) / 2)`` over its convs (:func:`lookahead_frames`): a code
is emitted once ``R`` stacked frames past it are in, computed from a window that holds all of its
receptive field (zeros before the first frame and past the last, as offline). ``R`` tokens of 40 ms,
plus up to ``stack - 1`` fbank frames waiting for a full stack, are the tokenizer's own look-ahead,
added to the chunk latency. CMVN, stacking, the quantizer and the token frontend are per frame.

:class:`CodecStreamingEncoder` is a :class:`~chunkssl.streaming.encoder.StreamingEncoder` whose input
is fbank frames turned into codes, embedded by the model's token frontend and the encoder's
non-subsampling ``linear`` input layer; :func:`codec_streamer` puts it into the fbank
:class:`~chunkssl.streaming.streamer.Streamer`, so the search, partials and rescoring are that code.
"""

from __future__ import annotations

import os

import torch

from chunkssl.asr.model import LoadedASR
from chunkssl.codec.decode import check_token_model
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.fsq.frontend import TokenFrontend
from chunkssl.fileio import DataError
from chunkssl.fsq.features import stack_frames
from chunkssl.fsq.tokenizer import FSQTokenizer
from chunkssl.streaming.encoder import StreamingEncoder
from chunkssl.streaming.streamer import Streamer


def lookahead_frames(module: torch.nn.Module) -> int:
    """Stacked frames of right (and left) context of a stack of same-padded 1-D convs."""
    total = 0
    for conv in module.modules():
        if isinstance(conv, torch.nn.Conv1d):
            if conv.padding[0] * 2 != conv.dilation[0] * (conv.kernel_size[0] - 1):
                raise ValueError(f"{conv} is not a same-padded conv: cannot stream it exactly")
            total += conv.padding[0]
    return total


class StreamingTokenizer:
    """Incremental codes of an FSQ/RVQ fbank tokenizer, equal to the offline codes of the whole utterance."""

    def __init__(self, tokenizer: FSQTokenizer):
        self.tok = tokenizer.eval()
        self.stack = tokenizer.stack
        self.lookahead = lookahead_frames(tokenizer.encoder)
        self.num_channels = len(tokenizer.code_levels)
        self.reset()

    @property
    def lookahead_ms(self) -> int:
        """Right context of a code, in ms of audio past the code's own 40 ms (stack waiting not counted)."""
        return self.lookahead * self.tok.frame_shift_ms

    def reset(self) -> None:
        """Forget the stream."""
        dim = self.tok.input_dim
        self._pending = torch.zeros(0, dim)                    # fbank frames not yet filling a stack
        self._stacked = torch.zeros(0, dim * self.stack)       # normalised stacked frames from _start on
        self._start = 0                                        # absolute index of _stacked[0]
        self._total = 0                                        # stacked frames so far
        self._emitted = 0                                      # codes output so far

    def fbank_frames_for(self, codes: int) -> int:
        """More fbank frames needed before ``codes`` codes in all can be emitted (their right context in)."""
        return max(0, self.stack * (codes + self.lookahead) - self.stack * self._total - self._pending.shape[0])

    @property
    def buffered_frames(self) -> int:
        """Stacked frames kept between calls (at most ``2 R`` plus those awaiting their right context)."""
        return int(self._stacked.shape[0])

    @torch.no_grad()
    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add raw fbank frames ``[n, F]``; return the int64 codes ``[m, C]`` whose right context is now in."""
        if feats.ndim != 2 or feats.shape[1] != self.tok.input_dim:
            raise DataError(f"streaming tokenizer expects fbank frames [n, {self.tok.input_dim}], "
                            f"got shape {tuple(feats.shape)}")
        feats = feats.to(self.tok.cmvn.mean)
        pending = torch.cat([self._pending, feats]) if self._pending.numel() else feats
        usable = (pending.shape[0] // self.stack) * self.stack
        self._pending = pending[usable:].clone()
        if usable:
            normed = (pending[:usable] - self.tok.cmvn.mean) / self.tok.cmvn.std
            stacked = stack_frames(normed[None], self.stack)[0]
            self._stacked = torch.cat([self._stacked, stacked])
            self._total += stacked.shape[0]
        return self._emit(self._total - self.lookahead)

    @torch.no_grad()
    def finalize(self) -> torch.Tensor:
        """Codes of the last frames (the utterance end is their right context); then reset."""
        codes = self._emit(self._total)
        self.reset()
        return codes

    def _emit(self, upto: int) -> torch.Tensor:
        if upto <= self._emitted:
            return torch.zeros(0, self.num_channels, dtype=torch.int64)
        lo = max(0, self._emitted - self.lookahead)
        hi = min(self._total, upto + self.lookahead)
        window = self._stacked[lo - self._start: hi - self._start]
        mask = torch.ones(1, window.shape[0], dtype=torch.bool)
        codes = self.tok.quantizer(self.tok.encoder(window[None], mask), mask).codes
        out = codes[0, self._emitted - lo: upto - lo].to(torch.int64)
        self._emitted = upto
        # frames before the next code's left context are never read again
        keep = max(0, self._emitted - self.lookahead) - self._start
        if keep > 0:
            self._stacked = self._stacked[keep:].clone()
            self._start += keep
        return out


class CodecInput:
    """Input stage of :class:`StreamingEncoder` for a token model: fbank -> codes -> token frontend -> linear layer."""

    def __init__(self, encoder: ChunkConformerEncoder, frontend: TokenFrontend, tokenizer: FSQTokenizer):
        if tokenizer.code_groups != frontend.groups:
            raise DataError(f"the tokenizer's codes {tokenizer.quantizer_type} {tokenizer.code_groups} are not "
                            f"the codes the ASR model was trained on ({frontend.kind} {frontend.groups}); "
                            f"give the tokenizer that made its training codes")
        self.encoder = encoder
        self.tokenizer = StreamingTokenizer(tokenizer)
        self.frontend = frontend.eval()
        param = next(encoder.parameters())
        self.dtype, self.device = param.dtype, param.device

    def reset(self) -> None:
        """Forget the stream."""
        self.tokenizer.reset()

    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        """Add raw fbank frames ``[n, F]``; return the encoder frames ``[1, m, D]`` of the codes now out."""
        return self._embed(self.tokenizer.accept(feats) if feats.shape[0] else None)

    def finalize(self) -> torch.Tensor:
        """Encoder frames of the utterance's last codes (the end is their right context)."""
        return self._embed(self.tokenizer.finalize())

    def frames_needed(self, encoder_frames: int) -> int:
        """More fbank frames before ``encoder_frames`` codes (and their right context) exist."""
        return self.tokenizer.fbank_frames_for(encoder_frames)

    def buffer_sizes(self) -> dict:
        """The tokenizer's stacked frames."""
        return {"tokenizer": self.tokenizer.buffered_frames}

    def _embed(self, codes: torch.Tensor | None) -> torch.Tensor:
        if codes is None or codes.shape[0] == 0:
            return torch.zeros(1, 0, self.encoder.output_size(), dtype=self.dtype, device=self.device)
        emb, _ = self.frontend(codes[None], torch.tensor([codes.shape[0]]))
        return self.encoder.embed_window(emb.to(self.device, self.dtype))


class CodecStreamingEncoder(StreamingEncoder):
    """Cached chunk encoder fed fbank frames: tokenizer codes, token frontend, linear input layer, chunks."""

    def __init__(self, encoder: ChunkConformerEncoder, frontend: TokenFrontend, tokenizer: FSQTokenizer,
                 chunk_size: int, left_chunks: int | None = -1):
        self.codec = CodecInput(encoder, frontend, tokenizer)
        super().__init__(encoder, chunk_size, left_chunks, input_stage=self.codec)

    @property
    def tokenizer(self) -> StreamingTokenizer:
        """The incremental tokenizer (its buffers)."""
        return self.codec.tokenizer


def load_code_tokenizer(asr: LoadedASR, model_file: str | os.PathLike | None = None,
                        config_file: str | os.PathLike | None = None) -> FSQTokenizer:
    """The tokenizer of a token model: ``model_file`` if given, else the one its code_info.yaml records."""
    from chunkssl.fsq.io import load_fsq_tokenizer

    if model_file is None:
        info = _frontend_code_info(asr)
        if info.get("tokenizer") not in ("fsq", "rvq") or not info.get("model_file"):
            raise DataError("streaming from audio needs the FSQ/RVQ tokenizer that made the training codes; the "
                            "model's code_info records none: give --tokenizer-model")
        model_file, config_file = info["model_file"], config_file or info.get("config_file")
    return load_fsq_tokenizer(model_file, config_file)


def _frontend_code_info(asr: LoadedASR) -> dict:
    from chunkssl.fsq.io import read_code_info

    conf = dict(getattr(asr.train_args, "frontend_conf", None) or {})
    if "code_info" not in conf:
        raise DataError("the model's config has no frontend_conf.code_info; give --tokenizer-model")
    return read_code_info(conf["code_info"])


def codec_streamer(asr: LoadedASR, tokenizer: FSQTokenizer, chunk_ms: int = 640, left_chunks: int = -1,
                   beam_size: int = 10, ctc_weight: float = 0.3, **kwargs) -> Streamer:
    """A :class:`Streamer` (same search, partials and rescoring as fbank models) over a token model."""
    frontend = check_token_model(asr)

    def make_encoder(frames: int, left: int) -> CodecStreamingEncoder:
        return CodecStreamingEncoder(asr.model.encoder, frontend, tokenizer, frames, left)

    return Streamer(asr, chunk_ms, left_chunks, beam_size, ctc_weight, make_encoder=make_encoder, **kwargs)

