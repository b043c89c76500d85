"""Recipe tools of the asr1 stages: the token list and the RESULTS table/plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sentencepiece as spm

from chunkssl.asr.results import collect, plot, write_table
from chunkssl.bin.make_token_list import make_token_list
from chunkssl.fileio import DataError

TEXT = "u1 CALL JOHN AT FIVE\nu2 TURN LEFT\nu3 STOP\nu4 CALL MARY AT SIX\nu5 \n"


def test_bpe_token_list_is_espnet_shaped_and_covers_the_text(tmp_path):
    (tmp_path / "text").write_text(TEXT)
    tokens = make_token_list(tmp_path / "text", tmp_path / "bpe", "bpe", 25)
    assert tokens[0] == "<blank>" and tokens[1] == "<unk>" and tokens[-1] == "<sos/eos>"
    assert len(tokens) == len(set(tokens))
    assert (tmp_path / "bpe/tokens.txt").read_text().split("\n")[:-1] == tokens
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "bpe/bpe.model"))
    for line in TEXT.splitlines():
        words = line.split(maxsplit=1)[1:] or [""]
        pieces = sp.encode(words[0], out_type=str)
        assert all(p in tokens for p in pieces), pieces  # every training sentence is coded without <unk>


def test_char_token_list(tmp_path):
    (tmp_path / "text").write_text(TEXT)
    tokens = make_token_list(tmp_path / "text", tmp_path / "char", "char", 0)
    assert tokens[2] == "<space>" and set("CALJOHNTFIVE") <= set(tokens)
    (tmp_path / "empty").write_text("u1 \n")
    with pytest.raises(DataError, match="no transcripts"):
        make_token_list(tmp_path / "empty", tmp_path / "x", "char", 0)


def _decode(exp: Path, name: str, wer: float, rtf: float | None = None) -> None:
    d = exp / "decode_test" / name
    (d / "score").mkdir(parents=True)
    (d / "score/result.json").write_text(json.dumps({"metric": "WER", "error_rate": wer, "num_utts": 3}))
    if rtf is not None:
        (d / "timing.json").write_text(json.dumps({"rtf": rtf, "first_token_latency_s": {"mean": 0.5},
                                                   "token_emission_delay_s": {"mean": 0.25}}))


def test_results_table_and_plot(tmp_path):
    exp = tmp_path / "exp"
    _decode(exp, "offline_full", 10.0, 0.01)
    _decode(exp, "offline_1280", 12.5)
    _decode(exp, "offline_160", 20.0)
    _decode(exp, "stream_640", 15.0, 0.02)
    (exp / "decode_test/offline_320").mkdir()  # not scored: left out
    rows = collect(exp, "test")
    assert [(r["mode"], r["chunk"]) for r in rows] == [
        ("offline", "160"), ("offline", "1280"), ("offline", "full"), ("stream", "640")]
    write_table({"m": {"test": rows}}, tmp_path / "RESULTS.md", "./run.sh")
    table = (tmp_path / "RESULTS.md").read_text()
    assert table.startswith("Made by: `./run.sh`")
    assert "| m | test | simulated streaming | 160 | 3 | 20.00 | – | – | – |" in table
    assert "| m | test | offline | full | 3 | 10.00 | 0.0100 | 0.500 | 0.250 |" in table
    assert "| m | test | streaming | 640 | 3 | 15.00 | 0.0200 | 0.500 | 0.250 |" in table
    with open(tmp_path / "RESULTS.md", "a") as f:
        f.write("\n## Notes\nhand-written\n")
    write_table({"m": {"test": rows[:1]}}, tmp_path / "RESULTS.md", "./run.sh --stage 8")
    again = (tmp_path / "RESULTS.md").read_text()
    assert again.startswith("Made by: `./run.sh --stage 8`") and again.endswith("\n## Notes\nhand-written\n")
    assert "| 640 |" not in again
    plot({"m": {"test": rows}}, tmp_path / "wer.png")
    assert (tmp_path / "wer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
