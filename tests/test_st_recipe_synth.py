"""egs2/mini_synth/st1 end to end with --quick: corpus, ASR, ASR-initialised ST, both policies, RESULTS."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, make_recipe


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, script_env_module) -> tuple[Path, subprocess.CompletedProcess]:
    recipe = make_recipe(tmp_path_factory.mktemp("st_synth"), "mini_synth", "st1")
    run = subprocess.run(["bash", "run.sh", "--quick"], cwd=recipe, env=script_env_module, capture_output=True,
                         text=True)
    return recipe, run


@pytest.fixture(scope="module")
def script_env_module() -> dict:
    import os
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(REPO / "utils"), env.get("PATH", "")])
    return env


def test_bash_syntax():
    for script in ("run.sh", "local/data.sh"):
        proc = subprocess.run(["bash", "-n", str(REPO / "egs2/mini_synth/st1" / script)], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_quick_run_writes_results(quick_run):
    recipe, run = quick_run
    assert run.returncode == 0, run.stderr[-3000:]
    # the ST encoder starts from the English ASR encoder trained in the same run
    log = (recipe / "exp/st_mini_synth_asr/train.log").read_text()
    assert "Loading pretrained params from exp/asr_mini_synth_st/valid.loss.ave.pth:encoder:encoder" in log
    for split in ("train", "dev", "test"):
        text_fr = (recipe / "data" / split / "text.fr").read_text(encoding="utf-8").splitlines()
        assert len(text_fr) == len((recipe / "data" / split / "text.en").read_text().splitlines()) > 0
    exp = recipe / "exp/st_mini_synth_asr"
    results = json.loads((exp / "RESULTS.json").read_text())
    rows = {(r["policy"], r["chunk_ms"]): r for r in results["rows"]}
    assert set(rows) == {("full", 0), ("la", 640), ("la", 0), ("waitk", 640)}
    for (policy, _), row in rows.items():
        assert row["init"] == "asr" and 0 <= row["bleu"] <= 100 and 0 <= row["chrf"] <= 100
        if policy != "full":
            assert all(math.isfinite(row[k]) for k in ("al", "laal", "laal_ca"))
            assert row["laal_ca"] >= row["laal"]  # compute time only adds
    # with the whole source before the single decoding step, the lag is the source itself
    assert rows[("la", 0)]["al"] >= rows[("la", 640)]["al"]
    md = (exp / "RESULTS.md").read_text(encoding="utf-8")
    assert "./run.sh --quick" in md and "|test|640 ms waitk|" in md and "| total" in md
    assert not (recipe / "RESULTS.md").exists()  # a run writes under exp/, never the recipe's tracked table


@pytest.mark.slow
def test_quick_rerun_skips_finished_decodes(quick_run, script_env_module):
    recipe, run = quick_run
    assert run.returncode == 0, run.stderr[-3000:]
    again = subprocess.run(["bash", "run.sh", "--quick", "--stage", "6", "--stop-stage", "6"], cwd=recipe,
                           env=script_env_module, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "decode_test_chunk640/simul_waitk is up to date" in again.stderr
    assert "decode_test_chunk0/full is up to date" in again.stderr


def test_results_json_and_policy_tables(tmp_path):
    from chunkssl.fileio import run_cli
    from chunkssl.st.results import PROG, main

    def score(sub, bleu, lat=None):
        (tmp_path / sub).mkdir(parents=True)
        rec = {"bleu": bleu, "chrf": 2 * bleu, "bleu_signature": "b", "chrf_signature": "c"}
        (tmp_path / sub / "result.json").write_text(json.dumps(rec | ({"latency": lat} if lat else {})))

    lat = {"AL": 900.0, "LAAL": 1000.0, "AL_CA": 950.04, "LAAL_CA": 1100.0}
    score("c640/simul/score", 40.0, lat)
    score("c640/simul_waitk/score", 30.0, lat)
    score("c0/simul/score", 50.0, lat)
    score("c0/full/score", 55.0)
    out, js = tmp_path / "RESULTS.md", tmp_path / "RESULTS.json"
    (tmp_path / "RESULTS.md").write_text("old\n\n## Notes\n\nby hand\n")
    argv = ["--exp", "e", "--decodes", f"test:640:{tmp_path / 'c640'}", f"test:0:{tmp_path / 'c0'}", "--out",
            str(out), "--policies", "la=simul", "waitk=simul_waitk", "--json", str(js), "--init", "asr"]
    assert main(argv) == 0
    rows = {(r["policy"], r["chunk_ms"]): r for r in json.loads(js.read_text())["rows"]}
    assert set(rows) == {("la", 640), ("waitk", 640), ("la", 0), ("full", 0)}  # no wait-k decode at 0
    assert rows[("waitk", 640)] == {"init": "asr", "set": "test", "policy": "waitk", "chunk_ms": 640,
                                   "bleu": 30.0, "chrf": 60.0, "al": 900.0, "laal": 1000.0,
                                   "al_ca": 950.0, "laal_ca": 1100.0}
    assert rows[("full", 0)]["laal"] is None and rows[("full", 0)]["bleu"] == 55.0
    md = out.read_text()
    assert "|test|640 ms waitk|n/a|n/a|30.00|60.0|" in md and "|test|offline|55.00|110.0|50.00|" in md
    assert md.endswith("## Notes\n\nby hand\n")  # hand-written notes survive
    assert run_cli(PROG, main, argv[:-4] + ["--policies", "la"]) == 2  # not NAME=SUBDIR
