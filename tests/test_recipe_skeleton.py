"""The recipe skeleton: setup.sh, path.sh, cmd.sh, db.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import REPO


def _bash(script: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True)


def test_setup_sh_creates_linked_recipe(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "egs2" / "TEMPLATE", root / "egs2" / "TEMPLATE")
    (root / "utils").mkdir()
    r = _bash("egs2/TEMPLATE/setup.sh egs2/mycorpus/asr1", cwd=root)
    assert r.returncode == 0, r.stderr
    rec = root / "egs2" / "mycorpus" / "asr1"
    for name in ("path.sh", "cmd.sh", "db.sh", "utils", "asr.sh"):
        assert (rec / name).is_symlink(), name
        assert (rec / name).exists(), f"{name} link is dangling"
    assert os.readlink(rec / "asr.sh") == "../../TEMPLATE/asr1/asr.sh"
    assert (rec / "local" / "data.sh").exists()
    # Running it again keeps the links and the user's own data.sh.
    (rec / "local" / "data.sh").write_text("#!/bin/bash\necho mine\n")
    assert _bash("egs2/TEMPLATE/setup.sh egs2/mycorpus/asr1", cwd=root).returncode == 0
    assert "mine" in (rec / "local" / "data.sh").read_text()


def test_setup_sh_rejects_unknown_task(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "egs2" / "TEMPLATE", root / "egs2" / "TEMPLATE")
    r = _bash("egs2/TEMPLATE/setup.sh egs2/mycorpus/tts9", cwd=root)
    assert r.returncode != 0 and "unknown task 'tts9'" in r.stderr


def test_path_sh_activates_repo_venv():
    r = _bash(". ./path.sh && command -v python && python -c 'import chunkssl; print(chunkssl.__file__)' "
              "&& command -v run.pl || true; echo LC=$LC_ALL", cwd=REPO / "egs2" / "fsdd" / "asr1")
    assert r.returncode == 0, r.stderr
    assert str(REPO / ".venv" / "bin" / "python") in r.stdout
    assert str(REPO / "chunkssl") in r.stdout
    assert "LC=C" in r.stdout


def test_path_sh_without_venv_says_what_to_do(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "egs2" / "TEMPLATE", root / "egs2" / "TEMPLATE")
    r = _bash(". egs2/TEMPLATE/path.sh && echo sourced", cwd=root)
    assert r.returncode != 0 and "sourced" not in r.stdout
    assert "make install" in r.stderr


def test_cmd_sh_backends():
    tpl = REPO / "egs2" / "TEMPLATE"
    r = _bash(". ./cmd.sh && echo $train_cmd", cwd=tpl, env={**os.environ, "CHUNKSSL_CMD_BACKEND": "slurm"})
    assert r.stdout.strip().startswith("slurm.pl")
    r = _bash(". ./cmd.sh && echo $cuda_cmd", cwd=tpl, env={k: v for k, v in os.environ.items()
                                                           if k != "CHUNKSSL_CMD_BACKEND"})
    assert r.stdout.strip() == "run.pl"
    r = _bash(". ./cmd.sh", cwd=tpl, env={**os.environ, "CHUNKSSL_CMD_BACKEND": "pbs"})
    assert r.returncode != 0 and "unknown CHUNKSSL_CMD_BACKEND='pbs'" in r.stderr


def test_db_sh_defaults_and_override():
    tpl = REPO / "egs2" / "TEMPLATE"
    env = {k: v for k, v in os.environ.items() if k not in ("FSDD", "CHUNKSSL_SHARED_DATA")}
    r = _bash(". ./db.sh && echo $FSDD", cwd=tpl, env=env)
    assert Path(r.stdout.strip()).resolve() == (REPO.parent / "shared" / "data" / "fsdd").resolve()
    r = _bash(". ./db.sh && echo $FSDD", cwd=tpl, env={**env, "FSDD": "/data/fsdd"})
    assert r.stdout.strip() == "/data/fsdd"
