"""ONNX export of the streaming encoder step (issue 18): onnxruntime equals PyTorch's streaming encoder.

Over a 60 s stream, chunk by chunk with the same left-chunk limit (the shorter last chunk included), the
exported step's encoder frames and CTC log-probabilities equal
:class:`~chunkssl.streaming.encoder.StreamingEncoder` (+ CTC log-softmax) within 1e-4 (float32); options
and models the fixed-shape graph cannot express are refused at export time.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from chunkssl.deploy.onnx_export import (
    INPUT_NAMES,
    EncoderStep,
    ExportRefused,
    check_options,
    export_encoder_step,
    initial_caches,
    read_metadata,
)
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.streaming.encoder import StreamingEncoder, encoder_frames_for

ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-4


def _random_model(kernel: int = 15, seed: int = 0, input_layer: str = "conv2d") -> nn.Module:
    """An untrained ESPnet-like ASR model: chunk conformer encoder, CTC head, no normalisation."""
    from espnet2.asr.ctc import CTC

    torch.manual_seed(seed)
    model = nn.Module()
    model.encoder = ChunkConformerEncoder(80, output_size=64, attention_heads=4, linear_units=96, num_blocks=3,
                                          dropout_rate=0.0, cnn_module_kernel=kernel, input_layer=input_layer)
    model.ctc = CTC(24, 64)
    model.normalize = None
    return model.eval()


def _session(path) -> "ort.InferenceSession":
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _onnx_stream(path, raw_fbank: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(encoder_out [c, D], ctc_logp [c, V])`` of every chunk of ``raw_fbank`` through onnxruntime, the
    shorter last one from a zero-padded window."""
    meta = read_metadata(path)
    window, hop, chunk = int(meta["fbank_window"]), int(meta["fbank_hop"]), int(meta["chunk_frames"])
    caches = [c.numpy() for c in initial_caches(json.loads(meta["shapes"]))]
    sess, outs, done = _session(path), [], 0
    total = encoder_frames_for(raw_fbank.shape[0])
    padded = np.concatenate([raw_fbank, np.zeros((window, raw_fbank.shape[1]), np.float32)])
    while done < total:
        n = min(chunk, total - done)
        start = hop * (done // chunk)
        got = sess.run(None, dict(zip(INPUT_NAMES, [padded[None, start:start + window], *caches,
                                                    np.array([n], np.int64)])))
        outs.append((got[0][0, :n], got[1][0, :n]))
        caches = got[2:]
        done += n
        assert int(caches[-1][0]) == min(done, int(meta["kv_cache_frames"]))
    return outs


def _torch_stream(model: nn.Module, feats: torch.Tensor, chunk: int, left: int) -> list[tuple[np.ndarray, ...]]:
    """The same per chunk from the PyTorch streaming encoder fed the (normalised) fbank 10 frames at a time."""
    stream = StreamingEncoder(model.encoder, chunk, left)
    outs = []
    with torch.no_grad():
        for pos in range(0, feats.shape[0], 10):
            y = stream.accept(feats[pos:pos + 10])
            for i in range(0, y.shape[0], chunk):
                part = y[i:i + chunk]
                outs.append((part.numpy(), model.ctc.log_softmax(part[None])[0].numpy()))
        last = stream.finalize()
        if last.shape[0]:
            outs.append((last.numpy(), model.ctc.log_softmax(last[None])[0].numpy()))
    return outs


def _compare(onnx_outs, torch_outs) -> tuple[int, float]:
    assert len(onnx_outs) == len(torch_outs)
    worst = 0.0
    for n, ((y1, lp1), (y2, lp2)) in enumerate(zip(onnx_outs, torch_outs)):
        assert y1.shape == y2.shape and lp1.shape == lp2.shape, n
        diff = max(float(np.abs(y1 - y2).max()), float(np.abs(lp1 - lp2).max()))
        assert diff < TOL, f"chunk {n}: max abs difference {diff}"
        worst = max(worst, diff)
    return len(onnx_outs), worst


@pytest.mark.parametrize("chunk_ms,left,kernel", [(640, 4, 15), (160, 2, 31)])
def test_onnx_step_equals_streaming_encoder_over_60s(tmp_path, chunk_ms, left, kernel):
    model = _random_model(kernel, seed=kernel)
    meta = export_encoder_step(model, tmp_path / "encoder.onnx", chunk_ms, left)
    chunk = chunk_ms // 40
    assert meta["chunk_frames"] == str(chunk) and meta["kv_cache_frames"] == str(left * chunk)
    assert json.loads(meta["shapes"])["k_cache"] == [3, 4, left * chunk, 16]
    feats = torch.randn(6000, 80, generator=torch.Generator().manual_seed(1))  # 60 s of fbank frames
    n, worst = _compare(_onnx_stream(tmp_path / "encoder.onnx", feats.numpy()),
                        _torch_stream(model, feats, chunk, left))
    assert n == -(-encoder_frames_for(6000) // chunk) and encoder_frames_for(6000) % chunk  # a shorter last one
    print(f"{chunk_ms} ms, {left} left chunks: {n} chunks, max abs difference {worst:.2e}")


def test_streams_shorter_than_a_few_chunks(tmp_path):
    model = _random_model(seed=5)
    export_encoder_step(model, tmp_path / "encoder.onnx", 320, 3)
    gen = torch.Generator().manual_seed(2)
    for length in (7, 40, 4 * 8 + 3, 4 * 8 + 4, 150):  # one frame, under a chunk, exactly one, just over, a few
        feats = torch.randn(length, 80, generator=gen)
        n, _ = _compare(_onnx_stream(tmp_path / "encoder.onnx", feats.numpy()), _torch_stream(model, feats, 8, 3))
        assert n == -(-encoder_frames_for(length) // 8), length


def test_cli_exports_trained_model_equal_to_pytorch(tiny_asr, tmp_path):
    from chunkssl.asr.model import load_asr, normalize_feats
    from chunkssl.bin import export_onnx
    from chunkssl.features import fbank

    out = tmp_path / "onnx"
    assert export_onnx.main(["--asr_train_config", str(tiny_asr["config"]), "--asr_model_file",
                             str(tiny_asr["model"]), "--chunk-ms", "640", "--left-chunks", "4",
                             "--out-dir", str(out)]) == 0
    info = json.loads((out / "encoder.json").read_text())
    assert info["normalize"] == "global_mvn_in_graph" and info["inputs"][0] == "fbank"
    assert read_metadata(out / "encoder.onnx")["left_chunks"] == "4"
    # 60 s of the tone words, one recording after another (the set repeated)
    recordings = [sf.read(path, dtype="float32")[0] for path in sorted((tiny_asr["data"] / "wav").glob("*.wav"))]
    waves, total = [], 0
    while total < 60 * 16000:
        waves.append(recordings[len(waves) % len(recordings)])
        total += waves[-1].size
    raw = fbank(np.concatenate(waves), 16000)
    assert raw.shape[0] >= 6000 - 2
    asr = load_asr(tiny_asr["config"], tiny_asr["model"])
    feats = normalize_feats(asr.model, raw)
    n, worst = _compare(_onnx_stream(out / "encoder.onnx", raw.numpy()), _torch_stream(asr.model, feats, 16, 4))
    assert n >= 90
    print(f"tiny ASR, 640 ms, 4 left chunks: {n} chunks, max abs difference {worst:.2e}")


@pytest.mark.parametrize("chunk_ms,left,words", [(640, -1, "unlimited left context"), (640, None, "unlimited"),
                                                  (640, 0, "at least 1"), (100, 4, "multiple of the 40 ms"),
                                                  (0, 4, "finite chunk")])
def test_bad_options_refused(chunk_ms, left, words):
    with pytest.raises(ExportRefused, match=words):
        check_options(chunk_ms, left)
    with pytest.raises(ExportRefused, match=words):
        EncoderStep(_random_model(), chunk_ms, left)


def test_inexpressible_models_refused(tmp_path):
    with pytest.raises(ExportRefused, match="input_layer 'linear'"):
        export_encoder_step(_random_model(input_layer="linear"), tmp_path / "e.onnx", 640, 4)
    model = _random_model()
    model.ctc = None
    with pytest.raises(ExportRefused, match="no CTC head"):
        export_encoder_step(model, tmp_path / "e.onnx", 640, 4)
    assert not (tmp_path / "e.onnx").exists()


def test_cli_refuses_unlimited_left_context(tmp_path, capsys):
    from chunkssl.bin import export_onnx
    from chunkssl.fileio import run_cli

    args = ["--asr_train_config", "x.yaml", "--asr_model_file", "x.pth", "--left-chunks", "-1", "--out-dir",
            str(tmp_path)]
    assert run_cli("export_onnx", export_onnx.main, args) == 2
    assert "export_onnx: error: --left-chunks -1: unlimited left context" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_onnx_streaming_encoder_takes_uneven_pieces(tmp_path):
    from chunkssl.deploy.onnx_encoder import OnnxStreamingEncoder

    model = _random_model(seed=7)
    export_encoder_step(model, tmp_path / "encoder.onnx", 640, 4)
    stream = OnnxStreamingEncoder(tmp_path / "encoder.onnx")
    rng = np.random.default_rng(0)
    for length in (6000, 90):  # 60 s, then (after reset) a stream shorter than one chunk
        feats = torch.randn(length, 80, generator=torch.Generator().manual_seed(length))
        outs, pos, kept = [], 0, 0
        while pos < length:
            n = int(rng.integers(1, 40))  # 10-400 ms pieces
            outs.append(stream.accept(feats[pos:pos + n].numpy()))
            kept = max(kept, stream.cache_sizes()["fbank"])
            pos += n
        outs.append(stream.finalize())
        got_enc, got_logp = np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
        expected = _torch_stream(model, feats, 16, 4)
        ref_enc, ref_logp = np.concatenate([e[0] for e in expected]), np.concatenate([e[1] for e in expected])
        assert got_enc.shape == ref_enc.shape == (encoder_frames_for(length), 64)
        assert np.abs(got_enc - ref_enc).max() < TOL and np.abs(got_logp - ref_logp).max() < TOL
        assert stream.num_encoded == encoder_frames_for(length) and kept < 67 + 40
        stream.reset()
