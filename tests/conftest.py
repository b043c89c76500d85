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


def real_speech_dir(root: Path, num_lt: int = 6, num_fsdd: int = 3) -> Path:
    """``root/data``: real speech, Libri-Trans FLAC files (the first two cut into two segments each) and FSDD WAVs at 8 kHz."""
    import soundfile as sf

    lt = sorted((shared_corpus("libritrans") / "audio_files").glob("*.flac"))[:num_lt]
    fsdd = sorted((shared_corpus("fsdd") / "recordings").glob("*.wav"))[:num_fsdd]
    d = root / "data"
    d.mkdir()
    wav, seg, utt2spk = [], [], []
    for i, f in enumerate(lt):
        rec = f"lt{i}"
        wav.append(f"{rec} {f}")
        if i < 2:  # segments of one recording, the second starting mid-file (read by seeking)
            dur = sf.info(str(f)).duration
            for j, (a, b) in enumerate([(0.0, round(dur / 2, 2)), (round(dur / 3, 2), -1)]):
                seg.append(f"{rec}-{j} {rec} {a} {b}")
                utt2spk.append(f"{rec}-{j} spk")
        else:
            seg.append(f"{rec}-0 {rec} 0 -1")
            utt2spk.append(f"{rec}-0 spk")
    for i, f in enumerate(fsdd):
        wav.append(f"fsdd{i} {f}")
        seg.append(f"fsdd{i}-0 fsdd{i} 0 -1")
        utt2spk.append(f"fsdd{i}-0 spk")
    (d / "wav.scp").write_text("".join(f"{x}\n" for x in sorted(wav)))
    (d / "segments").write_text("".join(f"{x}\n" for x in sorted(seg)))
    (d / "utt2spk").write_text("".join(f"{x}\n" for x in sorted(utt2spk)))
    (d / "spk2utt").write_text("spk " + " ".join(sorted(u.split()[0] for u in utt2spk)) + "\n")
    return d
