"""ONNX export of Codec-ASR token models (issue 18): tokenizer and encoder step in onnxruntime equal PyTorch.

A small token model (FSQ codes, token frontend, linear input layer, chunk conformer) and its FSQ/RVQ
tokenizer, saved as a training run would save them (tests/token_asr.py), on speech-like audio: the
exported codes step equals the PyTorch streaming encoder chunk by chunk within 1e-4 over 60 s of codes;
``tokenizer.onnx`` streamed gives StreamingTokenizer's codes (no code differed in 10 minutes of audio,
FSQ or RVQ; a bound is asserted); :class:`~chunkssl.deploy.onnx_codec.OnnxCodecStreamer` gives the
finals and partials of :func:`~chunkssl.codec.streaming.codec_streamer` with the same left limit; the
int8 encoder decodes; what the graphs cannot express is refused; the CLI writes the same text with
either backend.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from chunkssl.codec.streaming import StreamingTokenizer, codec_streamer
from chunkssl.deploy.onnx_export import ExportRefused
from chunkssl.fileio import DataError
from chunkssl.streaming.encoder import StreamingEncoder
from token_asr import SR, make_tokenizer, save_token_asr, speech_like, speech_like_fbank

ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-4


def _write_export(asr, out, chunk_ms: int, left: int, tok, int8: bool = False) -> dict:
    """What chunkssl.bin.export_onnx writes for a token model (no decoder): the files and encoder.json."""
    from chunkssl.deploy.export_dir import export_asr_dir

    return export_asr_dir(asr.model, out, chunk_ms, left, int8, encoder_only=True, log=lambda _: None,
                          tokenizer=tok)


@pytest.fixture(scope="module")
def fsq_model(tmp_path_factory) -> dict:
    """The FSQ token model exported at 640 ms with 4 left chunks (+ int8)."""
    made = save_token_asr(tmp_path_factory.mktemp("fsq_model"), make_tokenizer("fsq"))
    made["onnx"] = made["root"] / "onnx"
    made["info"] = _write_export(made["asr"], made["onnx"], 640, 4, made["tok"], int8=True)
    return made


# the encoder step ---------------------------------------------------------------------------------------
class _CodesInput:
    """Input stage of the PyTorch StreamingEncoder fed codes: token frontend, linear input layer."""

    def __init__(self, model):
        self.model = model

    def reset(self) -> None:
        """Nothing kept."""

    def accept(self, codes: torch.Tensor) -> torch.Tensor:
        emb, _ = self.model.frontend(codes[None], torch.tensor([codes.shape[0]]))
        return self.model.encoder.embed_window(emb)

    def finalize(self) -> torch.Tensor:
        return torch.zeros(1, 0, self.model.encoder.output_size())

    def buffer_sizes(self) -> dict:
        return {}


def _random_codes(levels: list[int], n: int, seed: int) -> np.ndarray:
    gen = np.random.default_rng(seed)
    return np.stack([gen.integers(0, level, n) for level in levels], -1)


@pytest.mark.parametrize("chunk_ms,left,frontend", [(640, 4, {}), (160, 2, {"embed": "group", "combine": "concat",
                                                                            "output_size": 24})])
def test_codes_step_equals_streaming_encoder_over_60s(tmp_path, chunk_ms, left, frontend):
    from chunkssl.deploy.onnx_encoder import OnnxStreamingCodesEncoder

    made = save_token_asr(tmp_path / "m", make_tokenizer("fsq"), **frontend)
    model, chunk = made["asr"].model, chunk_ms // 40
    info = _write_export(made["asr"], tmp_path / "onnx", chunk_ms, left, None)
    assert info["input"] == "codes" and info["chunkssl_onnx_format"] == "2" and info["tokenizer"] is None
    assert info["shapes"]["codes"] == [1, chunk, 4] and info["inputs"][0] == "codes"
    codes = _random_codes([8, 5, 5, 5], 1502, seed=chunk)  # 60 s of 40 ms codes (+2: a shorter last chunk)
    onnx = OnnxStreamingCodesEncoder(tmp_path / "onnx" / "encoder.onnx")
    torch_enc = StreamingEncoder(model.encoder, chunk, left, input_stage=_CodesInput(model))
    worst, n_chunks = 0.0, 0
    with torch.no_grad():
        for start in range(0, 1502, chunk):  # one chunk per call: the comparison is chunk by chunk
            piece = codes[start:start + chunk]
            got, ref = onnx.accept(piece), torch_enc.accept(torch.from_numpy(piece))
            if piece.shape[0] < chunk:  # the end of the stream: the shorter last chunk
                assert got[0].shape[0] == ref.shape[0] == 0
                got, ref = onnx.finalize(), torch_enc.finalize()
            ref_logp = model.ctc.log_softmax(ref[None])[0]
            assert got[0].shape == tuple(ref.shape) == (piece.shape[0], 32)
            diff = max(float(np.abs(got[0] - ref.numpy()).max()), float(np.abs(got[1] - ref_logp.numpy()).max()))
            assert diff < TOL, f"chunk {n_chunks}: max abs difference {diff}"
            worst, n_chunks = max(worst, diff), n_chunks + 1
    assert n_chunks == -(-1502 // chunk) and 1502 % chunk  # the last chunk is shorter
    print(f"codes step {chunk_ms} ms, {left} left, frontend {frontend or 'channel/sum'}: {n_chunks} chunks, "
          f"max abs difference {worst:.2e}")
    # fed in uneven pieces the runner gives the same, keeping fewer than a chunk of codes
    onnx.reset()
    rng, outs, pos, kept = np.random.default_rng(1), [], 0, 0
    while pos < 1502:
        n = int(rng.integers(0, 40))
        outs.append(onnx.accept(codes[pos:pos + n])[0])
        kept, pos = max(kept, onnx.cache_sizes()["codes"]), pos + n
    outs.append(onnx.finalize()[0])
    assert kept < chunk and onnx.num_encoded == 1502 and np.concatenate(outs).shape == (1502, 32)


# the tokenizer --------------------------------------------------------------------------------------------
def _pieces(total: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    out, pos = [], 0
    while pos < total:
        n = int(rng.integers(0, 30))
        out.append((pos, pos + n))
        pos += n
    return out


@pytest.mark.parametrize("kind", ["fsq", "rvq"])
def test_onnx_tokenizer_gives_the_streaming_tokenizer_codes(tmp_path, kind):
    from chunkssl.deploy.onnx_tokenizer import OnnxStreamingTokenizer, export_tokenizer

    tok = make_tokenizer(kind)
    meta = export_tokenizer(tok, tmp_path / "tokenizer.onnx")
    assert meta["lookahead_frames"] == "5" and meta["stack"] == "4" and meta["quantizer"] == kind
    assert not tok.training  # the export leaves the tokenizer in eval mode (an RVQ would train its codebooks)
    onnx, ref = OnnxStreamingTokenizer(tmp_path / "tokenizer.onnx"), StreamingTokenizer(tok)
    assert onnx.lookahead_ms == ref.lookahead_ms == 200
    rng, flipped, total = np.random.default_rng(0), 0, 0
    for utt, seconds in enumerate([60.0, 0.03, 0.05, 1.3, 7.1, 12.4]):  # 1 s = 25 codes; under a stack; one
        feats = speech_like_fbank(seconds, seed=10 + utt)
        got, want = [], []
        for lo, hi in _pieces(feats.shape[0], rng):
            got.append(onnx.accept(feats[lo:hi].numpy()))
            want.append(ref.accept(feats[lo:hi]).numpy())
            assert got[-1].shape == want[-1].shape  # each code comes out at the same time
            assert onnx.buffered_frames <= 2 * onnx.lookahead + 1
        got, want = np.concatenate([*got, onnx.finalize()]), np.concatenate([*want, ref.finalize().numpy()])
        assert got.shape == want.shape == (feats.shape[0] // 4, len(tok.code_levels)) and got.dtype == np.int64
        flipped, total = flipped + int((got != want).sum()), total + got.size
    print(f"{kind}: {flipped} of {total} code values differ between onnxruntime and PyTorch")
    assert flipped <= total * 1e-3  # float rounding at a code boundary: none seen here, rare at most
    with pytest.raises(DataError, match="fbank frames"):
        onnx.accept(np.zeros((3, 40), np.float32))


# the streamer ---------------------------------------------------------------------------------------------
def _decode(streamer, waves: list[np.ndarray], piece: int = 1600) -> list[tuple]:
    """(final text, final token ids, partial events) of each wave fed ``piece`` samples at a time."""
    out = []
    for wave in waves:
        partials = []
        for pos in range(0, wave.size, piece):
            partials += [(e.type, e.text, e.tokens) for e in streamer.accept(wave[pos:pos + piece])]
        final = streamer.finalize()
        out.append((final.text, final.tokens, partials))
    return out


def test_onnx_codec_streamer_equals_codec_streamer(fsq_model):
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer

    asr, tok = fsq_model["asr"], fsq_model["tok"]
    waves = [speech_like(s, seed=30 + i) for i, s in enumerate([2.3, 4.1, 0.6, 9.7, 3.3, 0.1])]
    want = _decode(codec_streamer(asr, tok, 640, 4, beam_size=4), waves)
    onnx = OnnxCodecStreamer(asr, fsq_model["onnx"], beam_size=4)
    assert (onnx.chunk_ms, onnx.left_chunks) == (640, 4) and onnx.tokenizer_path is not None
    got = _decode(onnx, waves)
    assert sum(bool(w[1]) for w in want) >= 4  # most utterances give tokens to compare
    for n, (g, w) in enumerate(zip(got, want)):
        assert g == w, n  # final text, token ids and every partial
    # the PyTorch tokenizer feeding the ONNX encoder step (for tokenizers that are not exported)
    assert _decode(OnnxCodecStreamer(asr, fsq_model["onnx"], tok, beam_size=4), waves) == want
    assert onnx.finalize().tokens == ()  # no audio at all
    print(f"{len(waves)} utterances: finals and partials identical, e.g. {want[3][0]!r}")


def test_rescoring_with_the_exported_decoder(fsq_model, tmp_path):
    import shutil

    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer
    from chunkssl.deploy.onnx_decoder import DECODER_NAME, export_decoder

    asr, tok, out = fsq_model["asr"], fsq_model["tok"], tmp_path / "onnx"
    shutil.copytree(fsq_model["onnx"], out)
    export_decoder(asr.model, out / DECODER_NAME)
    info = json.loads((out / "encoder.json").read_text())
    (out / "encoder.json").write_text(json.dumps({**info, "decoder": {"file": DECODER_NAME}}))
    streamer = OnnxCodecStreamer(asr, out, beam_size=4)
    assert streamer.decoder_path == out / DECODER_NAME
    waves = [speech_like(s, seed=40 + i) for i, s in enumerate([2.1, 3.7, 1.2])]
    got = _decode(streamer, waves)
    want = _decode(codec_streamer(asr, tok, 640, 4, beam_size=4), waves)
    assert [g[:2] for g in got] == [w[:2] for w in want]


def test_export_dir_of_a_token_model_streams_with_the_pytorch_tokenizer(fsq_model, tmp_path):
    from chunkssl.deploy.export_dir import export_asr_dir
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer

    asr, tok = fsq_model["asr"], fsq_model["tok"]
    info = export_asr_dir(asr.model, tmp_path, 320, 2, log=lambda _: None)  # what export_onnx writes today
    assert info["input"] == "codes" and info["tokenizer"] is None and not (tmp_path / "tokenizer.onnx").exists()
    streamer = OnnxCodecStreamer(asr, tmp_path, tok, beam_size=4)
    waves = [speech_like(s, seed=60 + i) for i, s in enumerate([1.9, 3.1])]
    got = _decode(streamer, waves)
    assert [g[:2] for g in got] == [w[:2] for w in _decode(codec_streamer(asr, tok, 320, 2, beam_size=4), waves)]


def test_int8_encoder_decodes(fsq_model):
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer

    info = fsq_model["info"]
    assert info["int8"]["file"] == "encoder.int8.onnx" and info["int8"]["bytes"] < info["int8"]["float32_bytes"]
    waves = [speech_like(3.0, seed=50 + i) for i in range(4)]
    f32 = _decode(OnnxCodecStreamer(fsq_model["asr"], fsq_model["onnx"], beam_size=4), waves)
    int8 = _decode(OnnxCodecStreamer(fsq_model["asr"], fsq_model["onnx"], int8=True, beam_size=4), waves)
    assert all(i[2] for i in int8) and sum(bool(i[1]) for i in int8) >= 2  # partials, and tokens
    same = sum(a[1] == b[1] for a, b in zip(int8, f32))
    print(f"int8 ({info['int8']['bytes']} bytes vs {info['int8']['float32_bytes']}): {same}/{len(waves)} finals "
          "identical to float32")


# refusals -------------------------------------------------------------------------------------------------
def test_what_the_graphs_cannot_express_is_refused(fsq_model, tmp_path):
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer, export_token_model
    from chunkssl.deploy.onnx_encoder import OnnxStreamingCodesEncoder, OnnxStreamingEncoder
    from chunkssl.deploy.onnx_tokenizer import export_tokenizer
    from chunkssl.fsq.bestrq import BestRQTokenizer
    from chunkssl.fsq.frontend import TokenFrontend

    asr, tok, out = fsq_model["asr"], fsq_model["tok"], tmp_path / "o"
    with pytest.raises(ExportRefused, match="unlimited left context"):
        export_token_model(asr, out, 640, -1, tok)
    with pytest.raises(ExportRefused, match="not the codes the model was trained on"):
        export_token_model(asr, out, 640, 4, make_tokenizer("rvq"))
    with pytest.raises(ExportRefused, match="only FSQ/RVQ tokenizers"):
        export_token_model(asr, out, 640, 4, BestRQTokenizer(codebook_size=16, codebook_dim=4))
    tok.encoder.inp.padding = (0,)  # not same-padded: a code's context is not centred, no exact streaming
    with pytest.raises(ExportRefused, match="cannot be streamed exactly"):
        export_tokenizer(tok, out / "t.onnx")
    tok.encoder.inp.padding = (1,)
    assert not out.exists()  # refused before anything is written
    model = asr.model

    class OtherFrontend(TokenFrontend):
        """A frontend that may embed otherwise."""

    frontend, model.frontend = model.frontend, copy.copy(model.frontend)
    model.frontend.__class__ = OtherFrontend
    try:
        with pytest.raises(ExportRefused, match="not the token frontend"):
            export_token_model(asr, out, 640, 4, tok)
    finally:
        model.frontend = frontend
    model.normalize = torch.nn.Identity()
    try:
        with pytest.raises(ExportRefused, match="normalize Identity on a token model"):
            export_token_model(asr, out, 640, 4, None)
    finally:
        model.normalize = None
    # each runner refuses the other's step; bad codes; an export without tokenizer.onnx needs the PyTorch one
    with pytest.raises(DataError, match="takes codes, not fbank"):
        OnnxStreamingEncoder(fsq_model["onnx"] / "encoder.onnx")
    step = OnnxStreamingCodesEncoder(fsq_model["onnx"] / "encoder.onnx")
    with pytest.raises(DataError, match="code 5 in channel 1 is outside"):
        step.accept(np.array([[0, 5, 0, 0]]))
    with pytest.raises(DataError, match="integer codes"):
        step.accept(np.zeros((2, 3), np.int64))
    _write_export(asr, out, 320, 2, None)
    with pytest.raises(DataError, match="no tokenizer.onnx was exported"):
        OnnxCodecStreamer(asr, out)
    assert OnnxCodecStreamer(asr, out, tok).chunk_ms == 320


def test_fbank_exports_are_not_codec_exports(tmp_path, fsq_model):
    from torch import nn
    from espnet2.asr.ctc import CTC

    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer, export_token_model
    from chunkssl.deploy.onnx_encoder import OnnxStreamingCodesEncoder
    from chunkssl.deploy.onnx_export import FORMAT_VERSION, export_encoder_step
    from chunkssl.encoder import ChunkConformerEncoder

    model = nn.Module()
    model.encoder = ChunkConformerEncoder(80, output_size=32, attention_heads=2, linear_units=32, num_blocks=1)
    model.ctc, model.normalize = CTC(9, 32), None
    meta = export_encoder_step(model.eval(), tmp_path / "encoder.onnx", 640, 4)
    assert meta["chunkssl_onnx_format"] == "1" and "input" not in meta  # fbank steps: the first format, unchanged
    with pytest.raises(DataError, match="takes fbank, not codes"):
        OnnxStreamingCodesEncoder(tmp_path / "encoder.onnx")
    (tmp_path / "encoder.json").write_text(json.dumps({**meta, "chunk_ms": 640, "left_chunks": 4}))
    with pytest.raises(DataError, match="the export of an fbank model"):
        OnnxCodecStreamer(fsq_model["asr"], tmp_path)
    asr = type(fsq_model["asr"])(model, [], None, None, None)
    with pytest.raises(ExportRefused, match="not a Codec-ASR token model"):
        export_token_model(asr, tmp_path / "x", 640, 4, None)
    import onnx

    proto = onnx.load(str(fsq_model["onnx"] / "encoder.onnx"))
    for prop in proto.metadata_props:
        if prop.key == "chunkssl_onnx_format":
            prop.value = str(FORMAT_VERSION + 1)
    onnx.save(proto, str(tmp_path / "newer.onnx"))
    with pytest.raises(DataError, match="newer than this chunkssl reads"):
        OnnxStreamingCodesEncoder(tmp_path / "newer.onnx")


# the command line -----------------------------------------------------------------------------------------
def _cli(made: dict, out, *extra) -> int:
    import soundfile as sf

    from chunkssl.bin import codec_asr_inference_streaming as cli

    wavs = out.parent / "wav"
    if not wavs.exists():
        wavs.mkdir()
        for i in range(5):
            sf.write(wavs / f"u{i}.wav", speech_like(1.0 + 0.7 * i, seed=70 + i), SR)
    scp = out.parent / "wav.scp"
    scp.write_text("".join(f"u{i} {wavs / f'u{i}.wav'}\n" for i in range(5)))
    return cli.main(["--asr_train_config", str(made["config"]), "--asr_model_file", str(made["model"]),
                     "--wav-scp", str(scp), "--piece-ms", "100", "--beam-size", "4", "--output-dir", str(out),
                     *extra])


def test_cli_onnx_backend_writes_the_same_text(fsq_model, tmp_path):
    from chunkssl.codec import asr_inference_streaming as codec_cli

    assert _cli(fsq_model, tmp_path / "torch", "--chunk-ms", "640", "--left-chunks", "4") == 0
    assert _cli(fsq_model, tmp_path / "onnx", "--backend", "onnx", "--onnx-dir", str(fsq_model["onnx"])) == 0
    text = (tmp_path / "torch" / "text").read_text()
    assert text.count("\n") == 5 and (tmp_path / "onnx" / "text").read_text() == text
    assert (tmp_path / "onnx" / "token_int").read_text() == (tmp_path / "torch" / "token_int").read_text()
    timing = json.loads((tmp_path / "onnx" / "timing.json").read_text())
    assert "tokenizer.onnx" in json.dumps(timing) and "onnx" in json.dumps(timing)
    # the codec decoder's own entry point is the torch backend
    scp = tmp_path / "wav.scp"
    assert codec_cli.main(["--asr_train_config", str(fsq_model["config"]), "--asr_model_file",
                           str(fsq_model["model"]), "--wav-scp", str(scp), "--piece-ms", "100", "--beam-size", "4",
                           "--chunk-ms", "640", "--left-chunks", "4", "--output-dir", str(tmp_path / "codec")]) == 0
    assert (tmp_path / "codec" / "text").read_text() == text


def test_cli_refuses_mismatching_options(fsq_model, tmp_path):
    onnx_dir = str(fsq_model["onnx"])
    with pytest.raises(DataError, match=r"--chunk-ms 320 does not match .*encoder.json: chunk_ms 640"):
        _cli(fsq_model, tmp_path / "a", "--backend", "onnx", "--onnx-dir", onnx_dir, "--chunk-ms", "320")
    with pytest.raises(DataError, match=r"--left-chunks -1 does not match"):
        _cli(fsq_model, tmp_path / "b", "--backend", "onnx", "--onnx-dir", onnx_dir, "--left-chunks", "-1")
    with pytest.raises(DataError, match="needs --onnx-dir"):
        _cli(fsq_model, tmp_path / "c", "--backend", "onnx")
    with pytest.raises(DataError, match="need --backend onnx"):
        _cli(fsq_model, tmp_path / "d", "--onnx-dir", onnx_dir)
    with pytest.raises(DataError, match="no such file"):
        _cli(fsq_model, tmp_path / "e", "--backend", "onnx", "--onnx-dir", str(tmp_path))


def test_export_onnx_cli_on_a_token_model(fsq_model, tmp_path, capsys):
    """The CLI exports the tokenizer the model's code_info records, the decoder and int8 copies."""
    from chunkssl.bin import export_onnx
    from chunkssl.deploy.onnx_codec import OnnxCodecStreamer

    out = tmp_path / "onnx"
    argv = ["--asr_train_config", str(fsq_model["config"]), "--asr_model_file", str(fsq_model["model"]),
            "--chunk-ms", "640", "--left-chunks", "4", "--out-dir", str(out)]
    assert export_onnx.main([*argv, "--int8"]) == 0
    printed = capsys.readouterr().out
    assert "tokenizer.onnx" in printed and "decoder.onnx" in printed
    assert sorted(p.name for p in out.iterdir()) == ["decoder.int8.onnx", "decoder.onnx", "encoder.int8.onnx",
                                                     "encoder.json", "encoder.onnx", "tokenizer.onnx"]
    info = json.loads((out / "encoder.json").read_text())
    assert info["input"] == "codes" and info["tokenizer"]["file"] == "tokenizer.onnx"
    asr, tok = fsq_model["asr"], fsq_model["tok"]
    streamer = OnnxCodecStreamer(asr, out, beam_size=4)
    assert streamer.tokenizer_path == out / "tokenizer.onnx" and streamer.decoder_path == out / "decoder.onnx"
    waves = [speech_like(s, seed=90 + i) for i, s in enumerate([2.3, 1.4])]
    want = _decode(codec_streamer(asr, tok, 640, 4, beam_size=4), waves)
    assert [g[:2] for g in _decode(streamer, waves)] == [w[:2] for w in want]
    # a re-export without --int8 drops the int8 files of the first
    assert export_onnx.main(argv) == 0
    assert not (out / "encoder.int8.onnx").exists() and not (out / "decoder.int8.onnx").exists()
