"""Token frontend: codebook initialisation (FSQ values, RVQ codewords), combine modes, token SpecAugment
masks inside valid lengths only, noise, bad codes, and use as an ESPnet ASR frontend."""

from __future__ import annotations

import pytest
import torch
import yaml

from chunkssl.fsq.frontend import TokenFrontend, register_token_frontend
from chunkssl.fsq.specaug import TokenSpecAug, span_mask
from chunkssl.fileio import DataError
from chunkssl.fsq.quantizer import FSQ, resolve_levels
from chunkssl.fsq.tokenizer import FSQTokenizer


def _info(kind: str, groups: list[list[int]], **extra) -> dict:
    return dict(tokenizer=kind, groups=groups, levels=[v for g in groups for v in g], frame_shift_ms=40, **extra)


def _random_codes(levels: list[int], batch: int = 3, frames: int = 11, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, lv, (batch, frames), generator=gen) for lv in levels], dim=-1)


@pytest.mark.parametrize("preset,embed", [("64k", "channel"), ("64k", "group"), ("791m", "channel"),
                                          ("1k", "group")])
def test_fsq_codebook_init_reproduces_dequantized_values(preset, embed):
    groups = resolve_levels(preset)
    fsq = FSQ(groups)
    codes = _random_codes(fsq.levels)
    lengths = torch.tensor([11, 7, 1])
    expected = fsq.codes_to_values(codes)
    # embed_dim == channels: the summed embeddings ARE the dequantized vector
    fe = TokenFrontend(_info("fsq", groups), embed=embed, embed_dim=fsq.dim).eval()
    out, out_lens = fe(codes, lengths)
    out = out.detach()
    assert torch.equal(out_lens, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(out[b, :n], expected[b, :n], atol=1e-6)
        assert not bool(out[b, n:].any())
    # wider embeddings: a linear map W q with orthogonal columns, so q is recovered exactly
    fe = TokenFrontend(_info("fsq", groups), embed=embed, embed_dim=32).eval()
    out, _ = fe(codes, lengths)
    gram = fe.basis.t() @ fe.basis
    assert torch.allclose(gram, torch.eye(fsq.dim) * 32 / fsq.dim, atol=1e-4)
    recovered = out[0] @ fe.basis / (32 / fsq.dim)
    assert torch.allclose(recovered, expected[0], atol=1e-5)


def test_codebook_init_survives_espnet_init():
    from espnet2.torch_utils.initialize import initialize

    groups = resolve_levels("1k")
    fe = TokenFrontend(_info("fsq", groups), embed_dim=4, combine="sum", output_size=8,
                       specaug=dict(num_time_mask=1))
    before = fe.table.detach().clone()
    initialize(torch.nn.Sequential(fe), "xavier_uniform")  # resets embeddings, then calls our hook
    assert torch.equal(fe.table, before)
    assert not bool(fe.specaug.mask_embedding.any())


@pytest.fixture(scope="module")
def rvq_model(tmp_path_factory) -> dict:
    """A small RVQ tokenizer after its k-means init, saved the way fsq_train saves one."""
    torch.manual_seed(0)
    conf = dict(quantizer="rvq", rvq_conf=dict(num_codebooks=3, codebook_size=16, dim=4), hidden=16, num_blocks=1)
    tok = FSQTokenizer(**conf)
    tok(torch.cumsum(torch.randn(3, 60, 80) * 0.3, 1), torch.tensor([60, 52, 40]))  # k-means init
    root = tmp_path_factory.mktemp("rvq")
    torch.save(tok.state_dict(), root / "model.pth")
    (root / "config.yaml").write_text(yaml.safe_dump(dict(model_conf=conf)))
    info = _info("rvq", [[16]] * 3, model_file=str(root / "model.pth"), config_file=str(root / "config.yaml"))
    return dict(tok=tok.eval(), info=info, root=root)


def test_rvq_codebook_init_uses_codewords(rvq_model):
    rvq = rvq_model["tok"].quantizer
    assert float(rvq.initted) == 1.0
    fe = TokenFrontend(rvq_model["info"], embed_dim=4).eval()
    for n in range(3):
        assert torch.equal(fe.unit_table(n), rvq.codebooks[n])
    codes = _random_codes([16] * 3)
    out, _ = fe(codes, torch.tensor([11, 11, 11]))
    assert torch.allclose(out, rvq.decode(codes), atol=1e-5)
    # explicit model path (code_info without model_file) and wider embeddings
    info = {k: v for k, v in rvq_model["info"].items() if k not in ("model_file", "config_file")}
    fe = TokenFrontend(info, model=str(rvq_model["root"] / "model.pth"), embed_dim=12, combine="mean").eval()
    out, _ = fe(codes, torch.tensor([11, 11, 11]))
    assert torch.allclose(out @ fe.basis / 3.0, rvq.decode(codes) / 3, atol=1e-5)  # mean of 3 units
    with pytest.raises(DataError, match="needs the tokenizer checkpoint"):
        TokenFrontend(info)
    with pytest.raises(DataError, match="not the codes"):
        TokenFrontend(_info("rvq", [[16]] * 2, model_file=rvq_model["info"]["model_file"]))
    with pytest.raises(ValueError, match="use init: random"):
        TokenFrontend(_info("bestrq", [[64]]))
    TokenFrontend(_info("bestrq", [[64]]), init="random")


@pytest.mark.parametrize("combine,output_size,dim", [("sum", None, 16), ("mean", None, 16), ("concat", None, 64),
                                                     ("concat", 20, 20), ("sum", 24, 24)])
def test_output_shapes_and_lengths(combine, output_size, dim):
    groups = [[8, 5], [5, 5]]
    fe = TokenFrontend(_info("fsq", groups), embed_dim=16, combine=combine, output_size=output_size).eval()
    assert fe.output_size() == dim
    codes = _random_codes([8, 5, 5, 5], batch=2, frames=9)
    codes[1, 6:] = -1  # ESPnet pads int arrays with -1
    lengths = torch.tensor([9, 6])
    out, out_lens = fe(codes, lengths)
    assert out.shape == (2, 9, dim) and out_lens.tolist() == [9, 6]
    assert not bool(out[1, 6:].any())
    as_float, _ = fe(codes.clamp(min=0).float(), lengths)  # kaldi_ark float32 codes, zero-padded
    assert torch.allclose(out, as_float)
    fe_group = TokenFrontend(_info("fsq", groups), embed="group", embed_dim=16, combine=combine,
                             output_size=output_size)
    assert fe_group.num_units == 2 and fe_group.output_size() == (32 if dim == 64 else dim)


def test_bad_codes_get_clear_errors():
    fe = TokenFrontend(_info("fsq", [[8, 5]]), embed_dim=4)
    with pytest.raises(DataError, match=r"codes \[batch, frames, 2\]"):
        fe(torch.zeros(1, 5, 3, dtype=torch.long), torch.tensor([5]))
    bad = torch.zeros(1, 5, 2, dtype=torch.long)
    bad[0, 2, 1] = 5
    with pytest.raises(DataError, match=r"code 5 in channel 1 is outside \[0, 4\]"):
        fe(bad, torch.tensor([5]))
    fe(bad, torch.tensor([2]))  # the bad code is past the length: ignored
    with pytest.raises(DataError, match="non-integer"):
        fe(torch.full((1, 5, 2), 0.5), torch.tensor([5]))
    with pytest.raises(ValueError, match="embed_dim >= 2"):
        TokenFrontend(_info("fsq", [[8, 5]]), embed_dim=1)
    with pytest.raises(ValueError, match="use embed: channel"):
        TokenFrontend(_info("fsq", resolve_levels("6m")), embed="group")


def test_span_mask_hand_checked():
    lengths = torch.tensor([5, 2, 0])
    gen = torch.Generator().manual_seed(0)
    m = span_mask(lengths, 6, 1, (3, 3), generator=gen)
    row0 = m[0].tolist()
    start = row0.index(True)
    assert row0 == [False] * start + [True] * 3 + [False] * (3 - start) and start + 3 <= 5
    assert m[1].tolist() == [True, True, False, False, False, False]  # width cut to the length
    assert not bool(m[2].any())
    assert not bool(span_mask(lengths, 6, 2, (0, 0), generator=gen).any())
    capped = span_mask(torch.tensor([10] * 50), 10, 1, (8, 8), max_ratio=0.2, generator=gen)
    assert capped.sum(1).tolist() == [2] * 50
    with pytest.raises(ValueError, match="width range"):
        span_mask(lengths, 6, 1, (4, 2))


def test_token_specaug_masks_only_inside_valid_lengths():
    aug = TokenSpecAug(num_units=4, embed_dim=3, num_time_mask=3, time_mask_width_range=(1, 4),
                       num_group_mask=1, group_mask_width_range=(1, 1))
    lengths = torch.tensor([20, 7, 1, 12])
    gen = torch.Generator().manual_seed(3)
    for _ in range(50):
        mask = aug.unit_mask(lengths, 20, gen)  # [B, T, U]
        for b, n in enumerate(lengths.tolist()):
            assert not bool(mask[b, n:].any()), "masked a padded frame"
            # the group mask hides at least one unit on every valid frame
            assert int(mask[b, :n].all(dim=0).sum()) >= 1
            # a frame with all 4 units hidden comes only from the 3 time masks of width <= 4
            assert int(mask[b, :n].all(dim=1).sum()) <= min(3 * 4, n)
    emb = torch.randn(4, 20, 4, 3)
    with torch.no_grad():
        aug.mask_embedding.fill_(7.0)
    out = aug(emb, lengths, torch.Generator().manual_seed(0))
    changed = (out != emb).any(-1)
    for b, n in enumerate(lengths.tolist()):
        assert not bool(changed[b, n:].any())
        assert bool((out[changed] == 7.0).all())
    assert bool(changed.any())
    aug.eval()
    assert aug(emb, lengths) is emb


def test_frontend_specaug_and_noise_train_only():
    groups = [[8, 5, 5, 5]]
    codes = _random_codes([8, 5, 5, 5], batch=3, frames=30)
    lengths = torch.tensor([30, 17, 4])
    base = TokenFrontend(_info("fsq", groups), embed_dim=8).eval()
    reference, _ = base(codes, lengths)
    for conf in (dict(specaug=dict(num_time_mask=2, time_mask_width_range=[2, 5], num_group_mask=1,
                                   group_mask_width_range=[1, 2], replace="zero")),
                 dict(noise_std=0.5)):
        fe = TokenFrontend(_info("fsq", groups), embed_dim=8, **conf)
        fe.train()
        torch.manual_seed(0)
        out, _ = fe(codes, lengths)
        valid = torch.arange(30).unsqueeze(0) < lengths.unsqueeze(1)
        assert not bool(out[~valid].any()), "padded frames must stay zero"
        assert not torch.allclose(out[valid], reference[valid])
        fe.eval()
        assert torch.equal(fe(codes, lengths)[0], reference)


def test_register_and_build_espnet_asr_model(tmp_path):
    register_token_frontend()
    register_token_frontend()  # idempotent
    from espnet2.tasks.asr import ASRTask, frontend_choices

    assert frontend_choices.get_class("token") is TokenFrontend
    code_info = tmp_path / "code_info.yaml"
    code_info.write_text(yaml.safe_dump(_info("fsq", [[8, 5, 5, 5]])))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\nc\n<sos/eos>\n")
    small = ["attention_heads=2", "linear_units=32", "num_blocks=1"]
    argv = ["--token_list", str(tokens), "--frontend", "token", "--frontend_conf", f"code_info={code_info}",
            "--frontend_conf", "embed_dim=16", "--frontend_conf", "specaug={num_time_mask: 1}",
            "--normalize", "none", "--init", "xavier_uniform", "--encoder", "transformer",
            "--encoder_conf", "output_size=16", "--encoder_conf", "input_layer=linear", "--decoder", "transformer"]
    for opt in small:
        argv += ["--encoder_conf", opt, "--decoder_conf", opt]
    args = ASRTask.get_parser().parse_args(argv)
    model = ASRTask.build_model(args)
    assert isinstance(model.frontend, TokenFrontend) and model.frontend.output_size() == 16
    codes = _random_codes([8, 5, 5, 5], batch=2, frames=12)
    codes[1, 9:] = -1
    fsq = FSQ([[8, 5, 5, 5]])
    model.eval()
    feats, _ = model.frontend(codes, torch.tensor([12, 9]))
    assert torch.allclose(feats[0] @ model.frontend.basis / 4.0, fsq.codes_to_values(codes[0]), atol=1e-5)
    model.train()
    loss, stats, _ = model(speech=codes, speech_lengths=torch.tensor([12, 9]),
                           text=torch.tensor([[2, 3, 4], [3, 4, -1]]), text_lengths=torch.tensor([3, 2]))
    loss.backward()
    assert torch.isfinite(loss).all() and float(model.frontend.table.grad.abs().sum()) > 0
