"""fsq_tokenize runs its jobs through the recipe's launcher (--cmd: run.pl, slurm.pl), as compute_fbank does."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np

from chunkssl.features import CmvnStats
from chunkssl.fsq.io import read_codes
from conftest import REPO


def _corpus(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    mats = {f"u{i}": rng.normal(size=(int(rng.integers(12, 40)), 80)).astype(np.float32) for i in range(5)}
    with kaldiio.WriteHelper(f"ark,scp:{root}/feats.ark,{root}/feats.scp") as writer:
        for key, mat in mats.items():
            writer(key, mat)
    stats = CmvnStats(80)
    for mat in mats.values():
        stats.add(mat)
    stats.save_npz(root / "cmvn_stats.npz")
    (root / "bestrq.yaml").write_text("bestrq_conf:\n  codebook_size: 16\n  codebook_dim: 4\n  seed: 1\n")
    return ["-m", "chunkssl.bin.fsq_tokenize", "--quantizer", "bestrq", "--bestrq-config", str(root / "bestrq.yaml"),
            "--cmvn-stats", str(root / "cmvn_stats.npz"), "--feats-scp", str(root / "feats.scp")]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_jobs_go_through_cmd_and_match_one_job(tmp_path):
    base = _corpus(tmp_path)
    launcher = tmp_path / "launcher.sh"  # records its call, then hands it to run.pl as $train_cmd would
    launcher.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\nexec {REPO}/utils/run.pl \"$@\"\n")
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    one = _run(base + ["--out-dir", str(tmp_path / "one")])
    three = _run(base + ["--out-dir", str(tmp_path / "three"), "--nj", "3", "--cmd", f"{launcher}"])
    assert one.returncode == 0 and three.returncode == 0, one.stderr[-2000:] + three.stderr[-2000:]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("JOB=1:3 ") and "--job JOB" in calls[0]
    a, b = read_codes(tmp_path / "one"), read_codes(tmp_path / "three")
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key], b[key])
    for name in ("utt2num_frames", "skipped"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "three" / name).read_text()
    assert sorted(p.name for p in (tmp_path / "three").glob("codes.*.ark")) == [f"codes.{j}.ark" for j in (1, 2, 3)]


def test_a_failed_job_is_one_error_line_with_its_log(tmp_path):
    base = _corpus(tmp_path)
    failing = tmp_path / "failing.sh"  # a launcher whose jobs all fail
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    proc = _run(base + ["--out-dir", str(tmp_path / "out"), "--nj", "2", "--cmd", str(failing)])
    assert proc.returncode == 2 and "fsq_tokenize: error: fsq_tokenize jobs [1, 2] failed" in proc.stderr
    assert not (tmp_path / "out" / "codes.scp").exists()
