"""The FSDD asr1 recipe end to end on the real corpus (slow): data prep, fbank, whole-word units, training
on the full train split, offline and true streaming decoding of the official test split, scoring; the
WER targets of issue 6 (offline <= 5 %, streaming at 640 ms <= 8 %) must hold.

Fewer epochs than the recipe's config (8 instead of 15) and no chunk-mask sweep keep it to a few minutes
on two CPU cores; the thresholds are the real ones. Also (fast): the segmenter of the FSDD low-resource
pre-training data (egs2/fsdd/ssl1/local/cut_segments.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA, make_recipe, shared_corpus

EXP = "exp/asr_chunk_conformer_fsdd"


def _score(recipe: Path, decode: str) -> dict:
    return json.loads((recipe / EXP / "decode_test" / decode / "score" / "result.json").read_text())


@pytest.mark.slow
def test_fsdd_full_train_meets_offline_and_streaming_wer_targets(tmp_path, script_env):
    shared_corpus("fsdd")
    recipe = make_recipe(tmp_path, "fsdd", "asr1")
    # db.sh looks for the corpus beside the scratch repo; one thread: OpenMP threads stall on a busy CPU
    env = {**script_env, "CHUNKSSL_SHARED_DATA": str(SHARED_DATA), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", "run.sh", "--asr-train-opts", "--max_epoch 8", "--decode-chunks", "full"],
                       cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    # the full train split, and every test recording scored
    assert len((recipe / EXP / "stats/train/speech_shape").read_text().splitlines()) == 2400
    offline, streaming = _score(recipe, "offline_full"), _score(recipe, "stream_640")
    for s in (offline, streaming):
        assert s["num_utts"] == 300
    assert offline["error_rate"] <= 5.0, offline
    assert streaming["error_rate"] <= 8.0, streaming
    table = (recipe / "RESULTS.md").read_text()
    assert "| fsdd | test | offline | full | 300 |" in table and "| fsdd | test | streaming | 640 | 300 |" in table
    assert (recipe / "wer_vs_chunk.png").stat().st_size > 0
    _onnx_streams_the_test_set_like_torch(recipe, env)


def _onnx_streams_the_test_set_like_torch(recipe: Path, env: dict) -> None:
    """Issue 18 on the trained FSDD model: ONNX (left 4 chunks) gives the final texts of PyTorch's streamer with
    the same left-chunk limit on the 300 test recordings; int8 is within 0.5 absolute WER of float32."""
    exp = recipe / EXP
    model = ["--asr_train_config", str(exp / "config.yaml"), "--asr_model_file", str(exp / "valid.acc.ave.pth")]

    def run(*args: str) -> None:
        r = subprocess.run([sys.executable, "-m", *args], cwd=recipe, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]

    run("chunkssl.bin.export_onnx", *model, "--chunk-ms", "640", "--left-chunks", "4", "--out-dir", "exp/onnx",
        "--int8")
    common = [*model, "--wav-scp", "data/test/wav.scp", "--beam-size", "4"]
    wer = {}
    for name, backend in (("torch", ["--chunk-ms", "640", "--left-chunks", "4"]),
                          ("onnx", ["--backend", "onnx", "--onnx-dir", "exp/onnx"]),
                          ("int8", ["--backend", "onnx", "--onnx-dir", "exp/onnx", "--onnx-int8"])):
        run("chunkssl.bin.asr_inference_streaming", *common, *backend, "--output-dir", f"exp/onnx_{name}")
        run("chunkssl.bin.score_asr", "--ref", "data/test/text", "--hyp", f"exp/onnx_{name}/text",
            "--out-dir", f"exp/onnx_{name}/score")
        wer[name] = json.loads((recipe / f"exp/onnx_{name}/score/result.json").read_text())
    assert (recipe / "exp/onnx_onnx/text").read_text() == (recipe / "exp/onnx_torch/text").read_text()
    assert wer["onnx"]["num_utts"] == wer["int8"]["num_utts"] == 300
    assert abs(wer["int8"]["error_rate"] - wer["onnx"]["error_rate"]) <= 0.5, wer


def _cut_segments():
    import importlib.util

    path = REPO / "egs2/fsdd/ssl1/local/cut_segments.py"
    spec = importlib.util.spec_from_file_location("cut_segments", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cut_segments_pieces_are_equal_and_cover_the_recording():
    pieces = _cut_segments().pieces
    assert pieces(3.0, 4.0) == [(0.0, 3.0)]
    assert pieces(4.0, 4.0) == [(0.0, 4.0)]
    assert pieces(9.0, 4.0) == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]
    assert pieces(8.2, 4.0) == [(0.0, 2.733), (2.733, 5.467), (5.467, 8.2)]


def test_cut_segments_writes_an_unlabelled_segmented_data_dir(tmp_path):
    import numpy as np
    import soundfile as sf

    from chunkssl.datadir import validate
    from chunkssl.fileio import read_kv

    src = tmp_path / "src"
    src.mkdir()
    for utt, seconds in (("a-long", 9.0), ("b-short", 1.5)):
        sf.write(tmp_path / f"{utt}.wav", np.zeros(int(seconds * 8000), dtype=np.float32), 8000)
    (src / "wav.scp").write_text(f"a-long {tmp_path}/a-long.wav\nb-short {tmp_path}/b-short.wav\n")
    (src / "utt2spk").write_text("a-long a\nb-short b\n")
    (src / "text").write_text("a-long HELLO\nb-short WORLD\n")
    assert _cut_segments().cut(src, tmp_path / "out", 4.0) == 4
    out = tmp_path / "out"
    assert dict(read_kv(out / "segments")) == {
        "a-long-000": "a-long 0.000 3.000", "a-long-001": "a-long 3.000 6.000",
        "a-long-002": "a-long 6.000 9.000", "b-short-000": "b-short 0.000 1.500"}
    assert dict(read_kv(out / "utt2spk"))["a-long-002"] == "a"
    assert not (out / "text").exists()
    assert validate(out, check_text=False) == []
    (src / "segments").write_text("a-long-0 a-long 0 1\n")
    with pytest.raises(ValueError, match="segments exists"):
        _cut_segments().cut(src, tmp_path / "out2", 4.0)
