"""Kaldi-style helper scripts in utils/: option parsing and job runners (data-dir tools: test_utils_datadir.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import UTILS
from script_helpers import lines, run, write


# ---------------------------------------------------------------- parse_options.sh

OPTS_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
stage=1; stop_stage=100; nj=4
use_gpu=false
tag="a b"
help_message="Usage: demo.sh [options] <dir>"
. {utils}/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage nj=$nj use_gpu=$use_gpu tag=$tag"
printf 'arg=%s\\n' "$@"
"""


@pytest.fixture
def opts_script(tmp_path: Path) -> Path:
    script = write(tmp_path / "demo.sh", OPTS_SCRIPT.format(utils=UTILS))
    script.chmod(0o755)
    return script


def test_parse_options_sets_variables_and_leaves_positionals(opts_script, script_env):
    out = run([opts_script, "--stage", "3", "--stop-stage", "5", "--nj=2", "--use_gpu", "true",
               "--tag", "x y", "data/a", "--not-an-option"], script_env).stdout.splitlines()
    assert out[0] == "stage=3 stop_stage=5 nj=2 use_gpu=true tag=x y"
    assert out[1:] == ["arg=data/a", "arg=--not-an-option"]


def test_parse_options_config_file_then_command_line(opts_script, script_env, tmp_path):
    conf = write(tmp_path / "run.conf", "nj=7\nstage=9\n")
    out = run([opts_script, "--stage", "2", "--config", conf, "--", "--stage"], script_env).stdout.splitlines()
    assert out[0].startswith("stage=2 stop_stage=100 nj=7 ")
    assert out[1:] == ["arg=--stage"]


@pytest.mark.parametrize("args, message", [
    (["--bogus-opt", "1"], "--bogus-opt"),
    (["--stage"], "--stage needs a value"),
    (["--use-gpu", "yes"], "true or false"),
    (["--config", "/nonexistent.conf"], "/nonexistent.conf"),
])
def test_parse_options_errors(opts_script, script_env, args, message):
    proc = run([opts_script, *args], script_env, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "stage=" not in proc.stdout


def test_parse_options_help_lists_defaults(opts_script, script_env):
    proc = run([opts_script, "--help"], script_env)
    assert proc.stdout.startswith("Usage: demo.sh [options] <dir>")
    options = {line.split()[0]: line.split(None, 1)[1] for line in proc.stdout.splitlines() if line.startswith("  --")}
    assert options["--stop-stage"] == "'100'" and options["--tag"] == "'a b'" and options["--use-gpu"] == "'false'"
    assert "stage=" not in proc.stdout, "--help must exit before the script body runs"


# ---------------------------------------------------------------- run.pl


def test_run_pl_runs_jobs_in_parallel_with_logs(tmp_path, script_env):
    start = time.monotonic()
    run([UTILS / "run.pl", "--mem", "4G", "--gpu", "0", "--num-threads", "2", "--max-jobs-run", "4",
         "JOB=1:4", "log/x.JOB.log", "sleep 1; echo job JOB | tr a-z A-Z > out.JOB"], script_env, cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, f"4 one-second jobs took {elapsed:.1f}s: they did not overlap"
    for i in range(1, 5):
        assert (tmp_path / f"out.{i}").read_text() == f"JOB {i}\n"
        log = lines(tmp_path / "log" / f"x.{i}.log")
        assert log[0] == f"# sleep 1; echo job {i} | tr a-z A-Z > out.{i}"
        assert log[1].startswith("# Started at")
        assert any(line.startswith("# Accounting: time=") for line in log)
        assert log[-1].startswith("# Ended (code 0)")


def test_run_pl_max_jobs_run_limits_concurrency(tmp_path, script_env):
    start = time.monotonic()
    run([UTILS / "run.pl", "--max-jobs-run", "1", "JOB=1:3", "log/s.JOB.log", "sleep", "0.3"], script_env,
        cwd=tmp_path)
    assert time.monotonic() - start >= 0.9


def test_run_pl_reports_failed_job(tmp_path, script_env):
    proc = run([UTILS / "run.pl", "JOB=1:4", "log/x.JOB.log", "bash", "-c", "echo out JOB; [ JOB != 3 ]"],
               script_env, cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "1 / 4 failed, log is in log/x.3.log" in proc.stderr
    assert lines(tmp_path / "log/x.3.log")[-1].startswith("# Ended (code 1)")
    assert lines(tmp_path / "log/x.2.log")[-1].startswith("# Ended (code 0)")
    assert "out 2" in (tmp_path / "log/x.2.log").read_text()


def test_run_pl_single_job_and_escaped_operators(tmp_path, script_env):
    # Separate-argument operators pass through; an argument with spaces stays one word.
    run([UTILS / "run.pl", "log/one.log", "echo", "a  b", "|", "tr", "a-z", "A-Z", ">", "up.txt"], script_env,
        cwd=tmp_path)
    assert (tmp_path / "up.txt").read_text() == "A  B\n"
    # pipefail: a failing first stage fails the job.
    proc = run([UTILS / "run.pl", "log/two.log", "false | cat"], script_env, cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "log/two.log" in proc.stderr
    # Several jobs with one log name would overwrite each other.
    proc = run([UTILS / "run.pl", "JOB=1:2", "log/same.log", "true"], script_env, cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "JOB" in proc.stderr


# ---------------------------------------------------------------- slurm.pl


def test_slurm_pl_dry_run_prints_valid_array_job(tmp_path, script_env):
    env = dict(script_env, SLURM_PARTITION="gpuq")
    proc = run([UTILS / "slurm.pl", "--dry-run", "--mem", "4G", "--gpu", "1", "--num-threads", "2",
                "--time", "1:00:00", "JOB=1:3", "log/t.JOB.log",
                "python3", "-c", "print('task JOB')", "|", "sort", ">", "o.JOB"], env, cwd=tmp_path)
    first, _, script = proc.stdout.partition("\n")
    assert first.startswith("sbatch ")
    for flag in ["--array=1-3", "--wait", "--mem=4G", "--gres=gpu:1", "--cpus-per-task=2", "--time=1:00:00",
                 "--partition=gpuq", f"--output={tmp_path}/log/t.%a.log"]:
        assert flag in first.split(), flag
    assert script.startswith("#!/usr/bin/env bash")
    assert "JOB" not in script and "SLURM_ARRAY_TASK_ID" in script
    run(["bash", "-n"], env, input=script)
    assert not (tmp_path / "log").exists(), "--dry-run must not write anything"

    # The printed script is the one slurm.pl would submit: run task 2 by hand as a check.
    write(tmp_path / "task.sh", script)
    run(["bash", "task.sh"], dict(env, SLURM_ARRAY_TASK_ID="2"), cwd=tmp_path)
    assert (tmp_path / "o.2").read_text() == "task 2\n"
    assert lines(tmp_path / "log/t.2.log")[-1].startswith("# Ended (code 0)")


FAKE_SBATCH = """#!/usr/bin/env bash
# Test stand-in for 'sbatch --wait --array': runs the array tasks here, one after another.
for a in "$@"; do
  case $a in
    --array=*) array=${a#--array=}; array=${array%%\\%*} ;;
    --output=*) output=${a#--output=} ;;
    --*) ;;
    *) script=$a ;;
  esac
done
echo 4242
rc=0
for ((t=${array%-*}; t<=${array#*-}; t++)); do
  SLURMD_NODENAME=fake SLURM_ARRAY_TASK_ID=$t bash "$script" > "${output//%a/$t}" 2>&1 || rc=1
done
exit $rc
"""


def test_slurm_pl_submits_and_checks_task_logs(tmp_path, script_env):
    fake = write(tmp_path / "bin" / "sbatch", FAKE_SBATCH)
    fake.chmod(0o755)
    env = dict(script_env, PATH=f"{fake.parent}{os.pathsep}{script_env['PATH']}")
    run([UTILS / "slurm.pl", "JOB=1:3", "log/ok.JOB.log", "echo JOB > out.JOB"], env, cwd=tmp_path)
    assert [(tmp_path / f"out.{i}").read_text() for i in (1, 2, 3)] == ["1\n", "2\n", "3\n"]
    assert (tmp_path / "log/q/ok.sh").exists()

    proc = run([UTILS / "slurm.pl", "JOB=1:3", "log/bad.JOB.log", "bash", "-c", "[ JOB != 2 ]"], env,
               cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "1 / 3 failed" in proc.stderr and "log/bad.2.log" in proc.stderr


def test_slurm_pl_without_sbatch_is_a_clear_error(tmp_path, script_env):
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ["perl", "bash", "env"]:
        os.symlink(shutil.which(tool), bare / tool)
    proc = run([UTILS / "slurm.pl", "JOB=1:2", "log/x.JOB.log", "true"], dict(script_env, PATH=str(bare)),
               cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "sbatch not found" in proc.stderr and "--dry-run" in proc.stderr
