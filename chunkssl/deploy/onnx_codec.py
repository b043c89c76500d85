"""Codec-ASR token models on onnxruntime: export (:func:`export_token_model`) and :class:`OnnxCodecStreamer`.

    info = export_token_model(asr, "exp/asr_x/onnx", 640, 4, tokenizer)   # encoder.onnx + tokenizer.onnx
    streamer = OnnxCodecStreamer(asr, "exp/asr_x/onnx")                   # once encoder.json holds info
    for piece in pieces:
        for event in streamer.accept(piece):
            print(event.type, event.text)
    final = streamer.finalize()

The export writes the token model's streaming step (``input: codes``,
:class:`~chunkssl.deploy.onnx_export.CodesEncoderStep`: token frontend, linear input layer, chunk
encoder, CTC) and the FSQ/RVQ tokenizer's code computation
(:mod:`chunkssl.deploy.onnx_tokenizer`). The streamer is :func:`~chunkssl.codec.streaming.codec_streamer`
with its encoder replaced: incremental fbank, search, partials, segmentation and rescoring are
:class:`~chunkssl.streaming.streamer.Streamer`'s own code; the codes come from ``tokenizer.onnx``
(:class:`~chunkssl.deploy.onnx_tokenizer.OnnxStreamingTokenizer`), or, when the export has none or a
PyTorch tokenizer is given, from :class:`~chunkssl.codec.streaming.StreamingTokenizer`; the chunks run
in ``encoder.onnx`` (``encoder.int8.onnx`` with ``int8``) through
:class:`~chunkssl.deploy.onnx_encoder.OnnxStreamingCodesEncoder`. Rescoring uses ``decoder.onnx`` when
``encoder.json`` records one, else the model's PyTorch decoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chunkssl.asr.model import LoadedASR, load_asr
from chunkssl.codec.decode import check_token_model
from chunkssl.codec.streaming import StreamingTokenizer, load_code_tokenizer
from chunkssl.deploy.onnx_encoder import OnnxStreamingCodesEncoder
from chunkssl.deploy.onnx_export import ExportRefused, export_encoder_step
from chunkssl.deploy.onnx_streamer import onnx_scorer, read_encoder_json
from chunkssl.deploy.onnx_tokenizer import TOKENIZER_NAME, OnnxStreamingTokenizer, check_tokenizer, export_tokenizer
from chunkssl.fileio import DataError
from chunkssl.fsq.frontend import TokenFrontend
from chunkssl.fsq.tokenizer import FSQTokenizer
from chunkssl.streaming.streamer import Streamer

__all__ = ["export_token_model", "read_codec_export", "OnnxCodecEncoderStep", "OnnxCodecStreamer"]

JSON_KEYS = ("inputs", "outputs", "shapes", "code_groups", "code_levels")  # metadata values that are JSON


def _record(meta: dict[str, str]) -> dict:
    """Metadata as encoder.json holds it: JSON values parsed."""
    return {**meta, **{key: json.loads(meta[key]) for key in JSON_KEYS if isinstance(meta.get(key), str)}}


def export_token_model(asr: LoadedASR | nn.Module, out_dir: str | Path, chunk_ms: int, left_chunks: int | None,
                       tokenizer: FSQTokenizer | None) -> dict:
    """Write ``encoder.onnx`` (codes in) and, with a tokenizer, ``tokenizer.onnx`` of a Codec-ASR model (loaded,
    or its ESPnet model) to ``out_dir``; returns what encoder.json should hold (``"tokenizer"``: its record, or None).

    Without a tokenizer the streamer runs the PyTorch one (:class:`OnnxCodecStreamer`'s ``tokenizer``). A model
    or tokenizer the graphs cannot express is refused (:class:`ExportRefused`) before anything is written.
    """
    model = asr.model if isinstance(asr, LoadedASR) else asr
    frontend = getattr(model, "frontend", None)
    if not isinstance(frontend, TokenFrontend):
        raise ExportRefused(f"the model's frontend is {type(frontend).__name__}, not the token frontend: not a "
                            "Codec-ASR token model (export fbank models with export_encoder_step)")
    if tokenizer is not None:
        check_tokenizer(tokenizer)
        if tokenizer.code_groups != frontend.groups:
            raise ExportRefused(f"the tokenizer's codes {tokenizer.quantizer_type} {tokenizer.code_groups} are not "
                                f"the codes the model was trained on ({frontend.kind} {frontend.groups}); give "
                                "the tokenizer that made its training codes")
    out = Path(out_dir)
    info = _record(export_encoder_step(model, out / "encoder.onnx", chunk_ms, left_chunks))
    if tokenizer is None:
        (out / TOKENIZER_NAME).unlink(missing_ok=True)  # one of an earlier export need not match this model
        info["tokenizer"] = None
    else:
        info["tokenizer"] = {"file": TOKENIZER_NAME, **_record(export_tokenizer(tokenizer, out / TOKENIZER_NAME))}
    return info


def read_codec_export(onnx_dir: str | Path, int8: bool = False) -> tuple[Path, dict, Path | None]:
    """``(encoder .onnx to run, encoder.json, tokenizer.onnx or None)`` of a token model's export."""
    path, info = read_encoder_json(onnx_dir, int8)
    info = _record(info) if isinstance(info.get("code_groups"), str) else info  # written with the JSON unparsed
    info_path = Path(onnx_dir) / "encoder.json"
    if info.get("input", "fbank") != "codes":
        raise DataError(f"{info_path}: the export of an fbank model (its encoder takes fbank, not codes); run it "
                        "with chunkssl.bin.asr_inference_streaming --backend onnx")
    record = info.get("tokenizer")
    if not record:
        return path, info, None
    tok_path = Path(onnx_dir) / str(record.get("file", TOKENIZER_NAME)) if isinstance(record, dict) else None
    if tok_path is None or not tok_path.is_file():
        raise DataError(f"{tok_path or info_path}: the tokenizer recorded in {info_path} is missing; export again")
    return path, info, tok_path


class OnnxCodecEncoderStep:
    """The encoder a :class:`Streamer` is given: raw fbank in (torch), codes by the streaming tokenizer, chunks
    in onnxruntime; ``(encoder frames, CTC log-probs)`` out (torch)."""

    takes_raw_fbank = True

    def __init__(self, path: str | Path, tokenizer: OnnxStreamingTokenizer | StreamingTokenizer, threads: int = 1):
        self.codes = OnnxStreamingCodesEncoder(path, threads)
        self.tokenizer = tokenizer
        self.chunk = self.codes.chunk

    def reset(self) -> None:
        """Forget the stream."""
        self.tokenizer.reset()
        self.codes.reset()

    @property
    def num_encoded(self) -> int:
        """Encoder frames output so far."""
        return self.codes.num_encoded

    def fbank_frames_needed(self) -> int:
        """More fbank frames before the next full chunk's codes (and their right context) exist."""
        return self.tokenizer.fbank_frames_for(self.codes.num_encoded + self.chunk)

    def cache_sizes(self) -> dict:
        """The tokenizer's stacked frames and the encoder's codes and fixed caches."""
        return {"tokenizer": self.tokenizer.buffered_frames, **self.codes.cache_sizes()}

    def accept(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw fbank frames ``[n, F]`` in; encoder frames and CTC log-probs of the chunks now complete out."""
        if isinstance(self.tokenizer, StreamingTokenizer):
            codes = self.tokenizer.accept(feats).numpy()
        else:
            codes = self.tokenizer.accept(feats.detach().cpu().numpy())
        return self._torch(*self.codes.accept(codes))

    def finalize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last codes (the end is their right context), their full chunks and the shorter last one."""
        codes = np.asarray(self.tokenizer.finalize())
        enc, logp = self.codes.accept(codes)
        last_enc, last_logp = self.codes.finalize()
        return self._torch(np.concatenate([enc, last_enc]), np.concatenate([logp, last_logp]))

    @staticmethod
    def _torch(enc: np.ndarray, logp: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(enc), torch.from_numpy(logp)


class OnnxCodecStreamer(Streamer):
    """A :class:`Streamer` over a Codec-ASR token model whose tokenizer and encoder step run in onnxruntime.

    Args:
        asr: the loaded token model the export was made from (its token list makes text; its decoder
            rescores when the export has no ``decoder.onnx``).
        onnx_dir: the export (``encoder.onnx``, ``encoder.json``, ``tokenizer.onnx`` if exported).
        tokenizer: a PyTorch FSQ/RVQ tokenizer to make the codes (:class:`StreamingTokenizer`) instead of
            ``tokenizer.onnx``; needed when the export has none.
        int8: run ``encoder.int8.onnx`` (and ``decoder.int8.onnx`` if exported); the tokenizer stays float32.
        threads: onnxruntime intra-op threads.
        **kwargs: Streamer's search, rescoring and segmentation options (not ``chunk_ms``/``left_chunks``,
            which are the export's, nor ``dtype``/``make_encoder``).
    """

    def __init__(self, asr: LoadedASR, onnx_dir: str | Path, tokenizer: FSQTokenizer | None = None,
                 int8: bool = False, threads: int = 1, **kwargs):
        for name in ("chunk_ms", "left_chunks", "dtype", "make_encoder"):
            if name in kwargs:
                raise TypeError(f"OnnxCodecStreamer takes no {name!r}: the chunking is fixed by "
                                f"{onnx_dir}/encoder.json")
        path, info, tok_path = read_codec_export(onnx_dir, int8)
        frontend, model = check_token_model(asr), asr.model
        vocab, blank = int(info.get("vocab_size", -1)), int(info.get("blank_id", -1))
        if vocab != model.ctc.ctc_lo.out_features or blank not in (-1, model.blank_id) \
                or info.get("code_groups") != frontend.groups:
            raise DataError(f"{path}: exported for a vocabulary of {vocab} (blank {blank}) and codes "
                            f"{info.get('code_groups')}, the model has {model.ctc.ctc_lo.out_features} (blank "
                            f"{model.blank_id}) and codes {frontend.groups}: not the same model")
        if tokenizer is not None:
            stream_tok, groups, self.tokenizer_path = StreamingTokenizer(tokenizer), tokenizer.code_groups, None
        elif tok_path is not None:
            stream_tok = OnnxStreamingTokenizer(tok_path, threads)
            groups, self.tokenizer_path = stream_tok.code_groups, tok_path
        else:
            raise DataError(f"{onnx_dir}: no tokenizer.onnx was exported; give the PyTorch tokenizer "
                            "(--tokenizer-model) or export it with the model")
        if groups != frontend.groups:
            raise DataError(f"the tokenizer's codes {groups} are not the codes the ASR model was trained on "
                            f"({frontend.kind} {frontend.groups}); give the tokenizer that made its training codes")
        self.onnx_path, self.onnx_info = path, info
        self.decoder_path = onnx_scorer(onnx_dir, info, int8, asr, threads, kwargs)  # None: PyTorch's decoder
        super().__init__(asr, info["chunk_ms"], info["left_chunks"],
                         make_encoder=lambda _chunk, _left: OnnxCodecEncoderStep(path, stream_tok, threads), **kwargs)

    @classmethod
    def from_files(cls, asr_train_config: str, asr_model_file: str, onnx_dir: str | Path,
                   tokenizer_model: str | None = None, tokenizer_config: str | None = None, int8: bool = False,
                   threads: int = 1, **kwargs) -> "OnnxCodecStreamer":
        """Load the token model and its export; the PyTorch tokenizer only if given or the export has none
        (then the one the model's code_info records)."""
        _, _, tok_path = read_codec_export(onnx_dir, int8)  # a missing export is reported before loading
        asr = load_asr(asr_train_config, asr_model_file, "cpu")
        tokenizer = None
        if tokenizer_model is not None or tok_path is None:
            tokenizer = load_code_tokenizer(asr, tokenizer_model, tokenizer_config)
        return cls(asr, onnx_dir, tokenizer, int8, threads, **kwargs)

