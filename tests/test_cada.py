"""CADA layout, attention permission, position ids and conv windows on small hand-checked cases."""

from __future__ import annotations

import pytest
import torch

from chunkssl.cada import (
    attention_permission,
    build_layout,
    conv_windows,
    layout_chunk,
    layout_extended,
    layout_source,
    normalize_chunk_size,
    num_chunks,
)


def _matrix(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in row.replace(" ", "")] for row in rows])


def test_layout_t5_c2_copies_b2_b3_and_keeps_their_positions():
    # B1=[0,1] B2=[2,3] B3=[4] (short last chunk); E1=copy of B2, E2=copy of B3
    assert layout_source(5, 2).tolist() == [0, 1, 2, 3, 4, 2, 3, 4]
    assert layout_extended(5, 2).tolist() == [False] * 5 + [True] * 3
    assert layout_chunk(5, 2).tolist() == [0, 0, 1, 1, 2, 1, 1, 2]
    assert num_chunks(5, 2) == 3


def test_permission_t5_c2_unlimited():
    expected = _matrix([
        # B1 B1 B2 B2 B3 | E1 E1 E2
        "11 000 000",  # B1
        "11 000 000",
        "11 110 000",  # B2 sees B1, B2
        "11 110 000",
        "11 111 000",  # B3 sees everything base
        "11 000 110",  # E1 (= chunk 2) sees B1 and itself only
        "11 000 110",
        "11 110 001",  # E2 (= chunk 3) sees B1, B2 and itself
    ])
    assert torch.equal(attention_permission(5, 2, None), expected)


def test_permission_t5_c2_one_left_chunk():
    expected = _matrix([
        "11 000 000",
        "11 000 000",
        "11 110 000",
        "11 110 000",
        "00 111 000",  # B3 sees B2 and itself, no longer B1
        "11 000 110",
        "11 000 110",
        "00 110 001",  # E2 stands for chunk 3: same view as B3 in a plain run
    ])
    assert torch.equal(attention_permission(5, 2, 1), expected)


def test_permission_zero_left_chunks_sees_only_own_chunk():
    perm = attention_permission(5, 2, 0)
    assert perm[4].tolist() == [False] * 4 + [True] + [False] * 3
    assert perm[7].tolist() == [False] * 7 + [True]
    assert perm[5].tolist() == [False] * 5 + [True, True, False]


def test_base_never_sees_extended_and_extended_chunks_never_see_each_other():
    for t, c, left in [(17, 3, None), (23, 5, 2), (9, 4, 0)]:
        perm = attention_permission(t, c, left)
        ext = layout_extended(t, c)
        chunk = layout_chunk(t, c)
        assert not perm[~ext][:, ext].any()
        ext_pairs = perm[ext][:, ext]
        same = chunk[ext][:, None] == chunk[ext][None, :]
        assert torch.equal(ext_pairs, same)


def test_plain_chunk_mask_without_cada():
    expected = _matrix(["11000", "11000", "11110", "11110", "11111"])
    assert torch.equal(attention_permission(5, 2, None, cada=False), expected)


@pytest.mark.parametrize("chunk", [None, -1, 0, float("inf")])
def test_offline_means_no_copies_full_attention(chunk):
    assert normalize_chunk_size(chunk) is None
    assert layout_source(6, chunk).tolist() == list(range(6))
    assert attention_permission(6, chunk).all()


def test_chunk_at_least_length_is_one_chunk():
    assert layout_source(4, 4).tolist() == [0, 1, 2, 3]
    assert attention_permission(4, 9).all()


def test_conv_windows_t5_c2_half_kernel_1():
    windows, outputs = conv_windows(5, 2, 1)
    # rows: B1, B2, B3, E1, E2; each = 1 left-context frame + 2 own frames, -1 = zero
    assert windows.tolist() == [
        [-1, 0, 1],
        [1, 2, 3],
        [3, 4, -1],   # short last chunk: its missing frame reads zero
        [1, 5, 6],    # E1: left context from the tail of B1, own frames from the copy
        [3, 7, -1],   # E2: left context from B2's tail
    ]
    # output of window w, column j is flat index 2 * w + j
    assert outputs.tolist() == [0, 1, 2, 3, 4, 6, 7, 8]


def test_conv_windows_left_context_spans_several_chunks():
    windows, _ = conv_windows(7, 2, 3)
    assert windows[2].tolist() == [1, 2, 3, 4, 5]              # B3 = frames 4, 5
    assert windows[3 + 1 + 1].tolist() == [1, 2, 3, 9, 10]     # E2 = copy of B3 at 9, 10


def test_conv_windows_offline_is_one_same_padded_window():
    windows, outputs = conv_windows(4, None, 2)
    assert windows.tolist() == [[-1, -1, 0, 1, 2, 3]]
    assert outputs.tolist() == [0, 1, 2, 3]


def test_build_layout_masks_padding_keys_per_utterance():
    layout = build_layout(torch.tensor([5, 3]), 2, None, True, 1)
    assert layout.source.tolist() == [0, 1, 2, 3, 4, 2, 3, 4]
    assert layout.valid.tolist() == [[True] * 8, [True, True, True, False, False, True, False, False]]
    # second utterance: E1's frame 3 is padding, so nobody may attend to it
    assert not layout.attend[1][:, 6].any()
    assert layout.attend[1][5].tolist() == [True, True, False, False, False, True, False, False]
