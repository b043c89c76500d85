"""Shared pytest fixtures: paths to the repo, its utils and the real corpora beside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"
SHARED_DATA = Path(os.environ.get("CHUNKSSL_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_corpus(name: str) -> Path:
    """Path of a real corpus under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real corpus {name!r} not found at {path} (set CHUNKSSL_SHARED_DATA to its parent)")
    return path


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def utils_dir() -> Path:
    return UTILS


@pytest.fixture
def script_env() -> dict:
    """Environment for running utils/ and recipe scripts: the venv's python and utils first on PATH."""
    import sys

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(UTILS), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def make_recipe(tmp_path: Path, corpus: str, task: str) -> Path:
    """A scratch copy of egs2/<corpus>/<task>: made by setup.sh in a tree that links the repo's
    TEMPLATE, utils, conf and .venv, with the recipe's own local/ scripts and run.sh copied in."""
    import shutil
    import subprocess

    root = tmp_path / "repo"
    (root / "egs2").mkdir(parents=True, exist_ok=True)
    for name in ("egs2/TEMPLATE", "utils", "conf", ".venv"):
        if not (root / name).exists():
            (root / name).symlink_to(REPO / name)
    dest = root / "egs2" / corpus / task
    subprocess.run(["bash", str(REPO / "egs2/TEMPLATE/setup.sh"), str(dest)], check=True, capture_output=True)
    src = REPO / "egs2" / corpus / task
    shutil.copytree(src / "local", dest / "local", dirs_exist_ok=True)  # follows links: a real copy
    if (src / "run.sh").exists():
        shutil.copy(src / "run.sh", dest / "run.sh")
    return dest


@contextlib.contextmanager
def single_thread():
    """One torch thread inside the block, the previous count restored after it (errors included)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread for tiny tensors: on a loaded 2-core machine OpenMP hand-off dominates otherwise."""
    with single_thread():
        yield


@pytest.fixture(scope="session")
def tiny_asr(tmp_path_factory) -> dict:
    """The tiny tone-word ASR model of tests/tiny_asr.py, trained once per session (about 30 s)."""
    from tiny_asr import train_tiny_asr

    return train_tiny_asr(tmp_path_factory.mktemp("tiny_asr"))
