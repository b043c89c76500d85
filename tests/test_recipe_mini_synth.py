"""The mini_synth ssl1 recipe end to end with tiny settings: every stage of ssl.sh runs and resumes."""

from __future__ import annotations

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
