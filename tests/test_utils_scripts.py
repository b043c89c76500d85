"""Kaldi-style helper scripts in utils/: option parsing, job runners and data-dir tools."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import UTILS


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


# ---------------------------------------------------------------- split / spk2utt


def load_split_scp():
    spec = importlib.util.spec_from_file_location("split_scp", UTILS / "split_scp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_scp_pure_layouts():
    split_scp = load_split_scp()
    assert split_scp.balanced_sizes(10, 3) == [4, 3, 3]
    assert split_scp.balanced_sizes(3, 3) == [1, 1, 1]
    # Groups of 3,1,1,5,2 lines: the cut nearest the middle (6 of 12) falls after 5 lines.
    assert split_scp.group_boundaries([3, 1, 1, 5, 2], 2) == [0, 3, 5]
    # A big first group still leaves one group for each later part.
    assert split_scp.group_boundaries([5, 1, 1, 1], 3) == [0, 1, 2, 4]


def test_split_scp_round_trip_and_speakers(tmp_path, script_env):
    data = make_data_dir(tmp_path / "d", {"a": 4, "b": 1, "c": 2, "d": 3})
    outs = [tmp_path / f"split/wav.{i}.scp" for i in (1, 2, 3)]
    run([UTILS / "split_scp.py", data / "wav.scp", *outs], script_env)
    assert [len(lines(o)) for o in outs] == [4, 3, 3]
    assert sum((lines(o) for o in outs), []) == lines(data / "wav.scp")

    run([UTILS / "split_scp.py", "--utt2spk", data / "utt2spk", data / "wav.scp", *outs], script_env)
    assert sum((lines(o) for o in outs), []) == lines(data / "wav.scp")
    speakers = [{line.split()[0].split("-")[0] for line in lines(o)} for o in outs]
    assert all(speakers) and sum(len(s) for s in speakers) == 4, speakers

    proc = run([UTILS / "split_scp.py", data / "spk2gender", *[tmp_path / f"x.{i}" for i in range(5)]],
               script_env, check=False)
    assert proc.returncode != 0 and "4 lines" in proc.stderr


def test_utt2spk_spk2utt_round_trip(tmp_path, script_env):
    data = make_data_dir(tmp_path / "d", {"a": 2, "b": 3})
    spk2utt = run([UTILS / "utt2spk_to_spk2utt.py", data / "utt2spk"], script_env).stdout
    assert spk2utt == "a a-1 a-2\nb b-1 b-2 b-3\n"
    back = run([UTILS / "spk2utt_to_utt2spk.py"], script_env, input=spk2utt).stdout
    assert back == (data / "utt2spk").read_text()
    proc = run([UTILS / "utt2spk_to_spk2utt.py"], script_env, input="u1 s1\nu1 s2\n", check=False)
    assert proc.returncode != 0 and "'u1'" in proc.stderr


def test_filter_scp(tmp_path, script_env):
    data = make_data_dir(tmp_path / "d", {"a": 2, "b": 2})
    ids = write(tmp_path / "ids", "b-2\na-1 extra\n")
    assert run([UTILS / "filter_scp.py", ids, data / "text"], script_env).stdout == \
        "a-1 words of a-1\nb-2 words of b-2\n"
    assert run([UTILS / "filter_scp.py", "--exclude", ids], script_env,
               input=(data / "utt2spk").read_text()).stdout == "a-2 a\nb-1 b\n"


# ---------------------------------------------------------------- fix_data_dir.sh


def test_fix_data_dir_cleans_messy_dir(tmp_path, script_env):
    d = tmp_path / "messy"
    write(d / "wav.scp", "u3 /w/u3.wav\nu1 /w/u1.wav\nu2 sox /w/u2.flac -t wav - |\nu1 /w/dup.wav\n"
                         "u4 /w/u4.wav\nu6 /w/u6.wav\n")
    write(d / "text", "u1 hello world\nu2 foo\nu3\nu4 bar\nu5 baz\nu2 other\n")
    write(d / "utt2spk", "u2 s1\nu1 s1\nu3 s2\nu4 s2\nu5 s2\nu6 s3\n")
    write(d / "spk2gender", "s3 m\ns1 m\ns2 f\n")
    original = {p.name: p.read_text() for p in d.iterdir()}
    proc = run([UTILS / "fix_data_dir.sh", d], script_env)

    assert lines(d / "wav.scp") == ["u1 /w/u1.wav", "u2 sox /w/u2.flac -t wav - |", "u4 /w/u4.wav"]
    assert lines(d / "text") == ["u1 hello world", "u2 foo", "u4 bar"]
    assert lines(d / "utt2spk") == ["u1 s1", "u2 s1", "u4 s2"]
    assert lines(d / "spk2utt") == ["s1 u1 u2", "s2 u4"]
    assert lines(d / "spk2gender") == ["s1 m", "s2 f"]
    assert {p.name: p.read_text() for p in (d / ".backup").iterdir()} == original
    out = proc.stdout
    assert "kept 3 of 6 utterances" in out
    assert "empty transcript" in out and "u3" in out
    assert "duplicate" in out and "(u1)" in out and "(u2)" in out
    assert "(u5)" in out and "(u6)" in out

    # A clean dir stays as it is.
    before = {p.name: p.read_text() for p in d.iterdir() if p.is_file()}
    assert "kept all 3 utterances" in run([UTILS / "fix_data_dir.sh", d], script_env).stdout
    assert {p.name: p.read_text() for p in d.iterdir() if p.is_file()} == before


def test_fix_data_dir_segments_and_empty_result(tmp_path, script_env):
    d = tmp_path / "seg"
    write(d / "wav.scp", "r1 /w/r1.wav\nr2 /w/r2.wav\nr3 /w/r3.wav\n")
    write(d / "segments", "r1-b r1 1.5 3.0\nr1-a r1 0.0 1.5\nr2-a r2 0 2\nr4-a r4 0 1\nr1-c r1 2 1\n")
    write(d / "text", "r1-a x\nr1-b y\nr2-a z\nr4-a w\nr1-c q\n")
    write(d / "utt2spk", "r1-a r1\nr1-b r1\nr2-a r2\nr4-a r4\nr1-c r1\n")
    proc = run([UTILS / "fix_data_dir.sh", d], script_env)
    assert lines(d / "segments") == ["r1-a r1 0.0 1.5", "r1-b r1 1.5 3.0", "r2-a r2 0 2"]
    assert lines(d / "wav.scp") == ["r1 /w/r1.wav", "r2 /w/r2.wav"]
    assert "recording is not in wav.scp (r4-a)" in proc.stdout and "malformed" in proc.stdout

    e = tmp_path / "nothing"
    write(e / "wav.scp", "a /w/a.wav\n")
    write(e / "utt2spk", "b s\n")
    proc = run([UTILS / "fix_data_dir.sh", e], script_env, check=False)
    assert proc.returncode == 1 and "unchanged" in proc.stderr
    assert lines(e / "wav.scp") == ["a /w/a.wav"] and not (e / "spk2utt").exists()


# ---------------------------------------------------------------- subset / combine


def test_subset_data_dir_selections(tmp_path, script_env):
    src = make_data_dir(tmp_path / "src", {"a": 3, "b": 3, "c": 3})
    sub = UTILS / "subset_data_dir.sh"

    run([sub, "--first", "4", src, tmp_path / "first"], script_env)
    assert lines(tmp_path / "first/utt2spk") == ["a-1 a", "a-2 a", "a-3 a", "b-1 b"]
    assert lines(tmp_path / "first/spk2utt") == ["a a-1 a-2 a-3", "b b-1"]
    assert lines(tmp_path / "first/spk2gender") == ["a f", "b f"]
    assert lines(tmp_path / "first/wav.scp")[-1] == "b-1 /corpus/b-1.wav"

    write(tmp_path / "ids", "c-2\na-1 x\nnot-there\n")
    proc = run([sub, "--utt-list", tmp_path / "ids", src, tmp_path / "ul"], script_env)
    assert lines(tmp_path / "ul/text") == ["a-1 words of a-1", "c-2 words of c-2"]
    assert "1 of the 3 ids" in proc.stderr

    write(tmp_path / "spks", "b\n")
    run([sub, "--spk-list", tmp_path / "spks", src, tmp_path / "sl"], script_env)
    assert lines(tmp_path / "sl/spk2utt") == ["b b-1 b-2 b-3"]

    run([sub, "--shortest", "3", src, tmp_path / "short"], script_env)
    assert lines(tmp_path / "short/utt2dur") == ["a-1 1.5", "b-1 1.5", "c-1 1.5"]

    picks = []
    for seed, dest in [("5", "r1"), ("5", "r2")]:
        run([sub, "--seed", seed, src, "4", tmp_path / dest], script_env)
        picks.append(lines(tmp_path / dest / "utt2spk"))
    assert picks[0] == picks[1] and len(picks[0]) == 4 and picks[0] == sorted(picks[0])
    assert set(picks[0]) <= set(lines(src / "utt2spk"))

    proc = run([sub, "--first", "10", src, tmp_path / "big"], script_env, check=False)
    assert proc.returncode == 1 and "only 9" in proc.stderr
    proc = run([sub, "--first", "2", "--last", "2", src, tmp_path / "two"], script_env, check=False)
    assert proc.returncode == 1 and "exactly one" in proc.stderr


def test_subset_keeps_only_used_recordings(tmp_path, script_env):
    d = tmp_path / "seg"
    write(d / "wav.scp", "r1 /w/r1.wav\nr2 /w/r2.wav\n")
    write(d / "segments", "r1-a r1 0 1\nr1-b r1 1 2\nr2-a r2 0 2\n")
    write(d / "utt2spk", "r1-a r1\nr1-b r1\nr2-a r2\n")
    run([UTILS / "subset_data_dir.sh", "--first", "2", d, tmp_path / "sub"], script_env)
    assert lines(tmp_path / "sub/segments") == ["r1-a r1 0 1", "r1-b r1 1 2"]
    assert lines(tmp_path / "sub/wav.scp") == ["r1 /w/r1.wav"]


def test_combine_data(tmp_path, script_env):
    a = make_data_dir(tmp_path / "a", {"a": 2})
    b = make_data_dir(tmp_path / "b", {"b": 2})
    (b / "utt2dur").unlink()
    proc = run([UTILS / "combine_data.sh", tmp_path / "ab", b, a], script_env)
    ab = tmp_path / "ab"
    assert lines(ab / "utt2spk") == ["a-1 a", "a-2 a", "b-1 b", "b-2 b"]
    assert lines(ab / "spk2utt") == ["a a-1 a-2", "b b-1 b-2"]
    assert len(lines(ab / "wav.scp")) == 4 and len(lines(ab / "text")) == 4
    assert not (ab / "utt2dur").exists() and "utt2dur is missing" in proc.stderr

    proc = run([UTILS / "combine_data.sh", tmp_path / "dup", a, make_data_dir(tmp_path / "a2", {"a": 1})],
               script_env, check=False)
    assert proc.returncode == 1
    assert "'a-1'" in proc.stderr and "prefix" in proc.stderr
    assert not (tmp_path / "dup").exists()

    # A source with segments next to one without: the latter gets whole-recording segments.
    s = tmp_path / "s"
    write(s / "wav.scp", "r9 /w/r9.wav\n")
    write(s / "segments", "r9-x r9 0 1\nr9-y r9 1 2.5\n")
    write(s / "utt2spk", "r9-x z\nr9-y z\n")
    write(s / "text", "r9-x hi\nr9-y there\n")
    write(s / "utt2dur", "r9-x 1\nr9-y 1.5\n")
    run([UTILS / "combine_data.sh", tmp_path / "as", a, s], script_env)
    assert lines(tmp_path / "as/segments") == ["a-1 a-1 0 1.5", "a-2 a-2 0 2.5", "r9-x r9 0 1", "r9-y r9 1 2.5"]
    assert lines(tmp_path / "as/wav.scp") == ["a-1 /corpus/a-1.wav", "a-2 /corpus/a-2.wav", "r9 /w/r9.wav"]
