"""Saved models rebuild from their own config.yaml in a fresh process, from any working directory,
after their recipe folder has moved (relative paths in the config are resolved from the config's folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, single_thread

# Builds a saved model strictly in a fresh process and prints its parameter count.
REBUILD = """
import sys
from chunkssl.checkpoint import build_from_files
kind, config, model = sys.argv[1:]
if kind == "fsq":
    from chunkssl.fsq.io import load_fsq_tokenizer
    built = load_fsq_tokenizer(model, config)
elif kind == "ssl":
    from chunkssl.ssl.task import ChunkSSLTask
    built, _ = build_from_files(ChunkSSLTask, config, model)
else:
    import chunkssl.espnet_glue
    from espnet2.tasks.asr import ASRTask
    built, _ = build_from_files(ASRTask, config, model)
print(sum(p.numel() for p in built.parameters()))
"""


def _rebuild(kind: str, config: Path, model: Path, cwd: Path) -> int:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", REBUILD, kind, str(config), str(model)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return int(r.stdout.split()[-1])


def _relative_run(root: Path, main, args: list[str]) -> None:
    """Run a training entry point inside ``root`` with paths relative to it, as a recipe does."""
    here = os.getcwd()
    os.chdir(root)
    try:
        with single_thread():
            main([a.replace(f"{root}/", "") for a in args])
    finally:
        os.chdir(here)


def _moved(root: Path, tmp_path: Path) -> Path:
    """The recipe folder moved elsewhere (the old one is gone)."""
    dest = tmp_path / "moved" / root.name
    shutil.copytree(root, dest)
    shutil.rmtree(root)
    return dest


def test_ssl_model_rebuilds_from_its_config_with_its_loss_groups(tmp_path):
    from chunkssl.bin import ssl_train
    from test_ssl_train import CONFIG, _args, _write_data

    root = tmp_path / "ssl"
    root.mkdir()
    _write_data(root)
    conf = dict(CONFIG, model_conf=dict(CONFIG["model_conf"], group_channels=1))  # loss groups != code groups
    (root / "conf.yaml").write_text(yaml.safe_dump(conf))
    _relative_run(root, ssl_train.main, _args(root, "exp", 1))
    saved = yaml.safe_load((root / "exp" / "config.yaml").read_text())
    assert saved["model_conf"]["group_channels"] == 1 and saved["model_conf"]["group_sizes"] == [1, 1, 1]
    assert not os.path.isabs(saved["code_info"])  # written as given: relative to the recipe
    root = _moved(root, tmp_path)
    assert _rebuild("ssl", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", tmp_path) > 0
    # the model folder alone, without the codes dir: the saved levels and groups are enough
    (root / "code_info.yaml").unlink()
    assert _rebuild("ssl", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", Path("/")) > 0


def test_asr_model_decodes_from_any_directory_after_the_recipe_moved(tmp_path):
    from chunkssl.bin import asr_train
    from tiny_asr import make_data, train_args

    root = tmp_path / "asr"
    make_data(root / "data", n_utts=6)
    _relative_run(root, asr_train.main, train_args(root / "data", root / "exp", 1))
    saved = yaml.safe_load((root / "exp" / "config.yaml").read_text())
    assert saved["normalize_conf"]["stats_file"] == "data/cmvn_stats.npz"
    root = _moved(root, tmp_path)
    params = _rebuild("asr", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", Path("/"))
    assert params > 0
    # the streaming API too, from another working directory
    from chunkssl.streaming.streamer import Streamer

    here = os.getcwd()
    os.chdir("/")
    try:
        streamer = Streamer.from_files(str(root / "exp" / "config.yaml"), str(root / "exp" / "1epoch.pth"), 320)
    finally:
        os.chdir(here)
    assert sum(p.numel() for p in streamer.asr.model.parameters()) == params


def test_fsq_tokenizer_rebuilds_in_a_fresh_process(tmp_path):
    import numpy as np

    from chunkssl.bin import fsq_train
    from test_fsq_cli import _write_feats

    rng = np.random.default_rng(0)
    mats = {f"utt{i:02d}": rng.normal(size=(int(rng.integers(30, 90)), 80)).astype(np.float32) for i in range(6)}
    root = tmp_path / "fsq"
    feats_scp = _write_feats(root / "fbank", mats)
    every = np.concatenate(list(mats.values())).astype(np.float64)
    np.savez(root / "fbank" / "cmvn_stats.npz", count=np.array(every.shape[0]), sum=every.sum(0),
             sum_square=(every ** 2).sum(0))
    shutil.copy(REPO / "conf" / "fsq" / "tiny.yaml", root / "tiny.yaml")
    args = ["--config", f"{root}/tiny.yaml", "--output_dir", f"{root}/exp", "--cmvn_stats",
            f"{root}/fbank/cmvn_stats.npz", "--max_epoch", "1", "--num_iters_per_epoch", "2"]
    for split in ("train", "valid"):
        args += [f"--{split}_data_path_and_name_and_type", f"{feats_scp},speech,kaldi_ark",
                 f"--{split}_shape_file", f"{root}/fbank/utt2num_frames"]
    _relative_run(root, fsq_train.main, args)
    root = _moved(root, tmp_path)
    assert _rebuild("fsq", root / "exp" / "config.yaml", root / "exp" / "1epoch.pth", Path("/")) > 0
