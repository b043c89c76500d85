"""Load a trained ESPnet ASR model with the chunk conformer, and turn token ids into text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from chunkssl.chunking import FRAME_MS, chunk_frames  # noqa: F401  (the chunk rule lives in chunking)
from chunkssl.frontend import drop_fbank_frontend


@dataclass
class LoadedASR:
    """The ESPnet model and what decoding needs from its training config."""

    model: torch.nn.Module
    token_list: list[str]
    tokenizer: object | None
    converter: object
    train_args: object

    def text(self, token_ids) -> str:
        """Text of a token-id sequence (sentencepiece or chars joined back)."""
        tokens = self.converter.ids2tokens([int(t) for t in token_ids])
        if self.tokenizer is None:
            return " ".join(tokens)
        return self.tokenizer.tokens2text(tokens)

    def tokens(self, token_ids) -> list[str]:
        """Token strings of a token-id sequence."""
        return self.converter.ids2tokens([int(t) for t in token_ids])


def load_asr(asr_train_config: str | Path, asr_model_file: str | Path, device: str = "cpu") -> LoadedASR:
    """Build the model from its training config and load its weights strictly (eval mode)."""
    import chunkssl.espnet_glue  # noqa: F401  (registers chunk_conformer before the model is built)
    from espnet2.tasks.asr import ASRTask
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    from chunkssl.checkpoint import build_from_files

    model, args = build_from_files(ASRTask, asr_train_config, asr_model_file, device)
    drop_fbank_frontend(model)  # trained on raw audio or not, decoding feeds fbank
    token_type = getattr(args, "token_type", None)
    if token_type == "bpe" and getattr(args, "bpemodel", None):
        tokenizer = build_tokenizer(token_type="bpe", bpemodel=args.bpemodel)
    elif token_type is not None:
        tokenizer = build_tokenizer(token_type=token_type)
    else:
        tokenizer = None
    return LoadedASR(model, list(model.token_list), tokenizer, TokenIDConverter(token_list=list(model.token_list)),
                     args)


@torch.no_grad()
def normalize_feats(model: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Apply the model's feature normalisation (e.g. global MVN) to fbank frames ``[n, F]``."""
    if model.normalize is None or feats.shape[0] == 0:
        return feats
    device = next(model.parameters()).device
    # a copy: ESPnet's GlobalMVN normalises in place, and .float()/.to() return the caller's tensor as is
    batch = feats[None].to(device=device, dtype=torch.float32, copy=True)
    out, _ = model.normalize(batch, torch.tensor([feats.shape[0]], device=device))
    return out[0]
