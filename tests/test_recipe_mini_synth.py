"""The mini_synth ssl1 recipe end to end with tiny settings: every stage of ssl.sh runs and resumes."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import make_recipe


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    return make_recipe(tmp_path, "mini_synth", "ssl1")


TINY = ["--nj", "1", "--local-data-opts", "--num-utts 40 --seed 3", "--tokenizers", "tiny bestrq",
        "--ssl-tokenizer", "tiny", "--fsq-train-opts", "--max_epoch 1 --num_workers 0",
        "--ssl-train-opts", "--max_epoch 1 --batch_size 4 --num_workers 0"]


@pytest.mark.slow
def test_ssl1_all_stages_then_rerun_is_a_no_op(recipe, script_env):
    r = subprocess.run(["bash", "run.sh", *TINY], cwd=recipe, env=script_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    table = (recipe / "exp/fsq_analysis/dev/results.md").read_text()
    assert "| tiny | fsq |" in table and "| bestrq | bestrq |" in table and "PNMI" in table
    exp = recipe / "exp/ssl_chunk_conformer_tiny_tiny"
    assert (exp / "valid.acc.best.pth").exists()
    assert "group_sizes" in (exp / "config.yaml").read_text()
    with zipfile.ZipFile(exp / "packed.zip") as z:
        names = z.namelist()
    assert any(n.endswith(".pth") for n in names) and any(n.endswith("config.yaml") for n in names)
    # Finished stages are skipped on a rerun, not redone.
    r = subprocess.run(["bash", "run.sh", *TINY, "--stage", "3", "--stop-stage", "4"], cwd=recipe,
                       env=script_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "exp/fsq_tiny is already trained" in r.stderr
    assert "dump/tokens/tiny/train is up to date" in r.stderr


@pytest.mark.slow
def test_ssl1_raw_audio_and_online_targets_write_no_training_archive(recipe, script_env):
    """--feats-type raw --ssl-targets online (issue 17): training reads the audio, sharded for ESPnet's
    --multiple_iterator; only the stage-4 analysis sample is dumped."""
    import torch

    opts = [*TINY, "--feats-type", "raw", "--ssl-targets", "online", "--num-splits", "2", "--analysis-utts", "3"]
    r = subprocess.run(["bash", "run.sh", *opts], cwd=recipe, env=script_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    dump = recipe / "dump"
    assert (dump / "raw/train/audio.scp").is_file() and (dump / "raw/dev/audio.scp").is_file()
    archives = sorted(str(p.parent.relative_to(dump)) for p in dump.rglob("*.ark") if p.name != "cmvn.ark")
    assert archives and set(archives) <= {"fbank/dev_sample3", "tokens/tiny/dev_sample3", "tokens/bestrq/dev_sample3"}
    assert "| tiny | fsq |" in (recipe / "exp/fsq_analysis/dev_sample3/results.md").read_text()
    exp = recipe / "exp/ssl_chunk_conformer_tiny_tiny"
    config = (exp / "config.yaml").read_text()
    assert "frontend: kaldi_fbank" in config and "multiple_iterator: true" in config
    assert "target_tokenizer: exp/fsq_tiny/valid.loss.best.pth" in config
    assert (exp / "splits2/audio.scp/split.1").is_file() and not (exp / "splits2/codes.scp").exists()
    state = torch.load(exp / "valid.acc.best.pth", map_location="cpu")
    assert any(k.startswith("targets.") for k in state) and any(k.startswith("encoder.") for k in state)
    # without the comparison, stage 4 has nothing to tokenize: no sample, no archive
    shutil.rmtree(dump / "tokens")
    shutil.rmtree(dump / "fbank/dev_sample3")
    r = subprocess.run(["bash", "run.sh", *opts, "--analyze", "false", "--stage", "4", "--stop-stage", "4"],
                       cwd=recipe, env=script_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "nothing to tokenize" in r.stderr
    assert not list(dump.rglob("*.ark")) or all(p.name == "cmvn.ark" for p in dump.rglob("*.ark"))
    assert "--ssl-targets must be dumped or online" in subprocess.run(
        ["bash", "run.sh", *TINY, "--ssl-targets", "maybe", "--stage", "5"], cwd=recipe, env=script_env,
        capture_output=True, text=True).stderr
