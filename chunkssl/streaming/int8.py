"""Dynamic int8 weights for CPU streaming: every ``nn.Linear`` becomes an int8-weight layer.

A 640 ms chunk is 16 rows, so the encoder's matmuls mostly stream weights through the cache: int8
weights are a quarter of float32's bytes. Activations stay float32 and are quantized per call
(PyTorch's dynamic quantization, fbgemm/x86 kernels, no ``torch.compile`` needed). Convolutions,
norms, attention scores and embeddings stay float32.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def quantize_linears_(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` by a dynamically quantized int8 one, in place."""
    from torch.ao.quantization import quantize_dynamic

    module.to(torch.float32)
    with warnings.catch_warnings():
        # eager-mode quantization is deprecated in favour of torchao, whose CPU path needs torch.compile
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)


def is_float_linear(layer: nn.Module) -> bool:
    """True for a float ``nn.Linear`` (a quantized one has ``weight()`` as a method, not a tensor)."""
    return isinstance(getattr(layer, "weight", None), torch.Tensor)
