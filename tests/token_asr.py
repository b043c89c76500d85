"""A small Codec-ASR token model and its FSQ/RVQ tokenizer, untrained, saved as training runs save them.

FSQ codes (levels 8, 5, 5, 5) or RVQ codes (2 codebooks of 16) from a conv tokenizer whose CMVN is that
of speech-like audio (voiced syllables with formants, noise bursts, pauses); a token frontend, a
linear input layer, a two-layer chunk conformer with CTC and an attention decoder. Used by
tests/test_onnx_codec.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from chunkssl.features import fbank
from chunkssl.fsq.tokenizer import FSQTokenizer

SR = 16000


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Float32 audio at 16 kHz: voiced syllables (gliding harmonics through random formants), noise bursts, pauses."""
    rng = np.random.default_rng(seed)
    out, n = [], int(seconds * SR)
    while sum(map(len, out)) < n:
        dur = int(rng.uniform(0.08, 0.3) * SR)
        t = np.arange(dur) / SR
        kind = rng.choice(["voiced", "noise", "pause"], p=[0.6, 0.2, 0.2])
        if kind == "voiced":
            f0 = rng.uniform(90, 240) * (1 + rng.uniform(-0.2, 0.2) * t / t[-1])
            phase = 2 * np.pi * np.cumsum(f0) / SR
            formants = rng.uniform([300, 900, 2200], [900, 2200, 3500])
            seg = sum(np.exp(-((k * f0 - formants[:, None]) / 150.0) ** 2).sum(0) * np.sin(k * phase)
                      for k in range(1, 30))
        elif kind == "noise":
            seg = np.convolve(rng.normal(size=dur), rng.normal(size=8), "same") * 0.3
        else:
            seg = np.zeros(dur)
        out.append(seg * np.hanning(dur) * rng.uniform(0.05, 0.3))
    wave = np.concatenate(out)[:n] + rng.normal(size=n) * 1e-3
    return wave.astype(np.float32)


def speech_like_fbank(seconds: float, seed: int) -> torch.Tensor:
    """Fbank frames ``[T, 80]`` of :func:`speech_like` audio."""
    return fbank(speech_like(seconds, seed), SR)


def make_tokenizer(kind: str) -> FSQTokenizer:
    """An untrained FSQ (or k-means initialised RVQ) tokenizer whose CMVN is that of the speech-like fbank."""
    torch.manual_seed(0)
    if kind == "rvq":
        tok = FSQTokenizer(quantizer="rvq", rvq_conf=dict(num_codebooks=2, codebook_size=16, dim=4), hidden=16,
                           num_blocks=2, kernel_size=3)
    else:
        tok = FSQTokenizer(levels=[[8, 5, 5, 5]], hidden=16, num_blocks=2, kernel_size=3)
    feats = torch.cat([speech_like_fbank(3.0, seed) for seed in range(3)])
    with torch.no_grad():
        tok.cmvn.mean.copy_(feats.mean(0))
        tok.cmvn.std.copy_(feats.std(0))
    if kind == "rvq":
        tok.train()
        tok(feats[None, :1200], torch.tensor([1200]))  # k-means on real-ish frames
    return tok.eval()


def save_token_asr(root: Path, tok: FSQTokenizer, **frontend_conf) -> dict:
    """A token ASR model and its tokenizer saved as training runs save them (config.yaml + weights)."""
    from espnet2.tasks.asr import ASRTask

    from chunkssl.asr.model import load_asr

    import chunkssl.espnet_glue  # noqa: F401  (chunk_conformer, the token frontend)

    root.mkdir(parents=True, exist_ok=True)
    (root / "tok_config.yaml").write_text(yaml.safe_dump({"model_conf": dict(
        levels=[[8, 5, 5, 5]], hidden=16, num_blocks=2, kernel_size=3, quantizer=tok.quantizer_type,
        rvq_conf=dict(num_codebooks=2, codebook_size=16, dim=4) if tok.quantizer_type == "rvq" else None)}))
    torch.save(tok.state_dict(), root / "tok.pth")
    info = dict(tokenizer=tok.quantizer_type, groups=tok.code_groups, levels=tok.code_levels, frame_shift_ms=40,
                model_file=str(root / "tok.pth"), config_file=str(root / "tok_config.yaml"))
    (root / "code_info.yaml").write_text(yaml.safe_dump(info))
    (root / "tokens.txt").write_text("<blank>\n<unk>\na\nb\nc\nd\ne\nf\n<sos/eos>\n")
    argv = ["--token_list", str(root / "tokens.txt"), "--token_type", "char", "--frontend", "token",
            "--frontend_conf", f"code_info={root / 'code_info.yaml'}", "--normalize", "none",
            "--encoder", "chunk_conformer", "--decoder", "transformer"]
    for key, value in {"embed_dim": 16, "init": "random", **frontend_conf}.items():
        argv += ["--frontend_conf", f"{key}={value}"]
    for opt in ("output_size=32", "attention_heads=2", "linear_units=32", "num_blocks=2", "cnn_module_kernel=5",
                "input_layer=linear"):
        argv += ["--encoder_conf", opt]
    for opt in ("attention_heads=2", "linear_units=32", "num_blocks=1"):
        argv += ["--decoder_conf", opt]
    args = ASRTask.get_parser().parse_args(argv)
    torch.manual_seed(1)
    model = ASRTask.build_model(args)
    with torch.no_grad():  # a random CTC is blank-heavy: fewer blanks give the search more to compare
        model.ctc.ctc_lo.bias[0] -= 1.0
    (root / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), root / "asr.pth")
    asr = load_asr(root / "config.yaml", root / "asr.pth")
    return {"asr": asr, "tok": tok, "config": root / "config.yaml", "model": root / "asr.pth", "root": root}
