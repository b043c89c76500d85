"""Number formats for inference: float32, bfloat16, or dynamic int8 weights for every ``nn.Linear``.

A 640 ms chunk is 16 rows, so the encoder's matmuls mostly stream weights through the cache: int8
weights are a quarter of float32's bytes. With int8, activations stay float32 and are quantized per
call (PyTorch's dynamic quantization, fbgemm/x86 kernels, no ``torch.compile`` needed); convolutions,
norms, attention scores and embeddings stay float32.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# by name (CLI --dtype); "int8" = torch.qint8: dynamic int8 weights, float activations
NUMBER_FORMATS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "int8": torch.qint8}


def quantize_linears_(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` by a dynamically quantized int8 one, in place."""
    from torch.ao.quantization import quantize_dynamic

    module.to(torch.float32)
    with warnings.catch_warnings():
        # eager-mode quantization is deprecated in favour of torchao, whose CPU path needs torch.compile
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)


def set_number_format_(model: nn.Module, dtype: torch.dtype) -> None:
    """Cast the ASR model's encoder, CTC and decoder to ``dtype`` in place (``torch.qint8``: int8 linears).

    Frontend and normalisation stay float32.
    """
    if dtype not in NUMBER_FORMATS.values():
        raise ValueError(f"dtype must be one of torch.float32, torch.bfloat16, torch.qint8, got {dtype}")
    for part in (model.encoder, model.ctc, getattr(model, "decoder", None)):
        if part is not None and dtype == torch.qint8:
            quantize_linears_(part)
        elif part is not None:
            part.to(dtype)


def is_float_linear(layer: nn.Module) -> bool:
    """True for a float ``nn.Linear`` (a quantized one has ``weight()`` as a method, not a tensor)."""
    return isinstance(getattr(layer, "weight", None), torch.Tensor)
