"""ST recipe scripts parse (bash -n) and the results table is built from score_st outputs."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import REPO, make_recipe

SCRIPTS = ["egs2/TEMPLATE/st1/st.sh", "egs2/libritrans/st1/run.sh", "egs2/must_c/st1/run.sh",
           "egs2/mini_synth/st1/run.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bash_syntax(script):
    proc = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("corpus", ["libritrans", "must_c", "mini_synth"])
def test_every_st_recipe_takes_the_same_init_choice(corpus, tmp_path, script_env):
    """--init asr|ssl|none picks the ST encoder's initialisation; anything else stops before any stage."""
    assert "--init" in (REPO / "egs2" / corpus / "st1/run.sh").read_text()
    recipe = make_recipe(tmp_path, corpus, "st1")
    assert (recipe / "asr.sh").exists()  # setup.sh links asr.sh: the asr initialisation trains through it
    run = subprocess.run(["bash", "run.sh", "--init", "wav2vec"], cwd=recipe, env=script_env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "--init is asr, ssl or none, not 'wav2vec'" in run.stderr
    assert not (recipe / "data").exists() and not (recipe / "exp").exists()


def test_st_sh_has_stages_3_to_7():
    text = (REPO / "egs2/TEMPLATE/st1/st.sh").read_text()
    for n in range(1, 8):
        assert f'run_stage {n} "' in text


def test_results_table(tmp_path):
    from chunkssl.fileio import run_cli
    from chunkssl.st.results import PROG, main

    def write(d, bleu, chrf, latency=None):
        d.mkdir(parents=True)
        rec = {"bleu": bleu, "chrf": chrf, "bleu_signature": "nrefs:1|bleu", "chrf_signature": "chrF2"}
        if latency:
            rec["latency"] = latency
        (d / "result.json").write_text(json.dumps(rec))

    write(tmp_path / "c640/full/score", 3.25, 20.04)
    write(tmp_path / "c640/simul/score", 2.5, 18.0, {"AL": 1200.0, "LAAL": 1300.0, "AL_CA": 1500.0,
                                                     "LAAL_CA": 1600.0})
    out = tmp_path / "RESULTS.md"
    assert main(["--exp", "exp/st", "--decodes", f"test:640:{tmp_path / 'c640'}", "--out", str(out)]) == 0
    assert "|test|640 ms|3.25|20.0|2.50|18.0|1200.0|1300.0|1500.0|1600.0|" in out.read_text()
    # without a full-utterance decode its columns read n/a; without a simultaneous one it is an error
    write(tmp_path / "c0/simul/score", 4.0, 21.0, {"AL": 5000.0, "LAAL": 5000.0})
    assert main(["--exp", "exp/st", "--decodes", f"test:0:{tmp_path / 'c0'}", "--out", str(out)]) == 0
    assert "|test|offline|n/a|n/a|4.00|21.0|5000.0|5000.0|n/a|n/a|" in out.read_text()
    missing = ["--exp", "exp/st", "--decodes", f"test:0:{tmp_path / 'missing'}", "--out", str(out)]
    assert run_cli(PROG, main, missing) == 2  # bad input: one error line, status 2
