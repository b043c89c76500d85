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
Codec-ASR token models (encoder input_layer linear): the step takes codes, and OUT_DIR/tokenizer.onnx
computes them from fbank (the FSQ/RVQ tokenizer of --tokenizer-model, default the one the model's
code_info records; :mod:`chunkssl.deploy.onnx_codec`); stream them with
python -m chunkssl.bin.codec_asr_inference_streaming --backend onnx --onnx-dir OUT_DIR.
Options the fixed-shape graph cannot express (unlimited left context, --left-chunks -1) are refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chunkssl.fileio import DataError, run_cli

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
    p.add_argument("--tokenizer-model", default=None,
                   help="Codec-ASR token models: the FSQ/RVQ tokenizer (.pth) of the training codes, exported as "
                        "tokenizer.onnx (default: the one the model's code_info records)")
    p.add_argument("--tokenizer-config", default=None, help="its config.yaml (default: beside the .pth)")
    p.add_argument("--encoder-only", action="store_true",
                   help="do not export the attention decoder (rescoring then stays in PyTorch)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    from chunkssl.deploy.onnx_export import check_options

    check_options(args.chunk_ms, args.left_chunks)  # refuse bad options before loading the model
    for name in ("asr_train_config", "asr_model_file"):
        if not Path(getattr(args, name)).is_file():
            raise DataError(f"--{name} {getattr(args, name)}: no such file")
    from chunkssl.asr.model import load_asr
    from chunkssl.deploy.export_dir import export_asr_dir

    asr = load_asr(args.asr_train_config, args.asr_model_file, "cpu")
    tokenizer = None
    if getattr(asr.model.encoder, "input_layer", "conv2d") == "linear":  # a token model: its tokenizer too
        from chunkssl.codec.streaming import load_code_tokenizer

        tokenizer = load_code_tokenizer(asr, args.tokenizer_model, args.tokenizer_config)
    elif args.tokenizer_model:
        raise DataError(f"--tokenizer-model {args.tokenizer_model}: {args.asr_model_file} is an fbank model, "
                        "not a Codec-ASR token model; leave the option out")
    export_asr_dir(asr.model, args.out_dir, args.chunk_ms, args.left_chunks, args.int8, args.encoder_only,
                   log=lambda line: print(f"{PROG}: {line}"), tokenizer=tokenizer)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
