"""Streaming ASR with the exported encoder step in onnxruntime: :class:`OnnxStreamer`.

    streamer = OnnxStreamer.from_files("exp/asr/config.yaml", "exp/asr/valid.acc.best.pth", "exp/asr/onnx")
    for piece in pieces:
        for event in streamer.accept(piece):
            print(event.type, event.text)
    final = streamer.finalize()

Same API, events and results as :class:`~chunkssl.streaming.streamer.Streamer` (it is one, with its
encoder replaced): the incremental fbank, the CTC prefix beam search, segmentation and events are
Streamer's own code; the global MVN, the chunk encoder and the CTC log-softmax run in
``encoder.onnx`` (or ``encoder.int8.onnx``) through
:class:`~chunkssl.deploy.onnx_encoder.OnnxStreamingEncoder`. The chunk size and left chunks come
from ``encoder.json``.

Attention rescoring of each segment's n-best runs ``decoder.onnx`` (``decoder.int8.onnx`` with
``int8=True``, if exported) through :class:`~chunkssl.deploy.onnx_decoder.OnnxDecoder` when
``encoder.json`` records one (``"decoder"``); exports without it (CTC-only models, exports made before
the decoder was exported, decoders the export refuses) rescore with the model's PyTorch decoder as the
plain Streamer does. The model is still loaded in PyTorch: its token list makes the text.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from chunkssl.asr.model import LoadedASR, load_asr
from chunkssl.deploy.onnx_decoder import OnnxDecoder
from chunkssl.deploy.onnx_encoder import OnnxStreamingEncoder
from chunkssl.fileio import DataError
from chunkssl.streaming.streamer import Streamer

__all__ = ["onnx_scorer", "export_chunking", "OnnxEncoderStep", "OnnxStreamer", "read_encoder_json", "decoder_path"]


def read_encoder_json(onnx_dir: str | Path, int8: bool = False) -> tuple[Path, dict]:
    """``(path of the encoder .onnx to run, encoder.json)`` of an export_onnx output directory."""
    onnx_dir = Path(onnx_dir)
    info_path = onnx_dir / "encoder.json"
    if not info_path.is_file():
        raise DataError(f"{info_path}: no such file (write it with python -m chunkssl.bin.export_onnx)")
    try:
        info = json.loads(info_path.read_text())
        chunk_ms, left = int(info["chunk_ms"]), int(info["left_chunks"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{info_path}: not an encoder.json of chunkssl.bin.export_onnx ({exc!r})") from None
    info["chunk_ms"], info["left_chunks"] = chunk_ms, left
    if int8:
        if "int8" not in info:
            raise DataError(f"{info_path}: no int8 model recorded; export with python -m chunkssl.bin.export_onnx "
                            "--int8")
        path = onnx_dir / info["int8"]["file"]
    else:
        path = onnx_dir / "encoder.onnx"
    if not path.is_file():
        raise DataError(f"{path}: no such file (named by {info_path})")
    return path, info


def decoder_path(onnx_dir: str | Path, info: dict, int8: bool = False) -> Path | None:
    """The ``decoder.onnx`` (``int8``: its int8 version, if exported) that ``encoder.json`` records, or None."""
    record = info.get("decoder")
    if not record:
        return None
    info_path = Path(onnx_dir) / "encoder.json"
    try:
        name = record["int8"]["file"] if int8 and record.get("int8") else record["file"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{info_path}: its \"decoder\" is not a record of chunkssl.bin.export_onnx ({exc!r}); "
                        "export again") from None
    path = Path(onnx_dir) / name
    if not path.is_file():
        raise DataError(f"{path}: no such file (named by {info_path}); export again with "
                        "python -m chunkssl.bin.export_onnx")
    return path


class OnnxEncoderStep:
    """The encoder a :class:`Streamer` is given: raw fbank in, ``(encoder frames, CTC log-probs)`` out (torch)."""

    takes_raw_fbank = True

    def __init__(self, path: str | Path, threads: int = 1):
        self.onnx = OnnxStreamingEncoder(path, threads)

    def reset(self) -> None:
        """Forget the stream."""
        self.onnx.reset()

    def fbank_frames_needed(self) -> int:
        """More fbank frames before the next full chunk."""
        return self.onnx.fbank_frames_needed()

    def accept(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw fbank frames ``[n, F]`` in; encoder frames and CTC log-probs of the chunks now complete out."""
        enc, logp = self.onnx.accept(feats.detach().cpu().numpy())
        return torch.from_numpy(enc), torch.from_numpy(logp)

    def finalize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The shorter last chunk."""
        enc, logp = self.onnx.finalize()
        return torch.from_numpy(enc), torch.from_numpy(logp)


class OnnxStreamer(Streamer):
    """A :class:`Streamer` whose encoder step (MVN, encoder, CTC) is the exported ONNX graph.

    Args:
        asr: the loaded model the export was made from (its token list makes text; its decoder rescores
            when the export has no ``decoder.onnx``).
        onnx_dir: output directory of ``chunkssl.bin.export_onnx`` (``encoder.onnx``, ``encoder.json``,
            ``decoder.onnx`` if exported).
        int8: run ``encoder.int8.onnx`` (export with ``--int8``) instead of the float32 graph, and
            ``decoder.int8.onnx`` if it was exported.
        threads: onnxruntime intra-op threads.
        **kwargs: Streamer's search, rescoring and segmentation options (not ``chunk_ms``/``left_chunks``,
            which are the export's, nor ``dtype``/``make_encoder``).
    """

    def __init__(self, asr: LoadedASR, onnx_dir: str | Path, int8: bool = False, threads: int = 1, **kwargs):
        for name in ("chunk_ms", "left_chunks", "dtype", "make_encoder"):
            if name in kwargs:
                raise TypeError(f"OnnxStreamer takes no {name!r}: the chunking is fixed by {onnx_dir}/encoder.json")
        path, info = read_encoder_json(onnx_dir, int8)
        model = asr.model
        vocab, blank = int(info.get("vocab_size", -1)), int(info.get("blank_id", -1))
        if vocab != model.ctc.ctc_lo.out_features or blank not in (-1, model.blank_id):
            raise DataError(f"{path}: exported for a vocabulary of {vocab} (blank {blank}), the model has "
                            f"{model.ctc.ctc_lo.out_features} (blank {model.blank_id}): not the same model")
        self.onnx_path, self.onnx_info = path, info
        self.decoder_path = onnx_scorer(onnx_dir, info, int8, asr, threads, kwargs)  # None: PyTorch's decoder
        super().__init__(asr, info["chunk_ms"], info["left_chunks"],
                         make_encoder=lambda _chunk, _left: OnnxEncoderStep(path, threads), **kwargs)

    @classmethod
    def from_files(cls, asr_train_config: str, asr_model_file: str, onnx_dir: str | Path, int8: bool = False,
                   threads: int = 1, **kwargs) -> "OnnxStreamer":
        """Load ``config.yaml`` + ``.pth`` of the ``asr_train`` run (for rescoring) and its export in ``onnx_dir``."""
        _, info = read_encoder_json(onnx_dir, int8)  # a missing export is reported before the model is loaded
        decoder_path(onnx_dir, info, int8)
        return cls(load_asr(asr_train_config, asr_model_file, "cpu"), onnx_dir, int8, threads, **kwargs)


def onnx_scorer(onnx_dir: str | Path, info: dict, int8: bool, asr: LoadedASR, threads: int,
                kwargs: dict) -> Path | None:
    """Put the export's ONNX decoder into Streamer ``kwargs`` as its attention scorer; returns its path.

    None (the model's PyTorch decoder rescores) when rescoring is off, a scorer is already given, or the
    export has no decoder. The decoder is checked against the model's vocabulary and ``<sos>``/``<eos>``.
    """
    if not kwargs.get("rescore", True) or kwargs.get("attention_scorer") is not None:
        return None
    path = decoder_path(onnx_dir, info, int8)
    if path is None:
        return None
    scorer, model = OnnxDecoder(path, threads), asr.model
    vocab = len(asr.token_list)
    if (scorer.vocab_size, scorer.sos, scorer.eos) != (vocab, model.sos, model.eos):
        raise DataError(f"{path}: exported for a vocabulary of {scorer.vocab_size} (sos {scorer.sos}, eos "
                        f"{scorer.eos}), the model has {vocab} (sos {model.sos}, eos {model.eos}): not the same "
                        "model; export it again")
    kwargs["attention_scorer"] = scorer
    return path


def export_chunking(args, info: dict, onnx_dir: str | Path) -> None:
    """Set ``args.chunk_ms``/``args.left_chunks`` (CLI options, None if not given) to the export's; refuse others."""
    for opt, name in (("--chunk-ms", "chunk_ms"), ("--left-chunks", "left_chunks")):
        given = getattr(args, name)
        if given is not None and int(given) != info[name]:
            raise DataError(f"{opt} {given} does not match the exported encoder ({onnx_dir}/encoder.json: {name} "
                            f"{info[name]}); the ONNX step is fixed at export: leave {opt} out or re-export")
        setattr(args, name, info[name])
