"""Codec-ASR decoding: the streaming tokenizer gives the offline codes, the non-subsampling encoder input
layer, and true streaming from fbank (tokenizer -> token frontend -> cached chunks) equal to the
chunk-masked offline decode of the offline codes."""

from __future__ import annotations

import pytest
import torch

from chunkssl.asr.model import LoadedASR
from chunkssl.codec.decode import check_token_model, decode_codes, encode_codes
from chunkssl.codec.streaming import CodecStreamingEncoder, StreamingTokenizer, codec_streamer, lookahead_frames
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.fileio import DataError
from chunkssl.fsq.tokenizer import FSQTokenizer


def _fbank(frames: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.cumsum(torch.randn(frames, 80, generator=gen) * 0.3, 0) + torch.randn(80, generator=gen)


def _tokenizer(kind: str, blocks: int = 2, kernel: int = 3) -> FSQTokenizer:
    torch.manual_seed(0)
    if kind == "rvq":
        tok = FSQTokenizer(quantizer="rvq", rvq_conf=dict(num_codebooks=2, codebook_size=16, dim=4), hidden=16,
                           num_blocks=blocks, kernel_size=kernel)
        tok.train()
        tok(torch.stack([_fbank(60, s) for s in range(3)]), torch.tensor([60, 60, 60]))  # k-means init
    else:
        tok = FSQTokenizer(levels=[[8, 5, 5, 5]], hidden=16, num_blocks=blocks, kernel_size=kernel)
    with torch.no_grad():
        tok.cmvn.mean.normal_()
        tok.cmvn.std.uniform_(0.5, 2.0)
    return tok.eval()


def _pieces(total: int, seed: int) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    sizes, done = [], 0
    while done < total:
        n = min(int(torch.randint(0, 9, (1,), generator=gen)), total - done)
        sizes.append(n)
        done += n
    return sizes


def test_lookahead_of_the_conv_stack():
    assert lookahead_frames(_tokenizer("fsq", blocks=2, kernel=3).encoder) == 5  # input conv + 2 per block
    assert lookahead_frames(_tokenizer("fsq", blocks=1, kernel=5).encoder) == 6
    assert StreamingTokenizer(_tokenizer("fsq", blocks=1, kernel=3)).lookahead_ms == 120


@pytest.mark.parametrize("kind", ["fsq", "rvq"])
@pytest.mark.parametrize("frames", [3, 4, 23, 61, 130])
def test_streaming_tokenizer_equals_offline_codes(kind, frames):
    tok = _tokenizer(kind)
    feats = _fbank(frames, seed=frames)
    st = StreamingTokenizer(tok)
    got, fed = [], 0
    for n in _pieces(frames, seed=frames):
        codes = st.accept(feats[fed:fed + n])
        fed += n
        got.append(codes)
        # a code comes out exactly when R stacked frames past it are in
        assert sum(c.shape[0] for c in got) == max(0, fed // tok.stack - st.lookahead)
        assert st.buffered_frames <= 2 * st.lookahead + 1
    got.append(st.finalize())
    streamed = torch.cat(got)
    if frames < tok.stack:
        assert streamed.shape[0] == 0
        return
    offline, lens = tok.tokenize(feats[None], torch.tensor([frames]))
    assert int(lens[0]) == frames // tok.stack
    assert torch.equal(streamed, offline[0])
    assert st.buffered_frames == 0  # finalize resets
    with pytest.raises(DataError, match="fbank frames"):
        st.accept(torch.zeros(3, 40))


def test_linear_input_layer_keeps_the_frame_rate():
    enc = ChunkConformerEncoder(input_size=12, output_size=16, attention_heads=2, linear_units=16, num_blocks=1,
                                input_layer="linear").eval()
    out, lens, _ = enc(torch.randn(2, 9, 12), torch.tensor([9, 5]))
    assert out.shape == (2, 9, 16) and lens.tolist() == [9, 5]
    # chunk mask on the token frames: frame 0..3 (first chunk of 4) never see frame 4 onwards
    enc.chunk_size = 4
    x = torch.randn(1, 9, 12)
    y = x.clone()
    y[:, 4:] += 1.0
    a, _, _ = enc(x, torch.tensor([9]))
    b, _, _ = enc(y, torch.tensor([9]))
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6) and not torch.allclose(a[:, 4:], b[:, 4:])
    with pytest.raises(ValueError, match="input_layer"):
        ChunkConformerEncoder(input_size=12, input_layer="conv1d")


def _token_asr(tmp_path, tok: FSQTokenizer, input_layer: str = "linear") -> LoadedASR:
    import yaml
    from espnet2.tasks.asr import ASRTask
    from espnet2.text.token_id_converter import TokenIDConverter

    import chunkssl.espnet_glue  # noqa: F401

    info = dict(tokenizer=tok.quantizer_type, groups=tok.code_groups, levels=tok.code_levels, frame_shift_ms=40)
    (tmp_path / "code_info.yaml").write_text(yaml.safe_dump(info))
    (tmp_path / "tokens.txt").write_text("<blank>\n<unk>\na\nb\nc\nd\n<sos/eos>\n")
    argv = ["--token_list", str(tmp_path / "tokens.txt"), "--frontend", "token",
            "--frontend_conf", f"code_info={tmp_path / 'code_info.yaml'}", "--frontend_conf", "embed_dim=16",
            "--frontend_conf", "init=random", "--normalize", "none", "--encoder", "chunk_conformer",
            "--decoder", "transformer"]
    for opt in ("output_size=16", "attention_heads=2", "linear_units=16", "num_blocks=2", "cnn_module_kernel=5",
                f"input_layer={input_layer}"):
        argv += ["--encoder_conf", opt]
    for opt in ("attention_heads=2", "linear_units=16", "num_blocks=1"):
        argv += ["--decoder_conf", opt]
    args = ASRTask.get_parser().parse_args(argv)
    torch.manual_seed(1)
    model = ASRTask.build_model(args).eval()
    # a blank-heavy random CTC still yields short non-empty hypotheses for the search to compare
    return LoadedASR(model, list(model.token_list), None, TokenIDConverter(list(model.token_list)), args)


@pytest.mark.parametrize("kind,chunk_ms", [("fsq", 160), ("rvq", 640)])
def test_codec_streamer_equals_chunk_masked_offline(tmp_path, kind, chunk_ms):
    tok = _tokenizer(kind)
    asr = _token_asr(tmp_path, tok)
    chunk = chunk_ms // 40
    streamer = codec_streamer(asr, tok, chunk_ms, left_chunks=-1, beam_size=4, ctc_weight=0.3)
    assert isinstance(streamer.encoder, CodecStreamingEncoder)
    for utt, frames in enumerate([37, 150, 251]):
        feats = _fbank(frames, seed=100 + utt)
        codes = tok.tokenize(feats[None], torch.tensor([frames]))[0][0]
        offline_enc = encode_codes(asr, codes, chunk, -1)
        # the streaming encoder alone, fed fbank in uneven pieces
        enc = streamer.encoder
        enc.reset()
        outs, fed = [], 0
        for n in _pieces(frames, seed=utt):
            outs.append(enc.accept(feats[fed:fed + n]))
            fed += n
            # only whole chunks are output before the end
            assert enc.num_encoded % chunk == 0
        outs.append(enc.finalize())
        assert torch.allclose(torch.cat(outs), offline_enc, atol=1e-4)
        # the whole streamer (fbank -> ... -> rescoring) from its encoder down, as the Streamer API runs it
        enc.reset()
        streamer.search.reset()
        streamer._enc_outs = []
        fed = 0
        for n in _pieces(frames, seed=utt):
            streamer._advance(enc.accept(feats[fed:fed + n]))
            fed += n
        streamer._advance(enc.finalize())
        from chunkssl.search.rescoring import rescore

        nbest = streamer.search.nbest()
        model = asr.model
        best = rescore(model.decoder, torch.cat(streamer._enc_outs), nbest, model.sos, model.eos, 0.3)[0].tokens \
            if nbest else ()
        assert best == decode_codes(asr, codes, chunk, -1, beam_size=4, ctc_weight=0.3)
        streamer.reset()


def test_audio_streamer_runs_and_refuses_wrong_models(tmp_path):
    import numpy as np

    tok = _tokenizer("fsq")
    asr = _token_asr(tmp_path, tok)
    streamer = codec_streamer(asr, tok, 320, beam_size=3)
    wave = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    events = []
    for start in range(0, wave.size, 640):
        events += streamer.accept(wave[start:start + 640])
    final = streamer.finalize()
    # 1 s of audio: 98 fbank frames, 24 codes, 5 lookahead codes held back until the end: 2 full chunks of 8
    assert [e.type for e in events] == ["partial", "partial"]
    assert final.type == "final" and final.audio_s == pytest.approx(1.0)
    assert streamer.encoder.tokenizer.buffered_frames == 0
    with pytest.raises(DataError, match="not the codes"):
        codec_streamer(asr, _tokenizer("rvq"), 320)
    with pytest.raises(DataError, match="input_layer: linear"):
        check_token_model(_token_asr(tmp_path, tok, input_layer="conv2d"))
