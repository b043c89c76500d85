"""The asr2 (Codec-ASR) stages end to end on a tiny synthetic corpus: tokenizer -> codes -> ASR on codes ->
chunk-masked decoding of the codes and true streaming from audio (equal results) -> scores, bitrate, table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import make_recipe


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    return make_recipe(tmp_path, "mini_synth", "asr2")


TINY = ["--nj", "1", "--local-data-opts", "--num-utts 30 --seed 3", "--tokenizer", "tiny",
        "--fsq-train-opts", "--max_epoch 1 --num_workers 0", "--token-type", "char",
        "--asr-train-opts", "--max_epoch 1 --batch_size 4", "--asr-tag", "t",
        "--decode-chunks", "160", "--stream-chunks", "160"]


@pytest.mark.slow
def test_asr2_all_stages(recipe, script_env):
    env = dict(script_env, OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", "asr2.sh", *TINY], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    codes = recipe / "dump/tokens/tiny"
    for s in ("train", "dev", "test"):
        assert (codes / s / "codes.scp").stat().st_size > 0
    # bitrate of the codes, and their storage beside the fbank of the same utterances
    assert "| dump/tokens/tiny/test | fsq | 9.97 | 249.1 |" in (codes / "bitrate.md").read_text()
    exp = recipe / "exp/asr_t"
    config = (exp / "config.yaml").read_text()
    assert "frontend: token" in config and "input_layer: linear" in config and "init: codebook" in config
    # the chunk-masked decoding of the offline codes and true streaming from audio give the same text
    masked = (exp / "decode_test/offline_160/text").read_text()
    assert masked.count("\n") == 3
    assert (exp / "decode_test/stream_160/text").read_text() == masked
    timing = json.loads((exp / "decode_test/stream_160/timing.json").read_text())
    assert timing["tokenizer_lookahead_ms"] == 120  # conf/fsq/tiny.yaml: one block of kernel 3
    assert "| t | test | streaming | 160 |" in (exp / "RESULTS.md").read_text()
    assert (exp / "bitrate.md").exists()

    from chunkssl.codec.results import main as results_main

    out = recipe / "RESULTS.md"
    results_main(["--exp", f"fsq tiny={exp}@{codes / 'test'}", "--exp", f"fsq again={exp}@{codes / 'test'}",
                  "--set", "test", "--chunk", "160", "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| fsq")]
    assert len(rows) == 2 and "| fsq [8x5x5x5] | 249 |" in rows[0]
    cells = [c.strip() for c in rows[0].split("|")]
    assert cells[6] == "–" and cells[7] == cells[8]  # no offline decode; masked WER == streaming WER
