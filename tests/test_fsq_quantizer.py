"""FSQ quantizer: level validation, presets, the level grid, straight-through gradients, codes <-> index."""

from __future__ import annotations

import pytest
import torch

from chunkssl.fsq.quantizer import (FSQ, INT64_MAX, PRESETS, LevelsError, codes_to_index, index_to_codes,
                                    mixed_radix_basis, resolve_levels)


def test_preset_vocabulary_sizes():
    sizes = {name: FSQ(name).vocab_size for name in PRESETS}
    assert sizes == {"1k": 1000, "64k": 64000, "6m": 5_764_801, "791m": 791_015_625}
    q = FSQ("791m")
    assert q.groups == [[9, 5, 5, 5, 5, 5]] * 2 and q.group_vocab_sizes == [28125, 28125] and q.dim == 12


def test_mixed_radix_basis_hand_checked():
    # channel 0 most significant (the SSL loss's order): index = 125*c0 + 25*c1 + 5*c2 + c3
    assert mixed_radix_basis([8, 5, 5, 5]) == [125, 25, 5, 1]
    codes = torch.tensor([[7, 4, 4, 4], [1, 2, 3, 4], [0, 0, 0, 0]])
    assert codes_to_index(codes, [8, 5, 5, 5]).tolist() == [999, 125 + 50 + 15 + 4, 0]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_codes_index_round_trip_every_preset(preset):
    q = FSQ(preset)
    gen = torch.Generator().manual_seed(0)
    lv = torch.tensor(q.levels)
    codes = (torch.rand(500, q.dim, generator=gen) * lv).long()
    # include the extreme corners: all zeros and all maxima (the largest index)
    codes = torch.cat([codes, torch.zeros(1, q.dim, dtype=torch.long), (lv - 1).unsqueeze(0)])
    index = q.joint_index(codes)
    assert index.dtype == torch.int64
    assert int(index[-1]) == q.vocab_size - 1 and int(index[-2]) == 0
    assert int(index.min()) >= 0 and int(index.max()) < q.vocab_size
    assert torch.equal(index_to_codes(index, q.levels), codes)
    # every index maps back too (a random sample over the whole range)
    idx = torch.randint(0, q.vocab_size, (500,), generator=gen, dtype=torch.int64)
    assert torch.equal(codes_to_index(index_to_codes(idx, q.levels), q.levels), idx)
    # group indices round-trip and combine into the joint index
    groups = q.group_indices(codes)
    back = torch.cat([index_to_codes(groups[:, g], lv_g) for g, lv_g in enumerate(q.groups)], dim=-1)
    assert torch.equal(back, codes)
    assert torch.equal(codes_to_index(groups, q.group_vocab_sizes), index)


def test_values_on_level_grid_and_codes_in_range():
    q = FSQ([[8, 5], [3, 7]])
    z = torch.randn(1000, 4) * 3
    values, codes, commit = q(z)
    assert commit is None
    for j, level in enumerate(q.levels):
        grid = torch.linspace(-1, 1, level)
        dist = (values[:, j:j + 1] - grid).abs().min(dim=1).values
        assert float(dist.max()) < 1e-6, f"channel {j} leaves the {level}-point grid"
        assert int(codes[:, j].min()) >= 0 and int(codes[:, j].max()) == level - 1
        assert torch.allclose(values[:, j], grid[codes[:, j]], atol=1e-6)
    assert torch.allclose(q.codes_to_values(codes), values, atol=1e-6)


def test_straight_through_gradient_reaches_input():
    q = FSQ("1k")
    z = (torch.randn(64, 4) * 0.5).requires_grad_()
    values, _, _ = q(z)
    values.pow(2).sum().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    # straight-through: d values / d z equals d/dz of the un-rounded tanh map, 1 - tanh(z)^2
    z2 = z.detach().clone().requires_grad_()
    values2, _, _ = q(z2)
    values2.sum().backward()
    assert torch.allclose(z2.grad, 1 - torch.tanh(z2.detach()) ** 2, atol=1e-5)


@pytest.mark.parametrize("levels, message", [
    ([], "empty"),
    ([[]], "empty"),
    ([8, 1, 5], ">= 2"),
    ([8, 0], ">= 2"),
    ([8, 2.5], "integer"),
    ([[8, 5], 5], "mix"),
    ([2] * 64, "int64"),
    ("9m", "unknown FSQ preset"),
])
def test_bad_levels_raise(levels, message):
    with pytest.raises(LevelsError, match=message):
        FSQ(levels)


def test_largest_int64_vocabulary_is_accepted():
    groups = resolve_levels([2] * 63)  # 2**63 codes: the largest index is exactly INT64_MAX
    assert groups == [[2] * 63]
    q = FSQ(groups)
    top = torch.ones(1, 63, dtype=torch.long)
    assert int(q.joint_index(top)) == INT64_MAX
    assert torch.equal(index_to_codes(q.joint_index(top), q.levels), top)
