"""Export the streaming encoder step of a trained chunk-conformer ASR model to ONNX, with explicit caches.

    python -m chunkssl.bin.export_onnx --asr_train_config exp/asr_x/config.yaml \\
        --asr_model_file exp/asr_x/valid.acc.best.pth --chunk-ms 640 --left-chunks 4 --out-dir exp/asr_x/onnx [--int8]

writes OUT_DIR/encoder.onnx (one full chunk of raw fbank + fixed-size caches in; encoder frames, CTC
log-probabilities and the updated caches out; inputs, outputs and sizes in
:mod:`chunkssl.deploy.onnx_export` and in the model metadata) and OUT_DIR/encoder.json (that metadata).
With --int8 also OUT_DIR/encoder.int8.onnx (MatMul weights int8, dynamic quantisation; recorded under
"int8" in encoder.json; :mod:`chunkssl.deploy.onnx_quantize`).
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
    p.add_argument("--out-dir", required=True, help="where encoder.onnx and encoder.json are written")
    p.add_argument("--int8", action="store_true",
                   help="also write encoder.int8.onnx (dynamic quantisation, int8 MatMul weights)")
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
    with atomic_open(out / "encoder.json") as f:
        json.dump(info, f, indent=1)
    print(f"{PROG}: wrote {out / 'encoder.onnx'} (chunk {meta['chunk_ms']} ms, {meta['left_chunks']} left chunks, "
          f"{meta['num_layers']} layers, key/value cache {meta['kv_cache_frames']} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
