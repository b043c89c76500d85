"""One CMVN stats reader: the tokenizers' GlobalCMVN normalises as ESPnet's GlobalMVN (training, streamer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from espnet2.layers.global_mvn import GlobalMVN

from chunkssl.features import CMVN_EPS, CmvnStats, read_cmvn_stats
from chunkssl.fileio import DataError
from chunkssl.fsq.features import GlobalCMVN


def _feats(n: int = 400, dim: int = 80) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.cumsum(torch.randn(n, dim, generator=gen) * 0.3, 0) + 5
    x[:, 0] = 1e-7 * torch.randn(n, generator=gen)  # a nearly constant bin: variance 1e-14, under the old floor
    return x


def test_one_reader_normalises_as_espnet_global_mvn(tmp_path):
    x = _feats()
    stats = CmvnStats(x.shape[1])
    stats.add(x)
    path = tmp_path / "cmvn_stats.npz"
    stats.save_npz(path)

    mean, std = read_cmvn_stats(path, 80)
    ref_mean, ref_std = stats.mean_std()
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6)
    np.testing.assert_allclose(std, ref_std, rtol=1e-6)

    lengths = torch.tensor([x.shape[0]])
    ours = GlobalCMVN(80, path)(x[None], lengths)           # FSQ / BEST-RQ tokenizers, codec streamer
    espnet, _ = GlobalMVN(str(path))(x[None].clone(), lengths)  # normalize: global_mvn in ASR/SSL training
    assert float(espnet[0, :, 0].std()) > 0.5  # the nearly constant bin is scaled up, not floored
    torch.testing.assert_close(ours, espnet, atol=1e-5, rtol=1e-5)
    assert GlobalMVN(str(path)).eps == CMVN_EPS  # one epsilon, the one training uses


def test_reader_errors_name_the_file(tmp_path):
    np.savez(tmp_path / "empty.npz", count=np.array(0), sum=np.zeros(80), sum_square=np.zeros(80))
    with pytest.raises(DataError, match="empty.npz.*count 0"):
        read_cmvn_stats(tmp_path / "empty.npz", 80)
    np.savez(tmp_path / "odd.npz", count=np.array(3), sum=np.zeros(80), sum_square=np.zeros(40))
    with pytest.raises(DataError, match="odd.npz.*compute_fbank"):
        read_cmvn_stats(tmp_path / "odd.npz")
