"""The issue-13 replication recipe (egs2/synth_pool): run_all.sh --quick end to end, then a rerun that trains
nothing; and (fast) the results collector chunkssl.bin.replication_results on hand-made decodes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA, make_recipe, shared_corpus

SCHEMA = {"model", "targets", "cada", "chunk_ms", "decoding", "wer", "cer", "set"}


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_quick_replication_runs_end_to_end_and_a_rerun_trains_nothing(tmp_path, script_env):
    for corpus in ("fsdd", "yesno", "mini_an4", "libritrans"):  # the pool takes every real recording
        shared_corpus(corpus)
    for task in ("ssl1", "asr1"):
        recipe = make_recipe(tmp_path, "synth_pool", task)
    root = recipe.parent
    for name in ("run_all.sh", "timed.sh"):
        shutil.copy(REPO / "egs2/synth_pool" / name, root / name)
    env = {**script_env, "CHUNKSSL_SHARED_DATA": str(SHARED_DATA), "OMP_NUM_THREADS": "1"}

    r = _run(["bash", "run_all.sh", "--quick"], root, env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    out = root / "asr1/exp/replication"
    rows = json.loads((out / "RESULTS.json").read_text())["rows"]
    assert rows
    for row in rows:
        assert set(row) == SCHEMA, row
        assert row["chunk_ms"] in (160, 320, 640, 1280, "full") and row["decoding"] in ("simulated", "streaming")
        assert row["set"] in ("unseen_voices", "libritrans_test") and isinstance(row["cada"], bool)
        assert len(row["wer"]) == len(row["cer"]) == 1  # one seed in --quick
        assert all(isinstance(x, float) and x >= 0 for x in row["wer"] + row["cer"]), row
    models = {(r["model"], r["targets"], r["cada"]) for r in rows if r["set"] == "unseen_voices"}
    assert models == {("scratch", "none", False), ("chunk_ssl", "fsq_6m", True), ("chunk_ssl", "fsq_1k", True),
                      ("chunk_ssl", "bestrq", True), ("full_context", "fsq_6m", False)}
    for who in models:  # every row has true streaming at 640 ms and offline decoding
        mine = {(r["decoding"], r["chunk_ms"]) for r in rows if (r["model"], r["targets"], r["cada"]) == who
                and r["set"] == "unseen_voices"}
        assert {("streaming", 640), ("simulated", "full"), ("simulated", 320)} <= mine, (who, mine)
    assert {r["model"] for r in rows if r["set"] == "libritrans_test"} == {"scratch", "chunk_ssl"}
    page = (out / "RESULTS.md").read_text()
    assert "Made by: `cd egs2/synth_pool && ./run_all.sh --quick`" in page and "### Acceptance targets" in page
    assert "| asr1 | finetune_decode_chunk_6m_s1 |" in page and "| ssl1 | train_full_6m |" in page
    assert (out / "wer_vs_chunk.png").stat().st_size > 0
    assert "run_all.sh --quick: ssl1" in r.stdout

    # A rerun of the finished run trains nothing: no checkpoint is rewritten and every row is skipped.
    ckpts = {p: p.stat().st_mtime_ns for p in root.glob("*/exp/*/*epoch.pth")}
    assert len(ckpts) >= 11 + 2  # 4 SSL rows + 7 fine-tunings, and the two FSQ tokenizers
    r = _run(["bash", "run_all.sh", "--quick"], root, env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/exp/*/*epoch.pth")} == ckpts
    assert r.stderr.count("is done (exp/") == 4 + 7, r.stderr[-3000:]
    assert "already trained" in r.stderr

    # Another size in the same tree is refused, not mixed in.
    r = _run(["bash", "run_all.sh", "--demo"], root, env)
    assert r.returncode == 1 and "holds a --quick run" in r.stderr


def _decode(exp: Path, set_name: str, name: str, hyps: dict[str, str]) -> None:
    d = exp / f"decode_{set_name}" / name
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{u} {h}\n" for u, h in hyps.items()))


def test_replication_results_means_spread_and_targets(tmp_path):
    """Three seeds of scratch and of the main row, one of full context: WER/CER per seed, the checks."""
    refs = {"u1": "A B C D", "u2": "E F G H"}
    (tmp_path / "fb/test").mkdir(parents=True)
    (tmp_path / "fb/test/text").write_text("".join(f"{u} {t}\n" for u, t in refs.items()))
    lines = ["model\ttargets\tcada\tset\tseed\texp\tref"]
    # scratch: 2, 3 and 4 word errors of 8 per seed; chunk_ssl: 0, 1, 0 errors; full context: 2 errors
    wrong = {"scratch": [2, 3, 4], "chunk_ssl": [0, 1, 0], "full_context": [2]}
    for model, errors in wrong.items():
        for seed, n in enumerate(errors, 1):
            exp = tmp_path / f"exp/{model}_s{seed}"
            words = " ".join(refs["u1"].split() + refs["u2"].split())
            hyp = ["X"] * n + words.split()[n:]
            for name in ("offline_320", "stream_640", "offline_160"):
                _decode(exp, "test", name, {"u1": " ".join(hyp[:4]), "u2": " ".join(hyp[4:])})
            lines.append(f"{model}\t{'none' if model == 'scratch' else 'fsq_6m'}\t"
                         f"{'true' if model == 'chunk_ssl' else 'false'}\tunseen_voices\t{seed}\texp/{model}_s{seed}\ttest")
    (tmp_path / "rows.tsv").write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "chunkssl.bin.replication_results", "--manifest", "rows.tsv",
                        "--fbank-dir", "fb", "--out-dir", "out", "--command", "./run.sh"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "out/RESULTS.json").read_text())["rows"]
    assert all(set(row) == SCHEMA for row in rows)
    by = {(r["model"], r["decoding"], r["chunk_ms"]): r for r in rows}
    assert by[("scratch", "streaming", 640)]["wer"] == [25.0, 37.5, 50.0]
    assert by[("chunk_ssl", "simulated", 320)]["wer"] == [0.0, 12.5, 0.0]
    # two one-letter words substituted by "X": two character errors of 8 letters + 6 spaces
    assert by[("full_context", "simulated", 160)]["cer"] == [pytest.approx(200 / 14)]
    checks = json.loads((tmp_path / "out/details.json").read_text())["acceptance"]
    assert [c["held"] for c in checks] == [True, True, True, True]
    assert "HELD" in r.stdout and "MISSED" not in r.stdout
    page = (tmp_path / "out/RESULTS.md").read_text()
    assert "| scratch | none | no | 3 | WER | 37.5 ± 12.5 (25.0–50.0) | 37.5 ± 12.5 (25.0–50.0) | – |" in page


def test_replication_results_reports_a_missed_target_and_a_bad_manifest(tmp_path):
    (tmp_path / "fb/test").mkdir(parents=True)
    (tmp_path / "fb/test/text").write_text("u1 A B\n")
    lines = ["model\ttargets\tcada\tset\tseed\texp\tref"]
    for model, hyp in (("scratch", "A X"), ("chunk_ssl", "A X")):  # equal: no gain
        _decode(tmp_path / f"exp/{model}", "test", "stream_640", {"u1": hyp})
        lines.append(f"{model}\t{'none' if model == 'scratch' else 'fsq_6m'}\tfalse\tunseen_voices\t1\texp/{model}\ttest")
    (tmp_path / "rows.tsv").write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "chunkssl.bin.replication_results", "--manifest", "rows.tsv", "--fbank-dir", "fb",
           "--out-dir", "out"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "MISSED" in r.stdout and "not measured" in (tmp_path / "out/RESULTS.md").read_text()
    (tmp_path / "rows.tsv").write_text("model\texp\nscratch\texp/scratch\n")
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and "rows.tsv: expected a header with the columns" in r.stderr
