"""Int8 dynamic quantisation of an exported graph (``encoder.onnx`` -> ``encoder.int8.onnx``, the same
for ``decoder.onnx`` -> ``decoder.int8.onnx``).

Weights of the ``MatMul`` nodes become int8 (:func:`onnxruntime.quantization.quantize_dynamic`,
``QInt8``); activations are quantised on the fly, so the inputs, outputs and caches stay float32 and
:class:`~chunkssl.deploy.onnx_encoder.OnnxStreamingEncoder` (or
:class:`~chunkssl.deploy.onnx_decoder.OnnxDecoder`) runs either file. The graph's metadata is copied
into the quantised model with ``quantization`` set.
"""

from __future__ import annotations

from pathlib import Path

from chunkssl.fileio import DataError

__all__ = ["INT8_NAME", "QUANT_OPS", "quantize_encoder", "quantize_model"]

INT8_NAME = "encoder.int8.onnx"
QUANT_OPS = ["MatMul"]


def quantize_model(src: str | Path, dst: str | Path) -> dict[str, object]:
    """Write the int8 (MatMul weights, dynamic) version of the ONNX model ``src`` to ``dst``; returns what to record."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise DataError(f"{src}: no such file to quantise")
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=QUANT_OPS)
        proto = onnx.load(str(tmp))
        meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
        meta["quantization"] = "dynamic_int8_matmul_weights"
        del proto.metadata_props[:]
        onnx.helper.set_model_props(proto, meta)
        onnx.save(proto, str(tmp))
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": dst.name, "method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8",
            "op_types": list(QUANT_OPS), "bytes": dst.stat().st_size, "float32_bytes": src.stat().st_size}


def quantize_encoder(src: str | Path, dst: str | Path) -> dict[str, object]:
    """Write the int8 version of the encoder step ``src`` to ``dst`` (:func:`quantize_model`)."""
    return quantize_model(src, dst)
