"""The smallest trained ASR model of the tests: tone "words" and a few-thousand-parameter chunk conformer.

Each letter is a tone of its own pitch (about 0.1-0.2 s) with short pauses, so the model learns them in
a few epochs on one CPU thread and emits real, varied tokens. Used by the streaming tests (a session
fixture in conftest.py) and by ``bench/long_audio.py``, which trains its own copy.
"""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import soundfile as sf
import torch
import yaml

from chunkssl.features import CmvnStats, fbank

SR = 16000
LETTERS = "abcdef"
CONFIG = {
    "encoder": "chunk_conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2,
                     "dropout_rate": 0.0, "cnn_module_kernel": 5,
                     "dynamic_chunk": {"chunk_sizes_ms": [160, 320], "full_context_prob": 0.3,
                                       "left_chunks": [-1, 2]}},
    "decoder": "transformer",
    "decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1, "dropout_rate": 0.0},
    "normalize": "global_mvn",
    "model_conf": {"ctc_weight": 0.5, "lsm_weight": 0.0, "report_cer": False, "report_wer": False},
    "optim": "adam", "optim_conf": {"lr": 0.005},
    "batch_type": "sorted", "batch_size": 8, "num_workers": 0, "num_att_plot": 0, "seed": 1,
    "use_matplotlib": False, "use_tensorboard": False,  # plotting costs more than training here
    "token_type": "char", "best_model_criterion": [["valid", "loss", "min"]], "keep_nbest_models": 1,
}


def _utterance(rng: np.random.Generator, text: str) -> np.ndarray:
    pieces = [np.zeros(int(rng.integers(800, 3200)), dtype=np.float32)]
    for ch in text:
        n = int(rng.integers(1600, 3200))
        freq = 300.0 * (1 + LETTERS.index(ch))
        t = np.arange(n) / SR
        pieces.append((0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(n)).astype(np.float32))
        pieces.append(np.zeros(int(rng.integers(400, 1600)), dtype=np.float32))
    wave = np.concatenate(pieces)
    return wave + rng.normal(0, 0.003, wave.size).astype(np.float32)


def make_data(root: Path, n_utts: int = 48, seed: int = 0) -> dict[str, str]:
    """Write wav.scp, text, feats.scp/ark, speech_shape, cmvn_stats.npz and tokens.txt under ``root``."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    texts, feats, stats = {}, {}, CmvnStats(80)
    for i in range(n_utts):
        utt = f"utt{i:03d}"
        text = "".join(rng.choice(list(LETTERS), size=int(rng.integers(2, 6))))
        wave = _utterance(rng, text)
        sf.write(root / "wav" / f"{utt}.wav", wave, SR, subtype="FLOAT")
        texts[utt] = text
        feats[utt] = fbank(wave, SR).numpy()
        stats.add(feats[utt])
    kaldiio.save_ark(str(root / "feats.ark"), feats, scp=str(root / "feats.scp"))
    stats.save_npz(root / "cmvn_stats.npz")
    (root / "wav.scp").write_text("".join(f"{u} {root}/wav/{u}.wav\n" for u in texts))
    (root / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    (root / "speech_shape").write_text("".join(f"{u} {f.shape[0]},80\n" for u, f in feats.items()))
    (root / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", *LETTERS, "<sos/eos>"]) + "\n")
    (root / "conf.yaml").write_text(yaml.safe_dump(CONFIG))
    return texts


def train_args(root: Path, out: Path, epochs: int) -> list[str]:
    """asr_train arguments for the data under ``root``."""
    data = []
    for split in ("train", "valid"):
        data += [f"--{split}_data_path_and_name_and_type", f"{root}/feats.scp,speech,kaldi_ark",
                 f"--{split}_data_path_and_name_and_type", f"{root}/text,text,text",
                 f"--{split}_shape_file", f"{root}/speech_shape"]
    return ["--config", f"{root}/conf.yaml", "--output_dir", str(out), "--ngpu", "0", "--max_epoch", str(epochs),
            "--input_size", "80", "--normalize_conf", f"stats_file={root}/cmvn_stats.npz",
            "--token_list", f"{root}/tokens.txt", *data]


def train_tiny_asr(root: Path, epochs: int = 10) -> dict:
    """Make the data under ``root/data`` and train the model into ``root/exp`` in this process, one thread.

    Returns the paths (``root``, ``data``, ``config``, ``model``) and the reference ``texts``.
    """
    from chunkssl.bin import asr_train

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    texts = make_data(data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        asr_train.main(train_args(data, root / "exp", epochs))  # in-process: the ESPnet import is paid once
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "data": data, "texts": texts, "config": root / "exp" / "config.yaml",
            "model": root / "exp" / "valid.loss.best.pth"}
