"""Export the streaming encoder step of a trained chunk-conformer ASR model to ONNX, with explicit caches.

    python -m chunkssl.bin.export_onnx --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.acc.best.pth --chunk-ms 640 --left-chunks 4 --out-dir exp/asr_x/onnx [--int8]

writes OUT_DIR/encoder.onnx (one full chunk of raw fbank + fixed-size caches in; encoder frames, CTC
log-probabilities and the updated caches out; inputs, outputs and sizes in
:mod:`chunkssl.deploy.onnx_export` and in the model metadata) and OUT_DIR/encoder.json (that metadata).
With --int8 also OUT_DIR/encoder.int8.onnx (MatMul weights int8, dynamic quantisation; recorded under
"int8" in encoder.json; :mod:`chunkssl.deploy.onnx_quantize`).
Models with an attention decoder (ESPnet's TransformerDecoder) also get OUT_DIR/decoder.onnx, the
teacher-forced decoder that scores a segment's n-best for rescoring (:mod:`chunkssl.deploy.onnx_decoder`),
recorded under "decoder" in encoder.json, and with --int8 OUT_DIR/decoder.int8.onnx (under
"decoder"/"int8"). CTC-only models (ctc_weight 1.0, no decoder) get the encoder only. A decoder the
graph cannot express (not a TransformerDecoder) is refused before anything is written; --encoder-only
exports the encoder alone (OnnxStreamer then rescores with the model's PyTorch decoder).
Options the fixed-shape graph cannot express (unlimited left context, --left-chunks -1) are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chunkssl.fileio import DataError, atomic_open, run_cli

PROG = "export_onnx"


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--asr_train_config", required=True, help="config.yaml of the asr_train run")
    p.add_argument("--asr_model_file", required=True, help="model weights (.pth) of the asr_train run")
    p.add_argument("--chunk-ms", type=int, default=640, help="chunk duration, a multiple of 40 ms")
    p.add_argument("--left-chunks", type=int, default=4,
                   help="previous chunks each chunk attends to (>= 1; -1, unlimited, cannot be exported)")
    p.add_argument("--out-dir", required=True,
                   help="where encoder.onnx, encoder.json (and decoder.onnx for attention models) are written")
    p.add_argument("--int8", action="store_true",
                   help="also write encoder.int8.onnx and decoder.int8.onnx (dynamic quantisation, int8 MatMul "
                        "weights)")
    p.add_argument("--encoder-only", action="store_true",
                   help="do not export the attention decoder (rescoring then stays in PyTorch)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    from chunkssl.deploy.onnx_export import export_encoder_step, check_options

    check_options(args.chunk_ms, args.left_chunks)  # refuse bad options before loading the model
    for name in ("asr_train_config", "asr_model_file"):
        if not Path(getattr(args, name)).is_file():
            raise DataError(f"--{name} {getattr(args, name)}: no such file")
    from chunkssl.asr.model import load_asr

    asr = load_asr(args.asr_train_config, args.asr_model_file, "cpu")
    with_decoder = not args.encoder_only and getattr(asr.model, "decoder", None) is not None
    if with_decoder:  # refused here, before any file is written, rather than found missing at run time
        from chunkssl.deploy.onnx_decoder import check_decoder
        from chunkssl.deploy.onnx_export import ExportRefused

        try:
            check_decoder(asr.model)
        except ExportRefused as exc:
            raise ExportRefused(f"{exc}; pass --encoder-only to export the encoder alone (the model's PyTorch "
                                "decoder then rescores)") from None
    out = Path(args.out_dir)
    meta = export_encoder_step(asr.model, out / "encoder.onnx", args.chunk_ms, args.left_chunks)
    info: dict = {**meta, **{k: json.loads(meta[k]) for k in ("inputs", "outputs", "shapes")}}
    if args.int8:
        from chunkssl.deploy.onnx_quantize import INT8_NAME, quantize_encoder

        info["int8"] = quantize_encoder(out / "encoder.onnx", out / INT8_NAME)
        print(f"{PROG}: wrote {out / INT8_NAME} ({info['int8']['bytes']} bytes, float32 "
              f"{info['int8']['float32_bytes']})")
    elif (out / "encoder.int8.onnx").exists():  # a stale int8 file of an earlier export would not match
        (out / "encoder.int8.onnx").unlink()
    decoder, note = _export_decoder(asr.model, out, args.int8, with_decoder)
    if decoder is not None:
        info["decoder"] = decoder
    with atomic_open(out / "encoder.json") as f:
        json.dump(info, f, indent=1)
    print(f"{PROG}: wrote {out / 'encoder.onnx'} (chunk {meta['chunk_ms']} ms, {meta['left_chunks']} left chunks, "
          f"{meta['num_layers']} layers, key/value cache {meta['kv_cache_frames']} frames)")
    print(f"{PROG}: {note}")
    return 0


def _export_decoder(model, out: Path, int8: bool, wanted: bool) -> tuple[dict | None, str]:
    """Write decoder.onnx (+ decoder.int8.onnx) if ``wanted`` (decoder already checked); ``(record, message)``."""
    from chunkssl.deploy.onnx_decoder import DECODER_INT8_NAME, DECODER_NAME, export_decoder

    record = None
    if getattr(model, "decoder", None) is None:
        note = "no attention decoder (CTC-only model): encoder only"
    elif not wanted:
        note = "--encoder-only: decoder not exported (rescoring stays in PyTorch)"
    else:
        meta = export_decoder(model, out / DECODER_NAME)
        record = {"file": DECODER_NAME, **meta, **{k: json.loads(meta[k]) for k in ("inputs", "outputs", "shapes")}}
        note = (f"wrote {out / DECODER_NAME} (attention rescoring: {meta['num_layers']} layers, "
                f"vocabulary {meta['vocab_size']})")
        if int8:
            from chunkssl.deploy.onnx_quantize import quantize_model

            record["int8"] = quantize_model(out / DECODER_NAME, out / DECODER_INT8_NAME)
            note += (f"; wrote {out / DECODER_INT8_NAME} ({record['int8']['bytes']} bytes, float32 "
                     f"{record['int8']['float32_bytes']})")
    # decoder files of an earlier export that this one did not rewrite would not match the new encoder
    stale = [DECODER_NAME, DECODER_INT8_NAME] if record is None else [] if int8 else [DECODER_INT8_NAME]
    for name in stale:
        (out / name).unlink(missing_ok=True)
    return record, note


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
