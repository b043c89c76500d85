"""BLEU/chrF scoring and the score_st CLI: pairing by id, case sensitivity, plain files, latency log."""

from __future__ import annotations

import json

import pytest

from chunkssl.bin.score_st import main as score_st
from chunkssl.fileio import run_cli
from chunkssl.metrics.st import score_translations

REFS = ["Le chat est assis sur le tapis.", "Il fait beau aujourd'hui à Paris.", "Merci beaucoup."]


def test_perfect_and_case_sensitive_scores():
    perfect = score_translations(REFS, REFS)
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    assert "case:mixed" in perfect["bleu_signature"] and "tok:13a" in perfect["bleu_signature"]
    lower = score_translations(REFS, [r.lower() for r in REFS])
    assert lower["bleu"] < 100.0 and lower["chrf"] < 100.0
    partial = score_translations(REFS, ["Le chat est assis.", "", "Merci beaucoup."])
    assert 0.0 < partial["bleu"] < lower["bleu"] and partial["bleu_bp"] < 1.0
    with pytest.raises(ValueError, match="3 references but 2"):
        score_translations(REFS, REFS[:2])


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def test_cli_pairs_kaldi_text_by_id(tmp_path):
    ref = write(tmp_path / "ref", [f"u{i} {r}" for i, r in enumerate(REFS)])
    hyp_lines = ["u2 Merci beaucoup.", "u0 Le chat est assis.", "u1 Il fait beau à Paris."]
    hyp = write(tmp_path / "hyp", hyp_lines)
    assert score_st(["--ref", ref, "--hyp", hyp, "--out-dir", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    direct = score_translations(REFS, ["Le chat est assis.", "Il fait beau à Paris.", "Merci beaucoup."])
    assert res["bleu"] == pytest.approx(direct["bleu"]) and res["chrf"] == pytest.approx(direct["chrf"])
    assert "BLEU = " in (tmp_path / "out" / "result.txt").read_text()

    plain_ref, plain_hyp = write(tmp_path / "ref.fr", REFS), write(tmp_path / "hyp.fr", REFS)
    assert score_st(["--ref", plain_ref, "--hyp", plain_hyp, "--out-dir", str(tmp_path / "p"), "--plain"]) == 0
    assert json.loads((tmp_path / "p" / "result.json").read_text())["bleu"] == pytest.approx(100.0)


def test_cli_latency_log(tmp_path, capsys):
    ref = write(tmp_path / "ref", ["a un deux trois quatre", "b cinq six"])
    hyp = write(tmp_path / "hyp", ["a un deux trois quatre cinq six", "b cinq"])
    log = tmp_path / "lat.jsonl"
    log.write_text(json.dumps({"id": "a", "source_length": 1000, "delays": [200, 400, 600, 800, 1000, 1000],
                               "elapsed": [210, 420, 630, 840, 1050, 1060]}) + "\n"
                   + json.dumps({"id": "b", "source_length": 900, "delays": [450],
                                 "elapsed": [500]}) + "\n")
    out = str(tmp_path / "out")
    assert score_st(["--ref", ref, "--hyp", hyp, "--out-dir", out, "--latency-log", str(log)]) == 0
    lat = json.loads((tmp_path / "out" / "result.json").read_text())["latency"]
    # a: reference 4 words, hypothesis 6 -> AL 100, LAAL 1333.33/5 (see test_metrics_simul);
    # b: reference 2 words, one token at 450 ms -> AL = LAAL = 450
    assert lat["AL"] == pytest.approx((100.0 + 450.0) / 2)
    assert lat["LAAL"] == pytest.approx((1333.3333 / 5 + 450.0) / 2, abs=1e-3)
    assert lat["AL_CA"] > lat["AL"] and lat["unit"] == "word"
    assert "LAAL = " in (tmp_path / "out" / "result.txt").read_text()

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "source_length": 1000, "delays": [200]}) + "\n")
    assert run_cli("score_st", score_st, ["--ref", ref, "--hyp", hyp, "--out-dir", out, "--latency-log", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "'a' has 1 delays but its hypothesis has 6 words" in err
    bad.write_text("{not json\n")
    assert run_cli("score_st", score_st, ["--ref", ref, "--hyp", hyp, "--out-dir", out, "--latency-log", str(bad)]) == 2
    assert "bad.jsonl:1: expected a JSON object" in capsys.readouterr().err


def test_cli_missing_hypothesis(tmp_path, capsys):
    ref = write(tmp_path / "ref", ["a un", "b deux"])
    hyp = write(tmp_path / "hyp", ["a un"])
    assert run_cli("score_st", score_st, ["--ref", ref, "--hyp", hyp, "--out-dir", str(tmp_path / "o")]) == 2
    assert "'b'" in capsys.readouterr().err
    assert score_st(["--ref", ref, "--hyp", hyp, "--out-dir", str(tmp_path / "o"), "--allow-missing"]) == 0
    assert json.loads((tmp_path / "o" / "result.json").read_text())["missing_hyp"] == ["b"]
