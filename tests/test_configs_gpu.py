"""GPU-sized configs (LibriSpeech base / large): they build, have the documented sizes, and the
ASR encoder has exactly the parameters of the Chunk SSL encoder it is fine-tuned from.

Models are built on the meta device (shapes only, no memory, no forward), so this stays fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import REPO

VOCAB = 5000  # LibriSpeech BPE units
LEVELS = "levels=[7,7,7,7,7,7,7,7]"  # the 6m FSQ preset: the SSL heads' sizes


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _asr(config: Path, tmp_path: Path):
    import chunkssl.espnet_glue  # noqa: F401
    from espnet2.tasks.asr import ASRTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", *[f"u{i}" for i in range(VOCAB - 3)], "<sos/eos>"]) + "\n")
    args = ASRTask.get_parser().parse_args(["--config", str(config), "--token_list", str(tokens),
                                            "--input_size", "80", "--normalize", "none"])
    with torch.device("meta"):
        return ASRTask.build_model(args)


def _ssl(config: Path):
    from chunkssl.ssl.task import ChunkSSLTask

    args = ChunkSSLTask.get_parser().parse_args(["--config", str(config), "--input_size", "80",
                                                 "--normalize", "none", "--model_conf", LEVELS])
    with torch.device("meta"):
        return ChunkSSLTask.build_model(args)


# (size, encoder parameters in millions: low, high; ASR total with 5000 units: low, high)
SIZES = [("base", (80, 100), (105, 125)), ("large", (290, 310), (350, 380))]


@pytest.mark.parametrize("size,encoder_m,asr_m", SIZES)
def test_gpu_config_sizes_and_ssl_encoder_fits_asr(size, encoder_m, asr_m, tmp_path):
    asr = _asr(REPO / f"conf/asr/chunk_conformer_{size}.yaml", tmp_path)
    ssl = _ssl(REPO / f"conf/ssl/chunk_conformer_{size}.yaml")
    enc = _count(asr.encoder) / 1e6
    assert encoder_m[0] <= enc <= encoder_m[1], f"{size}: encoder has {enc:.1f}M parameters"
    total = _count(asr) / 1e6
    assert asr_m[0] <= total <= asr_m[1], f"{size}: ASR model has {total:.1f}M parameters"
    # --init_param <ssl>:encoder:encoder needs the same names and shapes on both sides
    ssl_shapes = {k: tuple(v.shape) for k, v in ssl.encoder.state_dict().items()}
    asr_shapes = {k: tuple(v.shape) for k, v in asr.encoder.state_dict().items()}
    assert ssl_shapes == asr_shapes
    # the SSL model adds only its mask embedding and prediction heads
    assert 0 < _count(ssl) - _count(ssl.encoder) < 0.05 * _count(ssl.encoder)

