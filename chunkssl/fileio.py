"""Small file helpers shared by every stage: atomic writes and Kaldi-style key/value files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator


_UMASK = os.umask(0)
os.umask(_UMASK)


class DataError(ValueError):
    """Bad input data: the message names the file (and utterance) and says what to do."""


DATA_ERROR_STATUS = 2  # exit status of an entry point stopped by a DataError (as argparse for bad options)


def run_cli(prog: str, main: Callable[..., object], *args) -> int:
    """Run an entry point's ``main(*args)``: bad input (:class:`DataError`) is one ``prog: error:`` line on
    stderr and status 2, not a traceback; otherwise ``main``'s own status (None counts as 0)."""
    import sys

    try:
        status = main(*args)
    except DataError as e:
        one_line = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        print(f"{prog}: error: {one_line}", file=sys.stderr)
        return DATA_ERROR_STATUS
    return int(status or 0)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file beside ``path`` and rename it over ``path`` only if the block succeeds.

    A crash or exception inside the block leaves ``path`` untouched, so a rerun never trusts
    a half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs should be readable like any other
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_kv(path: str | os.PathLike, allow_empty_value: bool = False) -> list[tuple[str, str]]:
    """Read a Kaldi ``key value...`` file (scp, text, utt2spk) as ordered (key, rest) pairs."""
    pairs = []
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataError(f"{path}:{lineno}: key {parts[0]!r} has no value; fix or remove the line "
                                f"(utils/fix_data_dir.sh drops such entries)")
            pairs.append((parts[0], value))
    return pairs


def write_kv(path: str | os.PathLike, pairs: Iterable[tuple[str, str]]) -> None:
    """Write ``key value`` lines atomically, in the order given."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        for key, value in pairs:
            f.write(f"{key} {value}\n")


def write_keeping_notes(path: Path, body: str) -> None:
    """Write a generated results page atomically, keeping the hand-written ``## Notes`` part of the old one."""
    notes = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        at = old.find("\n## Notes")
        notes = old[at:] if at >= 0 else ""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(body + notes)


#: the repository's Kaldi-style ``utils/`` (run.pl, slurm.pl, split_scp.py), beside the package
REPO_UTILS = Path(__file__).resolve().parents[1] / "utils"


def find_tool(name: str, near: str | None = None) -> str:
    """Locate a utils/ script: beside ``near``, in ./utils, in this repo's utils, or on PATH."""
    import shutil

    candidates = [Path(near).parent / name] if near else []
    candidates += [Path("utils") / name, REPO_UTILS / name]
    for path in candidates:
        if path.is_file():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"cannot find {name} (looked in {', '.join(map(str, candidates))} and PATH); "
                       f"run from a recipe dir with a utils/ link or put utils/ on PATH")


def job_launcher(cmd: str | None) -> list[str]:
    """The recipe's ``$cmd`` (e.g. ``'slurm.pl --mem 8G'``) as argv; ``run.pl`` from utils/ when not given."""
    import shlex

    return shlex.split(cmd) if cmd else [find_tool("run.pl")]


def run_job_array(launcher: list[str], nj: int, log: str | os.PathLike, job: list[str]) -> int:
    """``launcher JOB=1:nj log job...`` (run.pl/slurm.pl substitute JOB); the jobs import this chunkssl. Exit status."""
    import subprocess

    env = dict(os.environ)
    # the jobs must import this same chunkssl whatever their working directory
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_UTILS.parent), env.get("PYTHONPATH")]))
    return subprocess.run([*launcher, f"JOB=1:{nj}", str(log), *job], env=env).returncode


def job_log_tail(log: str | os.PathLike, job: int, lines: int = 4) -> list[str]:
    """The last ``lines`` lines a job wrote to its log (``JOB`` in ``log`` replaced), without run.pl's '#' lines."""
    path = Path(str(log).replace("JOB", str(job)))
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")][-lines:]
