"""Analysis metrics on tiny hand-checked examples: purity, PNMI, perplexity, frame labels, phone_ali."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chunkssl.fileio import DataError
from chunkssl.fsq.analysis import entropy, frame_labels, perplexity, purity_pnmi, read_phone_ali, utilisation


def test_purity_pnmi_partial_example():
    # phones a a a b ; codes 0 0 1 1
    # joint counts: (a,0)=2 (a,1)=1 (b,1)=1
    # phone purity   = (max over code 0: 2, code 1: 1) / 4 = 3/4
    # cluster purity = (max over phone a: 2, phone b: 1) / 4 = 3/4
    # H(y) = -(3/4 ln 3/4 + 1/4 ln 1/4); H(y|z) = 1/2 * ln 2 (code 1 is a 50/50 mix)
    m = purity_pnmi(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    h_y = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert m["phone_purity"] == pytest.approx(0.75)
    assert m["cluster_purity"] == pytest.approx(0.75)
    assert m["pnmi"] == pytest.approx((h_y - 0.5 * math.log(2)) / h_y)  # 0.3836
    assert m["pnmi"] == pytest.approx(0.38365, abs=1e-4)


def test_purity_pnmi_codes_determine_phones():
    # phones a a b b ; codes 0 1 2 2: every code is pure (phone purity 1, PNMI 1),
    # but phone a is split over two codes: cluster purity = (1 + 2) / 4
    m = purity_pnmi(np.array([5, 5, 9, 9]), np.array([0, 1, 2, 2]))
    assert m["phone_purity"] == pytest.approx(1.0)
    assert m["cluster_purity"] == pytest.approx(0.75)
    assert m["pnmi"] == pytest.approx(1.0)


def test_purity_pnmi_independent_and_huge_codes():
    # codes independent of phones: PNMI 0; huge int64 code values must not allocate a vocab-sized table
    phones = np.array([0, 0, 1, 1])
    codes = np.array([7_000_000_000_000, 3, 7_000_000_000_000, 3], dtype=np.int64)
    m = purity_pnmi(phones, codes)
    assert m["pnmi"] == pytest.approx(0.0, abs=1e-12)
    assert m["phone_purity"] == pytest.approx(0.5) and m["cluster_purity"] == pytest.approx(0.5)


def test_entropy_perplexity_utilisation():
    assert entropy(np.array([1, 1, 1, 1])) == pytest.approx(math.log(4))
    assert perplexity(np.array([3, 3, 8, 8])) == pytest.approx(2.0)
    assert perplexity(np.array([1, 1, 1])) == pytest.approx(1.0)
    codes = np.array([[0, 1], [0, 1], [1, 1], [2, 0]])
    index = codes[:, 0] + 3 * codes[:, 1]  # 3, 3, 4, 2
    u = utilisation(codes, index, vocab_size=6)
    assert u["distinct"] == 3 and u["used_fraction"] == pytest.approx(0.5) and u["frames"] == 4
    # index distribution 1/2, 1/4, 1/4
    assert u["perplexity"] == pytest.approx(math.exp(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25))))
    # channel 0: values 0,0,1,2 -> probs 1/2,1/4,1/4; channel 1: 1,1,1,0 -> 3/4,1/4
    assert u["channel_perplexity"][0] == pytest.approx(u["perplexity"])
    assert u["channel_perplexity"][1] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))


def test_frame_labels_by_centre():
    segs = [(0.0, 0.1, "a"), (0.1, 0.25, "b")]
    # 40 ms frames have centres 0.02 0.06 0.10 0.14 0.18 0.22 0.26
    assert frame_labels(segs, 7, 0.04) == ["a", "a", "b", "b", "b", "b", None]
    assert frame_labels(segs, 7, 0.04, gap_label="sil")[-1] == "sil"
    gap = [(0.05, 0.1, "k")]  # centre 0.02 before the first segment, 0.10 right at its (open) end
    assert frame_labels(gap, 3, 0.04, gap_label="sil") == ["sil", "k", "sil"]


def test_read_phone_ali_both_layouts(tmp_path):
    ctm = tmp_path / "ctm"
    ctm.write_text("u1 0.10 0.20 b\nu1 0.00 0.10 a\nu2 0.0 0.5 sil\n")
    assert read_phone_ali(ctm) == {"u1": [(0.0, 0.1, "a"), (0.1, 0.2, "b")], "u2": [(0.0, 0.5, "sil")]}
    triples = tmp_path / "phone_ali"
    triples.write_text("u1 a 0.000 0.100 b 0.100 0.200\nu2 @ 0.050 0.050 k 0.06 0.2\n")
    # the zero-length phone is dropped
    assert read_phone_ali(triples) == {"u1": [(0.0, 0.1, "a"), (0.1, 0.2, "b")], "u2": [(0.06, 0.2, "k")]}


@pytest.mark.parametrize("line, message", [
    ("u1 0.1 0.2\n", "expected"),
    ("u1 a 0.1 x\n", "not numbers"),
    ("u1 0.3 0.2 a\n", "negative"),
])
def test_read_phone_ali_errors(tmp_path, line, message):
    path = tmp_path / "ali"
    path.write_text(line)
    with pytest.raises(DataError, match=f"ali:1: .*{message}"):
        read_phone_ali(path)
