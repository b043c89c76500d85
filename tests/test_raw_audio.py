"""Training on raw audio: audio.scp manifests, the ``audio_<rate>`` data type and the ``kaldi_fbank`` frontend.

Checked on real recordings from ../shared/data: the frontend's fbank of a padded batch read through
ESPnet's dataset equals the fbank that compute_fbank dumps, and the raw dump writes no archive.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

import chunkssl.espnet_glue  # noqa: F401  (registers audio_<rate> and kaldi_fbank)
from chunkssl.audio_scp import AudioScp, load_line
from chunkssl.datadir import load_data_dir
from chunkssl.features import CmvnStats, fbank
from chunkssl.fileio import DataError, read_kv
from chunkssl.frontend import KaldiFbankFrontend, fbank_lengths
from conftest import real_speech_dir


def _compute(data: Path, out: Path, *extra: str) -> None:
    subprocess.run([sys.executable, "-m", "chunkssl.bin.compute_fbank", "--data-dir", str(data), "--out-dir",
                    str(out), "--nj", "2", *extra], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("raw")
    data = real_speech_dir(root)
    _compute(data, root / "fbank")
    _compute(data, root / "raw", "--raw")
    return dict(data=data, fbank=root / "fbank", raw=root / "raw")


def test_raw_dump_writes_manifests_and_the_same_stats(dumps):
    raw, fb = dumps["raw"], dumps["fbank"]
    assert [p.name for p in raw.glob("*.ark")] == ["cmvn.ark"]  # the Kaldi stats, no feature archive
    assert not (raw / "feats.scp").exists()
    assert read_kv(raw / "utt2num_frames") == read_kv(fb / "utt2num_frames")
    a, b = CmvnStats.load_npz(raw / "cmvn_stats.npz"), CmvnStats.load_npz(fb / "cmvn_stats.npz")
    assert a.count == b.count and np.array_equal(a.sum, b.sum) and np.array_equal(a.sum_square, b.sum_square)
    samples = dict(read_kv(raw / "utt2num_samples"))
    frames = dict(read_kv(raw / "utt2num_frames"))
    assert sorted(samples) == sorted(frames) and len(samples) == 11
    n = torch.tensor([int(samples[u]) for u in sorted(samples)])
    assert fbank_lengths(n, 16000).tolist() == [int(frames[u]) for u in sorted(samples)]
    lines = (raw / "audio.scp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == sorted(samples)
    # the manifest is the training data: a few hundred bytes, against the archive's 32 KB a second
    assert (raw / "audio.scp").stat().st_size < 2000 < sum(p.stat().st_size for p in fb.glob("feats*.ark"))


def test_audio_scp_reads_what_the_data_dir_gives(dumps):
    data = load_data_dir(dumps["data"])
    scp = AudioScp(dumps["raw"] / "audio.scp", 16000)
    assert sorted(scp) == sorted(data.utt_ids)
    for utt in scp:
        # seek-read segments and resampled 8 kHz files: the very samples compute_fbank used
        assert np.array_equal(scp[utt], data.load_audio(utt, 16000)), utt


def test_frontend_on_an_espnet_batch_equals_the_dumped_fbank(dumps):
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    ds = ESPnetDataset([(str(dumps["raw"] / "audio.scp"), "speech", "audio_16000")])
    feats = kaldiio.load_scp(str(dumps["fbank"] / "feats.scp"))
    keys = sorted(feats)
    _, batch = CommonCollateFn()([ds[k] for k in keys])
    out, lengths = KaldiFbankFrontend(fs=16000)(batch["speech"], batch["speech_lengths"])
    worst = 0.0
    for i, k in enumerate(keys):
        ref = torch.from_numpy(np.array(feats[k]))
        assert int(lengths[i]) == ref.shape[0], k
        worst = max(worst, float((out[i, : ref.shape[0]] - ref).abs().max()))
        assert not out[i, ref.shape[0]:].any()  # padded frames are zero
    assert worst <= 1e-4


def test_frontend_matches_features_fbank_for_odd_lengths():
    torch.manual_seed(0)
    lens = torch.tensor([399, 400, 401, 561, 16000, 3])  # below one window, exactly one, edges of a shift
    wave = torch.rand(len(lens), int(lens.max())) * 0.2 - 0.1
    out, frames = KaldiFbankFrontend()(wave, lens)
    for i, n in enumerate(lens.tolist()):
        if n < 400:
            assert int(frames[i]) == 0
            continue
        ref = fbank(wave[i, :n])
        assert int(frames[i]) == ref.shape[0]
        assert float((out[i, : ref.shape[0]] - ref).abs().max()) <= 1e-4
    with pytest.raises(ValueError, match="mono waveforms"):
        KaldiFbankFrontend()(torch.zeros(2, 100, 80), torch.tensor([100, 100]))


def test_bad_audio_scp_lines_name_the_file(tmp_path):
    scp = tmp_path / "audio.scp"
    scp.write_text("a 0 -1 /nonexistent.flac\n")
    with pytest.raises(DataError, match=r"audio.scp: utterance 'a'.*does not exist"):
        AudioScp(scp)["a"]
    with pytest.raises(DataError, match="malformed line"):
        load_line("b 0 /x.flac", 16000, str(scp))
    scp.write_text("a 0 -1 /x.flac\na 1 2 /y.flac\n")
    with pytest.raises(DataError, match="listed twice"):
        AudioScp(scp)
    f = tmp_path / "one.wav"
    sf.write(str(f), np.zeros(16000, np.float32), 16000)
    with pytest.raises(DataError, match="only 1.000 s long"):
        load_line(f"c 3 4 {f}", 16000, str(scp))
