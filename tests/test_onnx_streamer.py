"""OnnxStreamer and ``--backend onnx`` (issue 18): the same results as the PyTorch Streamer.

The tiny trained ASR of tests/tiny_asr.py, exported at 640 ms with 4 left chunks: every utterance's
final text and token ids are identical between :class:`~chunkssl.streaming.streamer.Streamer` (same
left-chunk limit) and :class:`~chunkssl.deploy.onnx_streamer.OnnxStreamer`, fed the same pieces; the
streaming CLI writes the same text with either backend; the int8 encoder decodes every utterance.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(tiny_asr, tmp_path_factory):
    """The tiny ASR exported by the CLI at 640 ms / 4 left chunks, float32 and int8."""
    from chunkssl.bin import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    assert export_onnx.main(["--asr_train_config", str(tiny_asr["config"]), "--asr_model_file",
                             str(tiny_asr["model"]), "--chunk-ms", "640", "--left-chunks", "4",
                             "--out-dir", str(out), "--int8"]) == 0
    return out


def _waves(tiny_asr) -> dict[str, np.ndarray]:
    return {p.stem: sf.read(p, dtype="float32")[0] for p in sorted((tiny_asr["data"] / "wav").glob("*.wav"))}


def _decode(streamer, waves: dict[str, np.ndarray], piece: int = 1600) -> dict[str, tuple]:
    """Per utterance: (final text, final tokens, texts of the partials), fed ``piece`` samples at a time."""
    out = {}
    for utt, wave in waves.items():
        partials = []
        for pos in range(0, wave.size, piece):
            partials += [(e.type, e.text) for e in streamer.accept(wave[pos:pos + piece])]
        final = streamer.finalize()
        out[utt] = (final.text, final.tokens, partials)
    return out


def _cer(hyps: dict[str, str], refs: dict[str, str]) -> float:
    """Character error rate of ``hyps`` against ``refs`` (spaces ignored)."""
    errors = total = 0
    for utt, ref in refs.items():
        r, h = ref.replace(" ", ""), hyps[utt].replace(" ", "")
        row = list(range(len(h) + 1))
        for i, rc in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hc in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rc != hc))
        errors, total = errors + row[-1], total + len(r)
    return errors / total


def test_onnx_streamer_equals_torch_streamer(tiny_asr, exported):
    from chunkssl.asr.model import load_asr
    from chunkssl.deploy.onnx_streamer import OnnxStreamer
    from chunkssl.streaming.streamer import Streamer

    asr = load_asr(tiny_asr["config"], tiny_asr["model"])
    waves = _waves(tiny_asr)
    torch_out = _decode(Streamer(asr, 640, 4), waves)
    onnx_streamer = OnnxStreamer(asr, exported)
    assert (onnx_streamer.chunk_ms, onnx_streamer.left_chunks) == (640, 4)
    onnx_out = _decode(onnx_streamer, waves)
    assert len(waves) == 48 and sum(bool(t[1]) for t in torch_out.values()) >= 40
    for utt in waves:
        assert onnx_out[utt][:2] == torch_out[utt][:2], utt  # final text and token ids
        assert onnx_out[utt][2] == torch_out[utt][2], utt    # every partial too
    cer = _cer({u: t[0] for u, t in torch_out.items()}, tiny_asr["texts"])
    print(f"{len(waves)} utterances: finals identical (torch/onnx CER {cer:.3f})")
    # a stream shorter than one chunk and an empty one
    assert onnx_streamer.finalize().tokens == ()
    short = waves["utt000"][:4000]
    onnx_streamer.accept(short)
    streamer = Streamer(asr, 640, 4)
    streamer.accept(short)
    assert onnx_streamer.finalize().tokens == streamer.finalize().tokens


def test_int8_encoder_decodes_every_utterance(tiny_asr, exported):
    from chunkssl.asr.model import load_asr
    from chunkssl.deploy.onnx_streamer import OnnxStreamer

    info = json.loads((exported / "encoder.json").read_text())
    assert info["int8"]["file"] == "encoder.int8.onnx" and info["int8"]["op_types"] == ["MatMul"]
    asr = load_asr(tiny_asr["config"], tiny_asr["model"])
    waves = _waves(tiny_asr)
    f32 = _decode(OnnxStreamer(asr, exported), waves)
    int8 = _decode(OnnxStreamer(asr, exported, int8=True), waves)
    assert all(int8[u][1] for u in waves)  # output for every utterance
    cer32 = _cer({u: t[0] for u, t in f32.items()}, tiny_asr["texts"])
    cer8 = _cer({u: t[0] for u, t in int8.items()}, tiny_asr["texts"])
    same = sum(int8[u][1] == f32[u][1] for u in waves)
    print(f"int8 ({info['int8']['bytes']} bytes vs {info['int8']['float32_bytes']}): CER {cer8:.3f} vs float32 "
          f"{cer32:.3f}; {same}/{len(waves)} finals identical")


def _cli(tiny_asr, out, *extra) -> int:
    from chunkssl.bin import asr_inference_streaming

    scp = out.parent / "wav.scp"
    lines = [line for line in (tiny_asr["data"] / "wav.scp").read_text().splitlines()[:12]]
    scp.write_text("\n".join(lines) + "\n")
    return asr_inference_streaming.main(["--asr_train_config", str(tiny_asr["config"]), "--asr_model_file",
                                         str(tiny_asr["model"]), "--wav-scp", str(scp), "--piece-ms", "100",
                                         "--output-dir", str(out), *extra])


def test_cli_onnx_backend_writes_the_same_text(tiny_asr, exported, tmp_path):
    assert _cli(tiny_asr, tmp_path / "torch", "--chunk-ms", "640", "--left-chunks", "4") == 0
    assert _cli(tiny_asr, tmp_path / "onnx", "--backend", "onnx", "--onnx-dir", str(exported)) == 0
    text = (tmp_path / "torch" / "text").read_text()
    assert text.count("\n") == 12 and (tmp_path / "onnx" / "text").read_text() == text
    assert (tmp_path / "onnx" / "token_int").read_text() == (tmp_path / "torch" / "token_int").read_text()
    timing = json.loads((tmp_path / "onnx" / "timing.json").read_text())
    assert "onnx" in json.dumps(timing)
    assert _cli(tiny_asr, tmp_path / "int8", "--backend", "onnx", "--onnx-dir", str(exported), "--onnx-int8") == 0
    assert (tmp_path / "int8" / "text").read_text().count("\n") == 12


def test_cli_refuses_mismatching_chunk(tiny_asr, exported, tmp_path):
    from chunkssl.fileio import DataError

    with pytest.raises(DataError, match=r"--chunk-ms 320 does not match .*encoder.json: chunk_ms 640"):
        _cli(tiny_asr, tmp_path / "a", "--backend", "onnx", "--onnx-dir", str(exported), "--chunk-ms", "320")
    with pytest.raises(DataError, match=r"--left-chunks -1 does not match"):
        _cli(tiny_asr, tmp_path / "b", "--backend", "onnx", "--onnx-dir", str(exported), "--left-chunks", "-1")
    with pytest.raises(DataError, match="needs --onnx-dir"):
        _cli(tiny_asr, tmp_path / "c", "--backend", "onnx")
    with pytest.raises(DataError, match=r"no such file"):
        _cli(tiny_asr, tmp_path / "d", "--backend", "onnx", "--onnx-dir", str(tmp_path))
