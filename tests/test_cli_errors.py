"""Entry points end one way: bad input (a ``DataError``) is one ``prog: error:`` line naming the file and
exit status 2; a bug keeps its traceback."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from chunkssl.fileio import DATA_ERROR_STATUS, DataError, run_cli
from conftest import REPO

ESPNET_NOTICE = "Failed to import Flash Attention"  # ESPnet prints this on import when flash_attn is absent


def _stderr_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(ESPNET_NOTICE)]


def _run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def _main_modules() -> list[Path]:
    """Every module of the package with a ``__main__`` block: ``chunkssl/bin`` and the few elsewhere."""
    return [path for path in sorted((REPO / "chunkssl").rglob("*.py"))
            if '__name__ == "__main__"' in path.read_text(encoding="utf-8")]


def test_every_entry_point_ends_through_run_cli():
    """Each module with a main block (``chunkssl/bin``, codec, corpora, st) ends in ``sys.exit(run_cli(...))``."""
    modules = _main_modules()
    assert len(modules) > 30 and REPO / "chunkssl/st/results.py" in modules
    wrong = []
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        blocks = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
        body = [ast.unparse(stmt) for block in blocks for stmt in block.body]
        if len(body) != 1 or not body[0].startswith("sys.exit(run_cli("):
            wrong.append(f"{path.relative_to(REPO)}: {body}")
    assert not wrong, "\n".join(wrong)


def _entry_points() -> list[str]:
    return [".".join(p.relative_to(REPO).with_suffix("").parts) for p in _main_modules()]


@pytest.mark.parametrize("module", _entry_points())
def test_every_entry_point_runs_its_help(module, monkeypatch, capsys):
    """``python -m <module> --help`` reaches argparse and exits 0 (a name error in the main block would not)."""
    import runpy

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert stop.value.code in (0, None), capsys.readouterr().err[-2000:]
    assert "usage" in capsys.readouterr().out.lower()


def test_run_cli_gives_one_line_and_status_2(capsys):
    def bad(path: str) -> int:
        raise DataError(f"{path}: utterance 'u1' is broken\n(or rerun with --skip-bad)")

    assert run_cli("prog", bad, "data/wav.scp") == DATA_ERROR_STATUS == 2
    err = capsys.readouterr().err
    assert err == "prog: error: data/wav.scp: utterance 'u1' is broken (or rerun with --skip-bad)\n"
    assert run_cli("prog", lambda: None) == 0 and run_cli("prog", lambda: 1) == 1


def test_run_cli_leaves_a_bug_its_traceback():
    def bug() -> int:
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):
        run_cli("prog", bug)


@pytest.mark.parametrize("module", ["chunkssl.bin.asr_inference", "chunkssl.bin.asr_inference_streaming"])
def test_decoders_refuse_a_bad_model_file_in_one_line(tmp_path, module):
    (tmp_path / "config.yaml").write_text("encoder: chunk_conformer\n")
    (tmp_path / "wav.scp").write_text("u1 /nonexistent.wav\n")
    (tmp_path / "empty.pth").write_bytes(b"")
    prog = module.rsplit(".", 1)[1]
    for model, says in (("missing.pth", "missing.pth: model file not found"),
                        ("empty.pth", "not a valid checkpoint: empty.pth")):
        r = _run(module, "--asr_train_config", "config.yaml", "--asr_model_file", model, "--wav-scp", "wav.scp",
                 "--output-dir", "out", cwd=tmp_path)
        lines = _stderr_lines(r.stderr)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: ") and says in lines[0], r.stderr


def test_scorer_names_the_missing_file_in_one_line(tmp_path):
    (tmp_path / "hyp").write_text("u1 a b\n")
    r = _run("chunkssl.bin.score_asr", "--ref", "no_such_ref", "--hyp", "hyp", "--out-dir", "o", cwd=tmp_path)
    lines = _stderr_lines(r.stderr)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("score_asr: error: no_such_ref: no such file"), r.stderr
