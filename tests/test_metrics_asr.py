"""WER/CER: hand-checked counts and alignments, empty texts, report formats, score_asr CLI id handling."""

from __future__ import annotations

import json
import random

import jiwer
import pytest

from chunkssl.bin.score_asr import main as score_asr
from chunkssl.fileio import run_cli
from chunkssl.metrics.asr import format_alignment, score_pairs, tokenize


def test_tokenize_words_and_chars():
    assert tokenize("  the  cat ") == ["the", "cat"]
    assert tokenize("ab  c", "char") == ["a", "b", "<space>", "c"]
    assert tokenize("", "char") == []
    with pytest.raises(ValueError, match="unknown scoring unit"):
        tokenize("a", "phone")


def test_counts_and_alignment_of_hand_made_utterances():
    s = score_pairs([("u1", "the cat sat on the mat", "The cat sat the mat now"),  # S, D, I
                     ("u2", "", "uh"),  # empty reference: one insertion, no rate
                     ("u3", "a b", ""),  # empty hypothesis: two deletions
                     ("u4", "", "")])
    u1, u2, u3, u4 = s.utts
    assert (u1.hits, u1.substitutions, u1.deletions, u1.insertions) == (4, 1, 1, 1)  # case-sensitive "The"
    assert u1.errors == 3 and u1.error_rate == pytest.approx(50.0)
    assert [e.op for e in u1.edits] == ["S", "C", "C", "D", "C", "C", "I"]
    assert (u2.insertions, u2.errors, u2.error_rate) == (1, 1, None)
    assert (u3.deletions, u3.error_rate) == (2, 100.0)
    assert (u4.errors, u4.error_rate, u4.edits) == (0, None, ())
    assert s.ref_tokens == 8 and s.total("errors") == 6
    assert s.error_rate == pytest.approx(100 * 6 / 8)
    assert s.sentence_errors == 3
    assert format_alignment(u1) == ("id: (u1)\n"
                                    "Scores: (#C #S #D #I) 4 1 1 1\n"
                                    "REF:  the cat sat on the mat ***\n"
                                    "HYP:  The cat sat ** the mat now\n"
                                    "Eval: S           D          I\n")


def test_cer_counts_spaces_as_tokens():
    s = score_pairs([("u", "ab cd", "abcd")], "char")
    (u,) = s.utts
    assert len(u.ref) == 5 and u.deletions == 1 and u.errors == 1 and s.metric == "CER"


def test_corpus_rate_agrees_with_jiwer_on_random_texts():
    rng = random.Random(0)
    vocab = "a b c d e".split()
    refs = [" ".join(rng.choices(vocab, k=rng.randint(1, 8))) for _ in range(30)]
    hyps = [" ".join(rng.choices(vocab, k=rng.randint(0, 8))) for _ in range(30)]
    s = score_pairs([(str(i), r, h) for i, (r, h) in enumerate(zip(refs, hyps))])
    assert s.error_rate == pytest.approx(100 * jiwer.wer(refs, hyps))
    for u in s.utts:  # each utterance's own counts give a minimum edit distance alignment
        assert u.hits + u.substitutions + u.deletions == len(u.ref)
        assert u.hits + u.substitutions + u.insertions == len(u.hyp)


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def test_cli_writes_result_txt_and_json(tmp_path, capsys):
    ref = write(tmp_path / "ref", ["u1 the cat sat", "u2 hello", "u3"])
    hyp = write(tmp_path / "hyp", ["u2 hello", "u1 the bat sat down", "u3 oh"])  # any order
    assert score_asr(["--ref", ref, "--hyp", hyp, "--out-dir", str(tmp_path / "out"), "--name", "test"]) == 0
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    assert (res["metric"], res["num_utts"], res["ref_tokens"]) == ("WER", 3, 4)
    assert (res["substitutions"], res["deletions"], res["insertions"], res["errors"]) == (1, 0, 2, 3)
    assert res["error_rate"] == pytest.approx(75.0)
    assert [u["id"] for u in res["utterances"]] == ["u1", "u2", "u3"]  # reference order
    assert res["utterances"][2]["error_rate"] is None
    txt = (tmp_path / "out" / "result.txt").read_text()
    assert "|test|3|4|75.0|25.0|0.0|50.0|75.0|66.7|" in txt
    assert "%WER 75.00 [ 3 / 4, 2 ins, 0 del, 1 sub ]" in txt
    assert "REF:  the cat sat ****\nHYP:  the bat sat down\n" in txt
    assert "WER 75.00" in capsys.readouterr().out

    assert score_asr(["--ref", ref, "--hyp", hyp, "--out-dir", str(tmp_path / "cer"), "--cer"]) == 0
    res = json.loads((tmp_path / "cer" / "result.json").read_text())
    assert res["metric"] == "CER" and res["ref_tokens"] == len("the cat sat") + len("hello")


def test_cli_missing_and_extra_ids(tmp_path, capsys):
    ref = write(tmp_path / "ref", ["u1 a b", "u2 c"])
    out = str(tmp_path / "out")
    only_u1 = write(tmp_path / "hyp1", ["u1 a b"])
    assert run_cli("score_asr", score_asr, ["--ref", ref, "--hyp", only_u1, "--out-dir", out]) == 2
    err = capsys.readouterr().err
    assert "no hypothesis for 1 utterance" in err and "'u2'" in err and "--allow-missing" in err
    assert not (tmp_path / "out").exists()

    assert score_asr(["--ref", ref, "--hyp", only_u1, "--out-dir", out, "--allow-missing"]) == 0
    assert "scored as empty: 'u2'" in capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    assert res["missing_hyp"] == ["u2"] and res["deletions"] == 1 and res["errors"] == 1

    extra = write(tmp_path / "hyp2", ["u1 a b", "u2 c", "u9 z"])
    assert run_cli("score_asr", score_asr, ["--ref", ref, "--hyp", extra, "--out-dir", out, "--allow-missing"]) == 2
    assert "not in" in (err := capsys.readouterr().err) and "'u9'" in err

    dup = write(tmp_path / "hyp3", ["u1 a b", "u1 a", "u2 c"])
    assert run_cli("score_asr", score_asr, ["--ref", ref, "--hyp", dup, "--out-dir", out]) == 2
    assert "'u1' appears more than once" in capsys.readouterr().err

    assert run_cli("score_asr", score_asr, ["--ref", str(tmp_path / "nope"), "--hyp", dup, "--out-dir", out]) == 2
    assert "no such file" in capsys.readouterr().err
