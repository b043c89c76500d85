"""FSQ tokenizer model and BEST-RQ: stacking, batch == one-by-one, gradients, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chunkssl.fileio import DataError
from chunkssl.fsq.bestrq import BestRQTokenizer
from chunkssl.fsq.features import GlobalCMVN, read_cmvn_stats, stack_frames, stacked_lengths, unstack_frames
from chunkssl.fsq.tokenizer import FSQTokenizer


def _pad(mats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[0] for m in mats])
    out = torch.zeros(len(mats), int(lengths.max()), mats[0].shape[1])
    for i, m in enumerate(mats):
        out[i, : m.shape[0]] = m
    return out, lengths


def _utts(seed: int = 0, lengths=(37, 4, 101, 9, 64)) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    # smooth random trajectories look more like fbank than white noise
    return [torch.cumsum(torch.randn(n, 80, generator=gen) * 0.3, 0) + 5 for n in lengths]


def _stats_file(tmp_path, mats) -> str:
    allf = torch.cat(mats).double().numpy()
    path = tmp_path / "cmvn_stats.npz"
    np.savez(path, count=np.array(allf.shape[0]), sum=allf.sum(0), sum_square=(allf ** 2).sum(0))
    return str(path)


def test_stack_frames_hand_checked():
    x = torch.arange(2 * 9 * 2, dtype=torch.float32).reshape(2, 9, 2)
    s = stack_frames(x, 4)
    assert s.shape == (2, 2, 8)
    assert s[0, 1].tolist() == x[0, 4:8].reshape(-1).tolist()  # frames 4..7, the 9th is dropped
    assert stacked_lengths(torch.tensor([9, 7, 3, 0]), 4).tolist() == [2, 1, 0, 0]
    assert torch.equal(unstack_frames(s, 4), x[:, :8])


def test_cmvn_stats_normalise(tmp_path):
    mats = _utts()
    cmvn = GlobalCMVN(80, _stats_file(tmp_path, mats))
    feats, lengths = _pad(mats)
    normed = cmvn(feats, lengths)
    valid = torch.cat([normed[i, :n] for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(valid.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(valid.std(0, unbiased=False), torch.ones(80), atol=1e-3)
    assert float(normed[1, 4:].abs().max()) == 0.0  # padding stays zero


def test_bad_cmvn_stats(tmp_path):
    np.savez(tmp_path / "wrong.npz", count=np.array(10), sum=np.zeros(40), sum_square=np.ones(40))
    with pytest.raises(DataError, match="dimension 40"):
        read_cmvn_stats(tmp_path / "wrong.npz", 80)
    np.savez(tmp_path / "keys.npz", mean=np.zeros(80))
    with pytest.raises(DataError, match="lack"):
        read_cmvn_stats(tmp_path / "keys.npz", 80)
    with pytest.raises(DataError, match="not found"):
        read_cmvn_stats(tmp_path / "missing.npz", 80)


def test_codes_batch_equals_one_by_one(tmp_path):
    torch.manual_seed(0)
    mats = _utts()
    tok = FSQTokenizer(levels="64k", hidden=32, num_blocks=2, kernel_size=5, cmvn_stats=_stats_file(tmp_path, mats))
    tok.eval()
    # untrained weights: scale the projection so codes spread over the grid instead of sitting at the centre
    with torch.no_grad():
        tok.encoder.out.weight.mul_(20)
    feats, lengths = _pad(mats)
    batch_codes, batch_lens = tok.tokenize(feats, lengths)
    assert batch_lens.tolist() == [n // 4 for n in (37, 4, 101, 9, 64)]
    for i, m in enumerate(mats):
        single, single_len = tok.tokenize(m.unsqueeze(0), torch.tensor([m.shape[0]]))
        n = int(single_len[0])
        assert torch.equal(batch_codes[i, :n], single[0]), f"utterance {i} differs between batch and alone"
        assert bool((batch_codes[i, n:] == -1).all())
    used = batch_codes[batch_codes >= 0]
    assert used.unique().numel() > 3  # the comparison is not between two constant outputs


def test_training_step_reaches_encoder_and_lowers_loss(tmp_path):
    torch.manual_seed(0)
    mats = _utts(lengths=(40, 48, 60))
    tok = FSQTokenizer(levels="1k", hidden=32, num_blocks=1, cmvn_stats=_stats_file(tmp_path, mats))
    feats, lengths = _pad(mats)
    loss, stats, weight = tok(feats, lengths)
    assert set(stats) >= {"loss", "mse", "rel_mse", "code_usage"} and int(weight) == 3
    loss.backward()
    grad = tok.encoder.inp.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0, "no gradient through the rounding"
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    first = float(loss.detach())
    for _ in range(20):
        opt.zero_grad()
        loss, _, _ = tok(feats, lengths)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first


def test_padding_does_not_change_training_loss(tmp_path):
    torch.manual_seed(0)
    mats = _utts(lengths=(40, 21))
    tok = FSQTokenizer(levels="1k", hidden=16, num_blocks=1, cmvn_stats=_stats_file(tmp_path, mats))
    feats, lengths = _pad(mats)
    extra = torch.cat([feats, torch.full((2, 12, 80), 7.0)], dim=1)  # garbage past every length
    assert torch.allclose(tok(feats, lengths)[0], tok(extra, lengths)[0], atol=1e-6)


def test_wrong_fbank_dim_and_short_utterances():
    tok = FSQTokenizer(levels="1k", hidden=16, num_blocks=1)
    with pytest.raises(DataError, match="40 mel bins.*expects 80"):
        tok.tokenize(torch.zeros(1, 20, 40), torch.tensor([20]), keys=["uttA"])
    with pytest.raises(DataError, match=r"\['uttB'\].*fewer than 4 fbank frames"):
        tok.tokenize(torch.zeros(2, 20, 80), torch.tensor([20, 3]), keys=["uttA", "uttB"])
    with pytest.raises(DataError, match="every utterance in the batch is shorter"):
        tok(torch.zeros(2, 3, 80), torch.tensor([3, 2]))  # training: clear error, not a conv crash
    brq = BestRQTokenizer(codebook_size=16, codebook_dim=4)
    with pytest.raises(DataError, match="expects 80"):
        brq.tokenize(torch.zeros(1, 20, 81), torch.tensor([20]))
    with pytest.raises(DataError, match="fewer than 4"):
        brq.tokenize(torch.zeros(1, 2, 80), torch.tensor([2]), keys=["tiny"])


def test_bestrq_deterministic_for_a_seed(tmp_path):
    mats = _utts(seed=3)
    stats = _stats_file(tmp_path, mats)
    feats, lengths = _pad(mats)
    a = BestRQTokenizer(codebook_size=64, codebook_dim=8, num_codebooks=2, seed=7, cmvn_stats=stats)
    b = BestRQTokenizer(codebook_size=64, codebook_dim=8, num_codebooks=2, seed=7, cmvn_stats=stats)
    c = BestRQTokenizer(codebook_size=64, codebook_dim=8, num_codebooks=2, seed=8, cmvn_stats=stats)
    ca, la = a.tokenize(feats, lengths)
    cb, _ = b.tokenize(feats, lengths)
    cc, _ = c.tokenize(feats, lengths)
    assert ca.shape == (5, 101 // 4, 2) and la.tolist() == [n // 4 for n in (37, 4, 101, 9, 64)]
    assert torch.equal(ca, cb)
    assert not torch.equal(ca, cc)
    valid = ca[ca >= 0]
    assert int(valid.max()) < 64 and valid.unique().numel() > 5
    assert torch.allclose(a.codebooks.norm(dim=-1), torch.ones(2, 64))


def test_bestrq_picks_nearest_codeword_by_cosine(tmp_path):
    brq = BestRQTokenizer(codebook_size=32, codebook_dim=6, seed=1)
    feats = torch.randn(1, 40, 80)
    codes, _ = brq.tokenize(feats, torch.tensor([40]))
    proj = stack_frames(feats, 4)[0] @ brq.projection[0]
    cos = torch.nn.functional.cosine_similarity(proj.unsqueeze(1), brq.codebooks[0].unsqueeze(0), dim=-1)
    assert torch.equal(codes[0, :, 0], cos.argmax(dim=-1))
