"""Stage helpers of egs2/TEMPLATE/stages.sh: a decode is redone when its options change or it had failures, and
ssl.sh's tokenize stage when the tokenizer (file, options) or the features change."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from conftest import REPO, UTILS

# A stand-in decoder: counts its runs, writes a hypothesis, and lists a failure while FAIL exists.
FAKE_DECODER = """#!/bin/bash
out=${@: -1}
echo "$*" >> "$out/../runs"
echo "u1 hyp" > "$out/text"
if [ -e "$out/../FAIL" ]; then echo "u2 zero samples" > "$out/failed"; exit 1; fi
rm -f "$out/failed"
"""


def _decode(tmp: Path, beam: str) -> subprocess.CompletedProcess:
    script = f"""
set -euo pipefail
source {REPO}/egs2/TEMPLATE/stages.sh
asr_exp={tmp}/exp inference_model=model.pth decode_cmd={UTILS}/run.pl
decode_into {tmp}/exp/dec {tmp}/decoder.sh --beam-size {beam} {tmp}/exp/dec
"""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


def _runs(tmp: Path) -> int:
    runs = tmp / "exp" / "runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_decode_is_redone_when_options_change_or_utterances_failed(tmp_path):
    (tmp_path / "exp" / "dec").mkdir(parents=True)
    (tmp_path / "exp" / "model.pth").write_bytes(b"weights")
    (tmp_path / "decoder.sh").write_text(FAKE_DECODER)
    (tmp_path / "decoder.sh").chmod(0o755)
    time.sleep(0.05)  # the decode must be newer than the model
    assert _decode(tmp_path, "10").returncode == 0 and _runs(tmp_path) == 1
    r = _decode(tmp_path, "10")
    assert r.returncode == 0 and _runs(tmp_path) == 1 and "is up to date" in r.stderr
    # other options: decoded again, and then that decode is the one kept
    assert _decode(tmp_path, "1").returncode == 0 and _runs(tmp_path) == 2
    assert _decode(tmp_path, "1").returncode == 0 and _runs(tmp_path) == 2
    # a decode with failed utterances stops the stage and is not taken as done by the next run
    (tmp_path / "exp" / "FAIL").touch()
    assert _decode(tmp_path, "10").returncode != 0 and _runs(tmp_path) == 3
    assert not (tmp_path / "exp" / "dec" / ".options").exists()
    (tmp_path / "exp" / "FAIL").unlink()
    assert _decode(tmp_path, "10").returncode == 0 and _runs(tmp_path) == 4
    assert _decode(tmp_path, "10").returncode == 0 and _runs(tmp_path) == 4


def _tokenize(recipe: Path, env: dict, conf_dir: Path, nj: int = 1) -> subprocess.CompletedProcess:
    args = ["--stage", "4", "--stop-stage", "4", "--tokenizers", "bestrq", "--analyze", "false",
            "--fsq-conf-dir", str(conf_dir), "--train-set", "train", "--valid-set", "dev", "--nj", str(nj)]
    r = subprocess.run(["bash", "ssl.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_ssl_tokenize_stage_is_redone_when_the_tokenizer_changes(tmp_path, script_env, monkeypatch):
    """ssl.sh stage 4: a rerun keeps the codes; another tokenizer config (even an older file) or source redoes them."""
    import os
    import re

    import kaldiio
    import numpy as np
    import yaml

    from chunkssl.fsq.io import read_codes
    from conftest import make_recipe

    recipe = make_recipe(tmp_path, "mini_synth", "ssl1")
    rng = np.random.default_rng(0)
    for s in ("train", "dev"):
        (recipe / "dump/fbank" / s).mkdir(parents=True)
        feats = {f"{s}{i}": rng.normal(size=(40, 80)).astype(np.float32) for i in range(3)}
        kaldiio.save_ark(str(recipe / "dump/fbank" / s / "feats.ark"), feats,
                         scp=str(recipe / "dump/fbank" / s / "feats.scp"))
    stats = np.concatenate(list(feats.values())).astype(np.float64)
    np.savez(recipe / "dump/fbank/train/cmvn_stats.npz", count=np.array(len(stats)), sum=stats.sum(0),
             sum_square=(stats ** 2).sum(0))
    conf = tmp_path / "fsq_conf"
    conf.mkdir()
    config = yaml.safe_load((REPO / "conf/fsq/bestrq.yaml").read_text())
    (conf / "bestrq.yaml").write_text(yaml.safe_dump(config))
    env = dict(script_env, OMP_NUM_THREADS="1")
    codes = recipe / "dump/tokens/bestrq/train/codes.scp"
    monkeypatch.chdir(recipe)  # codes.scp names its arks relative to the recipe

    def up_to_date(r: subprocess.CompletedProcess) -> int:
        return len(re.findall(r"dump/tokens/bestrq/(train|dev) is up to date", r.stderr))

    assert up_to_date(_tokenize(recipe, env, conf)) == 0
    first = dict(read_codes(codes))
    # the same tokenizer again (--nj changes no code): nothing is redone
    assert up_to_date(_tokenize(recipe, env, conf, nj=2)) == 2
    # another seed in the same file, with an old time: a time comparison would keep the old codes
    config["bestrq_conf"]["seed"] = 1
    (conf / "bestrq.yaml").write_text(yaml.safe_dump(config))
    os.utime(conf / "bestrq.yaml", (1e9, 1e9))
    assert up_to_date(_tokenize(recipe, env, conf)) == 0
    second = dict(read_codes(codes))
    assert any(not np.array_equal(first[k], second[k]) for k in first)
    assert up_to_date(_tokenize(recipe, env, conf)) == 2
    # the tokenizer from another place (another option): redone
    other = tmp_path / "other_conf"
    other.mkdir()
    (other / "bestrq.yaml").write_text(yaml.safe_dump(config))
    assert up_to_date(_tokenize(recipe, env, other)) == 0
    # new features (stage 2 rewrote them): redone
    (recipe / "dump/fbank/dev/feats.scp").touch()
    assert up_to_date(_tokenize(recipe, env, other)) == 1
