"""bench/ssl_data.py at its smallest (real Libri-Trans speech, tiny config, one repetition): every figure is
in its JSON and sane."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, shared_corpus


def test_bench_ssl_data_writes_every_figure(tmp_path):
    shared_corpus("libritrans")
    out = tmp_path / "ssl_data.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ssl_data.py"), "--num-utts", "6", "--repeats", "1", "--warmup", "0",
         "--config", str(REPO / "conf/ssl/chunk_conformer_tiny.yaml"), "--loader-repeats", "1", "--loader-batch", "2",
         "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert "| form |" in proc.stdout and "A / B per repetition, wall" in proc.stdout
    assert res["data"]["recordings"] == 6 and 0 < res["data"]["hours"] < 0.1

    disk = res["disk"]
    audio, fbank = disk["audio (FLAC as given)"], disk["fbank (dumped)"]
    codes, manifests = disk["codes (dumped, FSQ 6m)"], disk["raw manifests"]
    for form in disk.values():
        assert form["bytes"] > 0 and form["bytes_per_hour"] > 0
        assert abs(form["tb_60k"] - form["bytes_per_hour"] * 60_000 / 1e12) < 1e-9
    # float32 x 80 per 10 ms = 115.2 MB/h (a little less: the last 25 ms window of each utterance) plus
    # headers; FLAC of 16-bit speech is about half of it
    assert 110e6 < fbank["bytes_per_hour"] < 120e6
    assert fbank["bytes_per_hour"] > audio["bytes_per_hour"] > codes["bytes_per_hour"] > manifests["bytes_per_hour"]
    assert codes["dtype"] == "int16" and codes["channels"] == 8  # 6m: [7] * 8
    assert 25 * 3600 * 16 <= codes["bytes_per_hour"] < 3e6  # 16 bytes per 40 ms token, plus headers

    (step,) = res["steps"]
    assert step["same_initial_weights"] and step["max_abs_loss_diff"] < 1e-4
    assert step["batch_utts"] >= 1 and step["batch_seconds"] > 0
    for part in ("online", "dumped", "frontend", "tokenizer"):
        assert step["ms"][part]["n"] == 1 and step["ms"][part]["median"] > 0
    for figure in ("ratio_online_dumped", "ratio_online_dumped_cpu", "frontend_plus_tokenizer_over_dumped",
                   "frontend_plus_tokenizer_over_dumped_cpu"):
        assert step[figure]["median"] > 0, figure

    loader = res["loader"]
    assert loader["hours_per_pass"] > 0
    for kind in ("raw", "dumped"):
        assert set(loader[kind]) == {"1", "2", "4"}
        for figure in loader[kind].values():
            assert figure["hours_per_s"] > 0
