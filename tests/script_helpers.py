"""Helpers of the tests of utils/ scripts: run a command, write and read small files, a toy data dir."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(args: list, env: dict, cwd: Path | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command, returning the completed process; on an unexpected failure show its output."""
    proc = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def make_data_dir(d: Path, speakers: dict[str, int]) -> Path:
    """A clean data dir with ``n`` utterances ``spk-i`` per speaker, durations i + 0.5 s."""
    wav, text, u2s, dur = [], [], [], []
    for spk, n in speakers.items():
        for i in range(1, n + 1):
            utt = f"{spk}-{i}"
            wav.append(f"{utt} /corpus/{utt}.wav")
            text.append(f"{utt} words of {utt}")
            u2s.append(f"{utt} {spk}")
            dur.append(f"{utt} {i + 0.5}")
    for name, rows in [("wav.scp", wav), ("text", text), ("utt2spk", u2s), ("utt2dur", dur)]:
        write(d / name, "".join(r + "\n" for r in sorted(rows)))
    write(d / "spk2gender", "".join(f"{s} f\n" for s in sorted(speakers)))
    return d
