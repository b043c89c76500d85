"""Residual VQ (k-means init, EMA, dead codes, straight-through), the RVQ tokenizer option and bitrates."""

from __future__ import annotations

import argparse
import math

import pytest
import torch

from chunkssl.codec.bitrate import (EQUAL_BITRATE_RVQ, bits_per_second, bits_per_token, code_info_bitrate,
                                    preset_table, rvq_groups)
from chunkssl.fsq.rvq import ResidualVQ, kmeans, nearest_codeword
from chunkssl.fsq.io import make_code_info
from chunkssl.fsq.quantizer import PRESETS
from chunkssl.fsq.task import FSQTask
from chunkssl.fsq.tokenizer import FSQTokenizer


def _blobs(n: int = 600, dim: int = 8, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(12, dim, generator=gen) * 3
    return centres[torch.randint(12, (n,), generator=gen)] + torch.randn(n, dim, generator=gen)


def test_more_codebooks_reconstruct_better():
    x = _blobs()
    rvq = ResidualVQ(dim=8, num_codebooks=4, codebook_size=16, dead_code_threshold=0.0, seed=1)
    rvq.train()
    rvq(x)  # k-means init (stage by stage on the residuals) and one EMA step
    rvq.eval()
    values, codes, _ = rvq(x)
    assert codes.shape == (600, 4) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    assert torch.allclose(values, rvq.decode(codes), atol=1e-5)  # forward value == sum of codewords
    errors = [float((rvq.decode(codes[:, :n]) - x).pow(2).mean()) for n in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0]


def test_kmeans_init_deterministic_for_a_seed():
    x = _blobs(seed=2)

    def init(seed: int) -> torch.Tensor:
        rvq = ResidualVQ(dim=8, num_codebooks=2, codebook_size=16, dead_code_threshold=0.0, seed=seed)
        rvq.train()
        assert float(rvq.initted) == 0.0
        rvq._kmeans_init(x)
        assert float(rvq.initted) == 1.0
        return rvq.codebooks.clone()

    assert torch.equal(init(5), init(5))
    assert not torch.equal(init(5), init(6))
    # converged Lloyd: every centroid is the mean of the frames nearest to it
    centroids, counts = kmeans(x, 8, 50, torch.Generator().manual_seed(0))
    assign = nearest_codeword(x, centroids)
    for k in range(8):
        if counts[k] > 0:
            assert torch.allclose(centroids[k], x[assign == k].mean(0), atol=1e-4)
    assert int(counts.sum()) == x.shape[0]


def test_ema_update_moves_codewords_to_assigned_means():
    rvq = ResidualVQ(dim=2, num_codebooks=1, codebook_size=2, decay=0.5, epsilon=0.0, kmeans_init=False,
                     dead_code_threshold=0.0)
    rvq.set_codebooks(torch.tensor([[[0.0, 0.0], [10.0, 10.0]]]))
    z = torch.tensor([[1.0, 1.0], [3.0, 3.0], [9.0, 9.0], [100.0, 100.0]])
    mask = torch.tensor([True, True, True, False])  # the last frame is padding: it must not count
    rvq.train()
    _, codes, _ = rvq(z, mask)
    assert codes[:3, 0].tolist() == [0, 0, 1]
    # new = (d * old_sum + (1-d) * batch_sum) / (d * old_count + (1-d) * batch_count), old_count = 1
    assert torch.allclose(rvq.cluster_size[0], torch.tensor([0.5 + 0.5 * 2, 0.5 + 0.5 * 1]))
    assert torch.allclose(rvq.codebooks[0, 0], torch.full((2,), (0.5 * 0 + 0.5 * 4) / 1.5))
    assert torch.allclose(rvq.codebooks[0, 1], torch.full((2,), (0.5 * 10 + 0.5 * 9) / 1.0))
    # both moved toward the mean of their assigned frames (2 and 9)
    assert abs(float(rvq.codebooks[0, 0, 0]) - 2.0) < 2.0 and abs(float(rvq.codebooks[0, 1, 0]) - 9.0) < 1.0
    rvq.eval()
    before = rvq.codebooks.clone()
    rvq(z, mask)
    assert torch.equal(rvq.codebooks, before), "eval mode must not update codebooks"


def test_dead_code_replaced_by_a_batch_frame():
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=2, num_codebooks=1, codebook_size=2, decay=0.5, kmeans_init=False,
                     dead_code_threshold=0.9)
    rvq.set_codebooks(torch.tensor([[[0.0, 0.0], [100.0, 100.0]]]))
    z = torch.tensor([[0.5, 0.1], [-0.4, 0.3], [0.2, -0.6], [1.0, 1.2]])
    rvq.train()
    _, codes, _ = rvq(z)
    assert codes[:, 0].tolist() == [0, 0, 0, 0]  # codeword 1 unused: EMA size 0.5 < 0.9 -> dead
    new = rvq.codebooks[0, 1]
    assert any(torch.equal(new, row) for row in z), f"dead codeword {new} not replaced by a frame"
    assert float(rvq.cluster_size[0, 1]) == pytest.approx(0.9)
    assert torch.allclose(rvq.embed_sum[0, 1], new * 0.9)
    assert float(rvq.cluster_size[0, 0]) == pytest.approx(2.5)  # the live code is kept
    rvq.eval()
    assert rvq(z)[1][:, 0].unique().numel() == 2  # the replaced codeword now takes frames


def test_straight_through_gradient_and_commitment():
    rvq = ResidualVQ(dim=4, num_codebooks=2, codebook_size=8, kmeans_init=False).eval()  # fixed codebooks
    z = torch.randn(5, 4, requires_grad=True)
    values, codes, commit = rvq(z)
    g = torch.randn(5, 4)
    (values * g).sum().backward()
    assert torch.allclose(z.grad, g), "the straight-through estimator passes the gradient unchanged"
    residual = z.detach() - rvq.codebooks[0][codes[:, 0]]
    expected = (residual.pow(2).mean() + (residual - rvq.codebooks[1][codes[:, 1]]).pow(2).mean())
    assert float(commit.detach()) == pytest.approx(float(expected), rel=1e-5)
    z.grad = None
    commit.backward()
    assert float(z.grad.abs().sum()) > 0


def test_rvq_tokenizer_option_and_config_errors():
    torch.manual_seed(0)
    tok = FSQTokenizer(quantizer="rvq", rvq_conf=dict(num_codebooks=2, codebook_size=16, dim=4), hidden=16,
                       num_blocks=1)
    assert tok.code_levels == [16, 16] and tok.code_groups == [[16], [16]]
    feats = torch.cumsum(torch.randn(2, 40, 80) * 0.3, 1)
    lengths = torch.tensor([40, 24])
    loss, stats, _ = tok(feats, lengths)
    assert {"commit", "mse", "code_usage"} <= set(stats)
    assert float(loss.detach()) == pytest.approx(float(stats["mse"] + 0.25 * stats["commit"]), rel=1e-5)
    loss.backward()
    assert float(tok.encoder.inp.weight.grad.abs().sum()) > 0
    tok.eval()
    codes, lens = tok.tokenize(feats, lengths)
    single, _ = tok.tokenize(feats[1:, :24], lengths[1:])
    assert torch.equal(codes[1, :6], single[0]) and bool((codes[1, 6:] == -1).all())
    info = make_code_info(tok, {}, codes.numpy().dtype)
    assert info["tokenizer"] == "rvq" and info["groups"] == [[16], [16]] and info["vocab_size"] == 256
    with pytest.raises(ValueError, match="quantizer must be"):
        FSQTokenizer(quantizer="vq")
    with pytest.raises(ValueError, match="rvq_conf is given"):
        FSQTokenizer(rvq_conf=dict(num_codebooks=2))
    args = argparse.Namespace(model_conf=dict(quantizer="rvq", levels="64k"), cmvn_stats=None, collect_stats=True)
    with pytest.raises(ValueError, match="levels is an FSQ option"):
        FSQTask.build_model(args)
    args.model_conf = dict(quantizer="rvq", rvq_conf=dict(codebooks=2))
    with pytest.raises(ValueError, match=r"unknown rvq_conf option\(s\) \['codebooks'\]"):
        FSQTask.build_model(args)
    args.model_conf = dict(quantizer="rvq", rvq_conf=dict(codebook_size=64), hidden=16, num_blocks=1)
    FSQTask.build_model(args)
    assert args.model_conf["rvq_conf"]["codebook_size"] == 64 and args.model_conf["rvq_conf"]["decay"] == 0.99


def test_bitrate_of_presets_and_equal_bitrate_rvq():
    assert bits_per_token(PRESETS["64k"]) == pytest.approx(math.log2(64000))
    assert bits_per_second(PRESETS["64k"], 40) == pytest.approx(25 * math.log2(64000))  # 399.1 bit/s
    assert bits_per_second(rvq_groups(2, 256), 40) == pytest.approx(400.0)
    assert bits_per_second(PRESETS["1k"], 40) == pytest.approx(249.1, abs=0.05)
    assert bits_per_second(PRESETS["6m"]) == pytest.approx(bits_per_second(rvq_groups(2, 2401)))
    assert bits_per_second([8, 5], 20) == pytest.approx(50 * math.log2(40))
    for row in preset_table():
        assert abs(row["fsq_bps"] - row["rvq_bps"]) / row["fsq_bps"] < 0.01, row
    assert set(EQUAL_BITRATE_RVQ) == set(PRESETS)
    rate = code_info_bitrate(dict(groups=[[8192]], frame_shift_ms=40))  # BEST-RQ default
    assert rate == dict(bits_per_token=13.0, bits_per_second=325.0, tokens_per_second=25.0)
    with pytest.raises(ValueError):
        bits_per_second([8, 1])
