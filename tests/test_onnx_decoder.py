"""ONNX export of the attention decoder for rescoring (issue 18): the same scores and results as PyTorch's.

The tiny trained ASR of tests/tiny_asr.py exported by the CLI (640 ms, 4 left chunks, ``--int8``): the
ONNX decoder's score of every hypothesis equals :func:`~chunkssl.search.rescoring.attention_scores` on the
PyTorch decoder within 1e-4 (n-bests of one or several hypotheses, empty ones, memories of other lengths
than the traced one); the int8 decoder is close and ranks a clear case the same; OnnxStreamer rescoring
with ``decoder.onnx`` gives the PyTorch Streamer's final texts and token ids; CTC-only models export the
encoder only and still stream; decoders the graph cannot express are refused.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

pytest.importorskip("onnxruntime")

from chunkssl.deploy.onnx_decoder import OnnxDecoder, export_decoder  # noqa: E402
from chunkssl.deploy.onnx_export import ExportRefused  # noqa: E402
from chunkssl.fileio import DataError  # noqa: E402
from chunkssl.search.rescoring import attention_scores  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-4
LETTERS = "abcdef"  # tiny_asr's tokens: <blank> <unk> a..f <sos/eos>


def _export(tiny_asr: dict, out, *extra: str) -> int:
    from chunkssl.bin import export_onnx

    return export_onnx.main(["--asr_train_config", str(tiny_asr["config"]), "--asr_model_file",
                             str(tiny_asr["model"]), "--chunk-ms", "640", "--left-chunks", "4",
                             "--out-dir", str(out), *extra])


@pytest.fixture(scope="module")
def exported(tiny_asr, tmp_path_factory):
    """The tiny ASR exported by the CLI at 640 ms / 4 left chunks, float32 and int8, encoder and decoder."""
    out = tmp_path_factory.mktemp("onnx_dec")
    assert _export(tiny_asr, out, "--int8") == 0
    return out


@pytest.fixture(scope="module")
def asr(tiny_asr):
    from chunkssl.asr.model import load_asr

    return load_asr(tiny_asr["config"], tiny_asr["model"])


def _waves(tiny_asr, n: int | None = None) -> dict[str, np.ndarray]:
    paths = sorted((tiny_asr["data"] / "wav").glob("*.wav"))[:n]
    return {p.stem: sf.read(p, dtype="float32")[0] for p in paths}


def _finals(streamer, waves: dict[str, np.ndarray], piece: int = 1600) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Per utterance: (final text, final token ids), fed ``piece`` samples at a time."""
    out = {}
    for utt, wave in waves.items():
        for pos in range(0, wave.size, piece):
            streamer.accept(wave[pos:pos + piece])
        final = streamer.finalize()
        out[utt] = (final.text, final.tokens)
    return out


def _encoded(exported, wave: np.ndarray) -> torch.Tensor:
    """The utterance's encoder frames from the exported encoder step (what the streamer rescores)."""
    from chunkssl.deploy.onnx_encoder import OnnxStreamingEncoder
    from chunkssl.features import fbank

    enc = OnnxStreamingEncoder(exported / "encoder.onnx")
    parts = [enc.accept(fbank(wave, 16000).numpy())[0], enc.finalize()[0]]
    return torch.from_numpy(np.concatenate(parts))


def _ids(text: str) -> tuple[int, ...]:
    return tuple(2 + LETTERS.index(ch) for ch in text)


def test_decoder_recorded_in_encoder_json(exported, asr):
    info = json.loads((exported / "encoder.json").read_text())
    dec = info["decoder"]
    assert dec["file"] == "decoder.onnx" and dec["graph"] == "attention_decoder_rescoring"
    assert dec["inputs"] == ["memory", "ys_in", "ys_lens", "targets"] and dec["outputs"] == ["scores"]
    assert dec["shapes"]["memory"] == [1, "T", 32] and dec["shapes"]["scores"] == ["N"]
    assert (int(dec["vocab_size"]), int(dec["sos_id"]), int(dec["eos_id"])) == (9, asr.model.sos, asr.model.eos)
    assert dec["int8"]["file"] == "decoder.int8.onnx" and (exported / "decoder.int8.onnx").is_file()
    assert OnnxDecoder(exported / "decoder.int8.onnx").meta["quantization"] == "dynamic_int8_matmul_weights"


def test_onnx_scores_equal_pytorch_attention_scores(tiny_asr, exported, asr):
    model = asr.model
    onnx = OnnxDecoder(exported / "decoder.onnx")
    gen = torch.Generator().manual_seed(3)
    real = _encoded(exported, _waves(tiny_asr, 1)["utt000"])
    memories = [real, torch.randn(1, 32, generator=gen), torch.randn(9, 32, generator=gen),
                torch.randn(250, 32, generator=gen)]  # real frames, one frame, the traced length, a long one
    nbests = [[(2, 3, 4)], [()], [(), (5,), (2, 3, 4, 5, 6, 7), (7, 7)], [tuple(range(2, 8)) * 5, (3,), (4, 2)],
              [(1,), (8, 2)]]  # single, empty, mixed lengths, a 30-token one, <unk> and <sos/eos> as tokens
    worst = 0.0
    for enc in memories:
        for hyps in nbests:
            ref = attention_scores(model.decoder, enc, hyps, model.sos, model.eos)
            got = onnx(enc, hyps, model.sos, model.eos)
            assert len(got) == len(hyps) and all(isinstance(s, float) for s in got)
            worst = max(worst, *(abs(a - b) for a, b in zip(ref, got)))
    assert worst < TOL, worst
    assert onnx(real.numpy(), [(2, 3)], model.sos, model.eos) == onnx(real, [(2, 3)], model.sos, model.eos)
    assert onnx(real, [], model.sos, model.eos) == []
    print(f"ONNX decoder vs PyTorch: max abs difference {worst:.2e}")


def test_int8_decoder_close_and_ranks_the_same(tiny_asr, exported, asr):
    model = asr.model
    f32, int8 = OnnxDecoder(exported / "decoder.onnx"), OnnxDecoder(exported / "decoder.int8.onnx")
    worst = 0.0
    for utt, wave in _waves(tiny_asr, 4).items():
        enc = _encoded(exported, wave)
        ref = _ids(tiny_asr["texts"][utt])
        # the transcription, a deletion, an insertion, one and every token substituted, nothing
        hyps = [ref, ref[:-1], ref + ref[-1:], (2 + (ref[0] - 1) % 6, *ref[1:]), tuple(2 + (t - 1) % 6 for t in ref),
                ()]
        a, b = f32(enc, hyps, model.sos, model.eos), int8(enc, hyps, model.sos, model.eos)
        clear = [(i, j) for i in range(len(hyps)) for j in range(len(hyps)) if a[i] - a[j] > 0.5]
        assert clear and all(b[i] > b[j] for i, j in clear), (utt, a, b)  # int8 ranks the clear pairs the same
        worst = max(worst, *(abs(x - y) for x, y in zip(a, b)))
        assert worst < 0.25 + 0.05 * max(abs(x) for x in a), (utt, a, b)
    print(f"int8 decoder vs float32: max abs difference {worst:.3f}")


def test_onnx_streamer_rescores_with_decoder_onnx(tiny_asr, exported, asr, monkeypatch):
    from chunkssl.deploy.onnx_streamer import OnnxStreamer
    from chunkssl.search import rescoring
    from chunkssl.streaming.streamer import Streamer

    waves = _waves(tiny_asr)
    expected = _finals(Streamer(asr, 640, 4), waves)
    streamer = OnnxStreamer(asr, exported)
    assert streamer.decoder_path == exported / "decoder.onnx"
    runs = []
    scorer = streamer.attention_scorer
    monkeypatch.setattr(scorer, "run", lambda *a: runs.append(a[1].shape) or OnnxDecoder.run(scorer, *a))

    def no_torch(*_a, **_k):
        raise AssertionError("the PyTorch decoder rescored")

    monkeypatch.setattr(rescoring, "attention_scores", no_torch)
    got = _finals(streamer, waves)
    assert len(waves) == 48 and sum(bool(t[1]) for t in expected.values()) >= 40
    assert got == expected
    assert len(runs) >= 40 and any(shape[0] > 1 for shape in runs)  # n-bests of several hypotheses
    print(f"{len(waves)} utterances: finals identical, {len(runs)} ONNX decoder runs")
    int8 = OnnxStreamer(asr, exported, int8=True)
    assert int8.decoder_path == exported / "decoder.int8.onnx"
    int8_out = _finals(int8, dict(list(waves.items())[:12]))
    assert sum(int8_out[u] == expected[u] for u in int8_out) >= 10
    assert OnnxStreamer(asr, exported, rescore=False).attention_scorer is None


def test_old_export_without_decoder_rescores_in_pytorch(tiny_asr, exported, asr, tmp_path):
    from chunkssl.deploy.onnx_streamer import OnnxStreamer
    from chunkssl.streaming.streamer import Streamer

    info = json.loads((exported / "encoder.json").read_text())
    del info["decoder"]
    shutil.copy(exported / "encoder.onnx", tmp_path / "encoder.onnx")
    (tmp_path / "encoder.json").write_text(json.dumps(info))
    streamer = OnnxStreamer(asr, tmp_path)
    assert streamer.decoder_path is None and streamer.attention_scorer is None
    waves = _waves(tiny_asr, 6)
    assert _finals(streamer, waves) == _finals(Streamer(asr, 640, 4), waves)
    # a decoder named by encoder.json but missing, or not a decoder graph: said, with the file
    info["decoder"] = {"file": "decoder.onnx"}
    (tmp_path / "encoder.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match=r"decoder\.onnx: no such file \(named by .*encoder\.json\)"):
        OnnxStreamer(asr, tmp_path)
    shutil.copy(exported / "encoder.onnx", tmp_path / "decoder.onnx")
    with pytest.raises(DataError, match=r"decoder\.onnx: not a chunkssl attention decoder export"):
        OnnxStreamer(asr, tmp_path)


def _ctc_only(tiny_asr, root) -> tuple:
    """The tiny ASR as a CTC-only model (ctc_weight 1.0: ESPnet builds no decoder; its weights dropped)."""
    config = yaml.safe_load(tiny_asr["config"].read_text())
    config["model_conf"]["ctc_weight"] = 1.0
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    state = torch.load(tiny_asr["model"], map_location="cpu")
    torch.save({k: v for k, v in state.items() if not k.startswith("decoder.")}, root / "ctc.pth")
    return root / "config.yaml", root / "ctc.pth"


def test_ctc_only_model_exports_encoder_only_and_streams(tiny_asr, exported, tmp_path, capsys):
    from chunkssl.asr.model import load_asr
    from chunkssl.deploy.onnx_streamer import OnnxStreamer
    from chunkssl.streaming.streamer import Streamer

    config, weights = _ctc_only(tiny_asr, tmp_path)
    out = tmp_path / "onnx"
    out.mkdir()
    for name in ("decoder.onnx", "decoder.int8.onnx"):  # an earlier export's decoder would not match
        shutil.copy(exported / name, out / name)
    assert _export({"config": config, "model": weights}, out, "--int8") == 0
    assert "no attention decoder (CTC-only model): encoder only" in capsys.readouterr().out
    assert not (out / "decoder.onnx").exists() and not (out / "decoder.int8.onnx").exists()
    assert "decoder" not in json.loads((out / "encoder.json").read_text())
    ctc_asr = load_asr(config, weights)
    assert ctc_asr.model.decoder is None
    streamer = OnnxStreamer(ctc_asr, out)
    assert streamer.decoder_path is None
    waves = _waves(tiny_asr, 12)
    got = _finals(streamer, waves)
    assert got == _finals(Streamer(ctc_asr, 640, 4), waves) and sum(bool(t[1]) for t in got.values()) >= 10


def test_unsupported_decoders_refused(tiny_asr, exported, asr, tmp_path, monkeypatch, capsys):
    from espnet2.asr.decoder.rnn_decoder import RNNDecoder
    from espnet2.asr.decoder.transformer_decoder import LightweightConvolutionTransformerDecoder
    from torch import nn

    from chunkssl.asr import model as asr_model

    fake = nn.Module()
    fake.decoder = RNNDecoder(9, 32)
    with pytest.raises(ExportRefused, match="decoder is RNNDecoder: only ESPnet's TransformerDecoder"):
        export_decoder(fake, tmp_path / "d.onnx")
    fake.decoder = LightweightConvolutionTransformerDecoder(9, 32, num_blocks=1, conv_kernel_length=(3,))
    with pytest.raises(ExportRefused, match="LightweightConvolutionTransformerDecoder: only"):
        export_decoder(fake, tmp_path / "d.onnx")
    fake.decoder = None
    with pytest.raises(ExportRefused, match="no attention decoder"):
        export_decoder(fake, tmp_path / "d.onnx")
    assert not list(tmp_path.iterdir())
    # the CLI refuses before writing anything; --encoder-only exports the encoder and drops a stale decoder
    real_load = asr_model.load_asr

    def load_with_rnn_decoder(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        loaded.model.decoder = RNNDecoder(9, 32)
        return loaded

    monkeypatch.setattr(asr_model, "load_asr", load_with_rnn_decoder)
    out = tmp_path / "onnx"
    out.mkdir()
    shutil.copy(exported / "decoder.onnx", out / "decoder.onnx")
    with pytest.raises(ExportRefused, match="RNNDecoder.*pass --encoder-only"):
        _export(tiny_asr, out)
    assert sorted(p.name for p in out.iterdir()) == ["decoder.onnx"]
    assert _export(tiny_asr, out, "--encoder-only") == 0
    assert "--encoder-only: decoder not exported" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["encoder.json", "encoder.onnx"]


def test_rescore_takes_an_attention_scorer():
    from chunkssl.search.ctc_prefix import Hypothesis
    from chunkssl.search.rescoring import rescore

    calls = []

    def scorer(enc, hyps, sos, eos):
        calls.append((enc.shape, hyps, sos, eos))
        return [-5.0, -1.0]

    nbest = [Hypothesis((1,), -1.0), Hypothesis((2,), -1.1)]
    out = rescore(None, torch.zeros(3, 2), nbest, 7, 8, ctc_weight=0.3, scorer=scorer)
    assert [r.tokens for r in out] == [(2,), (1,)] and [r.att for r in out] == [-1.0, -5.0]
    assert calls == [((3, 2), [(1,), (2,)], 7, 8)]
    assert rescore(None, torch.zeros(3, 2), nbest, 7, 8, ctc_weight=1.0, scorer=scorer)[0].tokens == (1,)
    assert len(calls) == 1  # CTC only: the scorer is not asked
