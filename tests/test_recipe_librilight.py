"""egs2/librilight/ssl1 end to end as it runs at scale (raw audio, online targets, sharded lists), on the
stand-in corpus that local/make_sample.sh builds from the real Libri-Trans speech of ../shared/data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import make_recipe, shared_corpus

TINY = ["--nj", "2", "--local-data-opts", "--subsets small --download false --dev-recordings 2 --nj 2",
        "--tokenizers", "tiny", "--ssl-tokenizer", "tiny", "--analysis-utts", "4", "--num-splits", "2",
        "--fsq-train-opts", "--max_epoch 1 --num_workers 0",
        "--ssl-config", "../../../conf/ssl/chunk_conformer_tiny.yaml",
        "--ssl-train-opts", "--max_epoch 1 --batch_size 4 --num_workers 0"]


@pytest.mark.slow
def test_librilight_ssl1_runs_on_raw_audio_with_online_targets(tmp_path: Path, script_env: dict):
    libritrans = shared_corpus("libritrans")
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    r = subprocess.run(["bash", "local/make_sample.sh", "--readers", "3", "--minutes-per-reader", "1",
                        str(libritrans), "downloads/sample"], cwd=recipe, env=script_env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    env = dict(script_env, LIBRILIGHT=str(recipe / "downloads/sample"))
    r = subprocess.run(["bash", "run.sh", *TINY], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    dump = recipe / "dump"
    # the training data is the audio: manifests beside it, and no archive but the analysis sample's
    assert (dump / "raw/small/audio.scp").is_file() and not (dump / "fbank/small").exists()
    archives = {str(p.parent.relative_to(dump)) for p in dump.rglob("*.ark") if p.name != "cmvn.ark"}
    assert archives == {"fbank/small_dev_sample4", "tokens/tiny/small_dev_sample4"}
    manifest_bytes = sum(p.stat().st_size for p in (dump / "raw").rglob("*") if p.is_file())
    audio_bytes = sum(p.stat().st_size for p in (recipe / "downloads/sample").rglob("*.flac"))
    assert manifest_bytes < audio_bytes / 20
    exp = recipe / "exp/ssl_chunk_conformer_tiny_tiny"
    state = torch.load(exp / "valid.acc.best.pth", map_location="cpu")
    assert any(k.startswith("targets.") for k in state)
    assert (exp / "packed.zip").is_file()
    shards = sorted((exp / "splits2/audio.scp").glob("split.*"))
    lines = [len(p.read_text().splitlines()) for p in shards]
    assert len(shards) == 2 and min(lines) > 0
    assert sum(lines) == len((exp / "stats/small/speech_shape").read_text().splitlines())
    assert os.path.getsize(exp / "train.log") > 0
