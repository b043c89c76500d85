"""ssl_train on ESPnet's trainer: trains, resumes, and 2 CPU processes (gloo) match one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

CONFIG = {
    "encoder": "chunk_conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 48, "num_blocks": 2,
                     "dropout_rate": 0.0, "cnn_module_kernel": 5},
    "model_conf": {"mask_prob": 0.2, "mask_length": 3, "eval_chunk_ms": 320,
                   "dynamic_chunk": {"chunk_sizes_ms": [160, 320], "full_context_prob": 0.2,
                                     "left_chunks": [-1, 2]}},
    "normalize": "global_mvn",
    "optim": "adam", "optim_conf": {"lr": 0.002},
    "batch_type": "sorted", "batch_size": 4, "num_workers": 0, "num_att_plot": 0,
    "seed": 3,
}


def _write_data(root: Path) -> None:
    """8 utterances: fbank-like float32 [T, 80] (kaldi ark), int16 codes [T//4, 3] (NPY ark)."""
    rng = np.random.default_rng(0)
    groups = [[4, 3], [5]]
    feats, codes = {}, {}
    for i in range(8):
        t = int(rng.integers(120, 260))
        c = np.stack([rng.integers(0, v, t // 4) for g in groups for v in g], -1).astype(np.int16)
        f = rng.normal(size=(t, 80)).astype(np.float32)
        f[: 4 * (t // 4), :3] += np.repeat(c, 4, axis=0)
        feats[f"utt{i}"], codes[f"utt{i}"] = f, c
    kaldiio.save_ark(str(root / "feats.ark"), feats, scp=str(root / "feats.scp"))
    kaldiio.save_ark(str(root / "codes.ark"), codes, scp=str(root / "codes.scp"), write_function="numpy")
    (root / "code_info.yaml").write_text(yaml.safe_dump({"levels": [4, 3, 5], "groups": groups}))
    (root / "speech_shape").write_text("".join(f"{k} {v.shape[0]},80\n" for k, v in feats.items()))
    every = np.concatenate(list(feats.values())).astype(np.float64)
    np.savez(root / "cmvn_stats.npz", count=np.array(len(every)), sum=every.sum(0),
             sum_square=(every ** 2).sum(0))
    (root / "conf.yaml").write_text(yaml.safe_dump(CONFIG))


def _args(root: Path, out: str, epochs: int) -> list[str]:
    data = []
    for split in ("train", "valid"):
        data += [f"--{split}_data_path_and_name_and_type", f"{root}/feats.scp,speech,kaldi_ark",
                 f"--{split}_data_path_and_name_and_type", f"{root}/codes.scp,codes,kaldiio_ark",
                 f"--{split}_shape_file", f"{root}/speech_shape"]
    return ["--config", f"{root}/conf.yaml", "--output_dir", str(root / out), "--ngpu", "0",
            "--max_epoch", str(epochs), "--normalize_conf", f"stats_file={root}/cmvn_stats.npz",
            "--code_info", f"{root}/code_info.yaml", *data]


def _run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


def _train_losses(exp: Path) -> dict[int, float]:
    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    return {epoch: s["train"]["loss"] for epoch, s in stats.items()}


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """One process: 1 epoch, then ``--resume`` to epoch 2."""
    import os

    root = tmp_path_factory.mktemp("ssl")
    _write_data(root)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])))
    train = [sys.executable, "-m", "chunkssl.bin.ssl_train"]
    _run(train + _args(root, "exp", 1), env)
    first = _train_losses(root / "exp")
    _run(train + _args(root, "exp", 2) + ["--resume", "true"], env)
    return root, env, first


def test_ssl_train_writes_checkpoints_and_resumes(single_run):
    root, _, first = single_run
    exp = root / "exp"
    losses = _train_losses(exp)
    assert sorted(losses) == [1, 2] and losses[1] == first[1]
    assert (exp / "2epoch.pth").exists() and any((exp / "tensorboard").iterdir())
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["model_conf"]["levels"] == [4, 3, 5] and config["model_conf"]["group_sizes"] == [2, 1]
    state = torch.load(exp / "2epoch.pth")
    # 8 utterances in batches of 4: the chunk draws continued across the resume
    assert int(state["chunk_sampler.num_draws"]) == 4
    assert any(k.startswith("encoder.encoders.0.conv_module") for k in state)


def test_two_gloo_processes_match_one_process(single_run):
    root, env, _ = single_run
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
           "--nproc_per_node", "2", "-m", "chunkssl.bin.ssl_train",
           *_args(root, "exp_ddp", 2), "--dist_backend", "gloo", "--multiprocessing_distributed", "false"]
    _run(cmd, env)
    single, ddp = _train_losses(root / "exp"), _train_losses(root / "exp_ddp")
    for epoch in (1, 2):
        assert ddp[epoch] == pytest.approx(single[epoch], rel=1e-4), (epoch, ddp, single)
