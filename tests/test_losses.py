"""Group masked prediction loss: mixed-radix targets, single group == full CE, per-group sums."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from chunkssl.losses import GroupMaskedPredictionLoss, mixed_radix, split_groups


def test_mixed_radix_first_channel_most_significant():
    levels = [3, 4, 5]
    codes = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [2, 3, 4]])
    assert mixed_radix(codes, levels).tolist() == [0, 1, 5, 20, 59]
    # every code of the vocabulary gets a distinct class in 0..prod-1
    grid = torch.cartesian_prod(*(torch.arange(v) for v in levels))
    assert sorted(mixed_radix(grid, levels).tolist()) == list(range(60))


def test_split_groups_checks_sizes():
    assert split_groups([8, 5, 5, 5], [1, 3]) == [[8], [5, 5, 5]]
    with pytest.raises(ValueError, match="sum to the 4 FSQ channels"):
        split_groups([8, 5, 5, 5], [2, 3])


def test_single_group_equals_full_cross_entropy():
    torch.manual_seed(0)
    levels = [4, 3, 5]
    loss_fn = GroupMaskedPredictionLoss(16, levels, group_sizes=[3])
    hidden = torch.randn(50, 16)
    codes = torch.stack([torch.randint(0, v, (50,)) for v in levels], dim=-1)
    loss, stats = loss_fn(hidden, codes)
    logits = loss_fn.heads[0](hidden)
    expected_targets = (codes[:, 0] * 3 + codes[:, 1]) * 5 + codes[:, 2]
    torch.testing.assert_close(loss, F.cross_entropy(logits, expected_targets))
    assert loss_fn.num_classes == [60]
    acc = (logits.argmax(-1) == expected_targets).float().mean()
    torch.testing.assert_close(stats["acc_g0"], acc)
    # full_softmax ignores the groups and is the same single 60-way softmax
    full = GroupMaskedPredictionLoss(16, levels, group_sizes=[1, 2], full_softmax=True)
    assert full.num_classes == [60]


def test_groups_sum_their_cross_entropies_and_report_each_accuracy():
    torch.manual_seed(1)
    levels = [8, 5, 5, 5]
    loss_fn = GroupMaskedPredictionLoss(12, levels, group_sizes=[2, 2])
    assert loss_fn.num_classes == [40, 25]
    hidden = torch.randn(30, 12)
    codes = torch.stack([torch.randint(0, v, (30,)) for v in levels], dim=-1)
    loss, stats = loss_fn(hidden, codes)
    ce0 = F.cross_entropy(loss_fn.heads[0](hidden), codes[:, 0] * 5 + codes[:, 1])
    ce1 = F.cross_entropy(loss_fn.heads[1](hidden), codes[:, 2] * 5 + codes[:, 3])
    torch.testing.assert_close(loss, ce0 + ce1)
    assert set(stats) == {"acc_g0", "acc_g1", "acc"}
    torch.testing.assert_close(stats["acc"], (stats["acc_g0"] + stats["acc_g1"]) / 2)


def test_loss_learns_a_learnable_mapping():
    torch.manual_seed(2)
    levels = [4, 4]
    loss_fn = GroupMaskedPredictionLoss(8, levels, group_sizes=[1, 1])
    codes = torch.stack([torch.randint(0, 4, (64,)), torch.randint(0, 4, (64,))], dim=-1)
    hidden = torch.cat([F.one_hot(codes[:, 0], 4), F.one_hot(codes[:, 1], 4)], dim=-1).float()
    opt = torch.optim.SGD(loss_fn.parameters(), lr=2.0)
    for _ in range(100):
        loss, stats = loss_fn(hidden, codes)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert stats["acc"] == 1.0


def test_out_of_range_codes_name_the_channel():
    loss_fn = GroupMaskedPredictionLoss(4, [3, 3])
    with pytest.raises(ValueError, match="channel 1"):
        loss_fn(torch.randn(2, 4), torch.tensor([[0, 0], [1, 3]]))


def test_group_targets_round_trip_with_the_quantizer():
    """One digit order: the loss's group targets are the FSQ quantizer's group indices, and back."""
    from chunkssl.fsq.quantizer import FSQ, index_to_codes

    groups = [[8, 5, 5], [7, 3], [9]]
    q = FSQ(groups)
    loss_fn = GroupMaskedPredictionLoss(8, q.levels, group_sizes=[len(g) for g in groups])
    gen = torch.Generator().manual_seed(0)
    codes = (torch.rand(300, q.dim, generator=gen) * torch.tensor(q.levels)).long()
    codes = torch.cat([codes, torch.zeros(1, q.dim, dtype=torch.long), torch.tensor(q.levels)[None] - 1])
    targets = loss_fn.targets(codes)
    assert torch.equal(targets, q.group_indices(codes))
    back = torch.cat([index_to_codes(targets[:, g], lv) for g, lv in enumerate(groups)], dim=-1)
    assert torch.equal(back, codes)
    # the quantizer's own codes too: quantize, take targets, decode the index to the same codes
    out = q(torch.randn(50, q.dim, generator=gen))
    assert torch.equal(index_to_codes(loss_fn.targets(out.codes)[:, 0], groups[0]), out.codes[:, :3])
