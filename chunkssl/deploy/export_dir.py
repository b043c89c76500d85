"""One export directory of a trained ASR model: ``encoder.onnx``, ``decoder.onnx``, int8 copies, ``encoder.json``
(and ``tokenizer.onnx`` for Codec-ASR token models).

:func:`export_asr_dir` is what ``python -m chunkssl.bin.export_onnx`` does once the model is loaded,
as a function (benchmarks and tests export models they built in memory). Everything the graphs
cannot express is refused before the first file is written; files of an earlier export that this one
does not rewrite are removed, since they would not match the new graphs. ``encoder.json`` is written
last, so a directory whose ``encoder.json`` exists holds a complete export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from torch import nn

from chunkssl.deploy.onnx_codec import export_token_model
from chunkssl.deploy.onnx_decoder import DECODER_INT8_NAME, DECODER_NAME, check_decoder, export_decoder
from chunkssl.deploy.onnx_export import ExportRefused, check_options, export_encoder_step
from chunkssl.deploy.onnx_quantize import INT8_NAME, quantize_encoder, quantize_model
from chunkssl.deploy.onnx_tokenizer import TOKENIZER_NAME
from chunkssl.fileio import atomic_open
from chunkssl.fsq.frontend import TokenFrontend
from chunkssl.fsq.tokenizer import FSQTokenizer

__all__ = ["export_asr_dir"]


def _record(meta: dict[str, str]) -> dict:
    """Metadata as written in encoder.json: the JSON-valued entries decoded."""
    return {**meta, **{k: json.loads(meta[k]) for k in ("inputs", "outputs", "shapes")}}


def export_asr_dir(model: nn.Module, out_dir: str | Path, chunk_ms: int, left_chunks: int, int8: bool = False,
                   encoder_only: bool = False, log: Callable[[str], None] = print,
                   tokenizer: FSQTokenizer | None = None) -> dict:
    """Export ``model``'s streaming encoder step (and its attention decoder) into ``out_dir``; returns encoder.json.

    A Codec-ASR token model's step takes codes; with ``tokenizer`` (the FSQ/RVQ tokenizer of its training
    codes) ``tokenizer.onnx`` turns fbank into those codes, without it the streamer needs the PyTorch one.
    """
    check_options(chunk_ms, left_chunks)
    with_decoder = not encoder_only and getattr(model, "decoder", None) is not None
    if with_decoder:  # refused here, before any file is written, rather than found missing at run time
        try:
            check_decoder(model)
        except ExportRefused as exc:
            raise ExportRefused(f"{exc}; pass --encoder-only to export the encoder alone (the model's PyTorch "
                                "decoder then rescores)") from None
    out = Path(out_dir)
    (out / "encoder.json").unlink(missing_ok=True)  # the directory is incomplete until the end
    token_model = isinstance(getattr(model, "frontend", None), TokenFrontend)
    if token_model:  # checks the tokenizer against the model before writing
        info = export_token_model(model, out, chunk_ms, left_chunks, tokenizer)
        meta = info
    else:
        meta = export_encoder_step(model, out / "encoder.onnx", chunk_ms, left_chunks)
        info = _record(meta)
    log(f"wrote {out / 'encoder.onnx'} (chunk {meta['chunk_ms']} ms, {meta['left_chunks']} left chunks, "
        f"{meta['num_layers']} layers, key/value cache {meta['kv_cache_frames']} frames)")
    if token_model:
        log(f"wrote {out / TOKENIZER_NAME} (codes of the FSQ/RVQ tokenizer)" if info.get("tokenizer") else
            "no tokenizer given: the token model's streamer will run the PyTorch tokenizer")
    if int8:
        info["int8"] = quantize_encoder(out / "encoder.onnx", out / INT8_NAME)
        log(f"wrote {out / INT8_NAME} ({info['int8']['bytes']} bytes, float32 {info['int8']['float32_bytes']})")
    if with_decoder:
        info["decoder"] = {"file": DECODER_NAME, **_record(export_decoder(model, out / DECODER_NAME))}
        log(f"wrote {out / DECODER_NAME} (attention rescoring: {info['decoder']['num_layers']} layers, "
            f"vocabulary {info['decoder']['vocab_size']})")
        if int8:
            info["decoder"]["int8"] = quantize_model(out / DECODER_NAME, out / DECODER_INT8_NAME)
            log(f"wrote {out / DECODER_INT8_NAME} ({info['decoder']['int8']['bytes']} bytes)")
    elif getattr(model, "decoder", None) is None:
        log("no attention decoder (CTC-only model): encoder only")
    else:
        log("--encoder-only: decoder not exported (rescoring stays in PyTorch)")
    written = {"encoder.onnx", *([TOKENIZER_NAME] if token_model and info.get("tokenizer") else []), *([INT8_NAME] if int8 else []),
               *([DECODER_NAME] if with_decoder else []), *([DECODER_INT8_NAME] if with_decoder and int8 else [])}
    for name in (INT8_NAME, DECODER_NAME, DECODER_INT8_NAME, TOKENIZER_NAME):
        if name not in written:
            (out / name).unlink(missing_ok=True)
    with atomic_open(out / "encoder.json") as f:
        json.dump(info, f, indent=1)
    return info
