"""Online inputs of Chunk SSL (issue 17): raw audio + the frontend's fbank + the frozen tokenizer's codes give
the same batch, codes and loss as dumped fbank + dumped codes, on real recordings of ../shared/data."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

import chunkssl.espnet_glue  # noqa: F401
from chunkssl.fileio import DataError
from chunkssl.ssl.task import ChunkSSLTask
from conftest import REPO, real_speech_dir


def _run(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _shape(dump: Path, out: Path) -> Path:
    """ESPnet shape file over fbank frames, for either input (so both make the same batches)."""
    rows = [line.split() for line in (dump / "utt2num_frames").read_text().splitlines()]
    out.write_text("".join(f"{u} {n},80\n" for u, n in rows))
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ssl_online")
    data = real_speech_dir(root, num_lt=8, num_fsdd=2)
    _run("chunkssl.bin.compute_fbank", "--data-dir", str(data), "--out-dir", str(root / "fbank"))
    _run("chunkssl.bin.compute_fbank", "--data-dir", str(data), "--out-dir", str(root / "raw"), "--raw")
    shape = _shape(root / "raw", root / "speech_shape")
    # the tokenizer trained on raw audio through the frontend: fsq_train's --frontend path
    raw = f"{root / 'raw' / 'audio.scp'},speech,audio_16000"
    _run("chunkssl.bin.fsq_train", "--config", "conf/fsq/tiny.yaml", "--output_dir", str(root / "fsq"),
         "--cmvn_stats", str(root / "raw" / "cmvn_stats.npz"), "--frontend", "kaldi_fbank", "--max_epoch", "1",
         "--train_data_path_and_name_and_type", raw, "--train_shape_file", str(shape),
         "--valid_data_path_and_name_and_type", raw, "--valid_shape_file", str(shape))
    model = root / "fsq" / "valid.loss.best.pth"
    _run("chunkssl.bin.fsq_tokenize", "--model", str(model), "--feats-scp", str(root / "fbank" / "feats.scp"),
         "--out-dir", str(root / "codes"))
    return dict(root=root, model=model, shape=shape)


def _build(setup: dict, online: bool, seed: int = 3):
    """The tiny SSL model, dumped or online, from the same seed (same weights, chunk and mask draws)."""
    root = setup["root"]
    conf = yaml.safe_load((REPO / "conf/ssl/chunk_conformer_tiny.yaml").read_text())
    argv = ["--config", str(REPO / "conf/ssl/chunk_conformer_tiny.yaml"),
            "--normalize_conf", f"stats_file={root / 'fbank' / 'cmvn_stats.npz'}"]
    if online:
        argv += ["--frontend", "kaldi_fbank", "--target_tokenizer", str(setup["model"]),
                 "--train_data_path_and_name_and_type", f"{root / 'raw' / 'audio.scp'},speech,audio_16000"]
    else:
        argv += ["--code_info", str(root / "codes" / "code_info.yaml"),
                 "--train_data_path_and_name_and_type", f"{root / 'fbank' / 'feats.scp'},speech,kaldi_ark",
                 "--train_data_path_and_name_and_type", f"{root / 'codes' / 'codes.scp'},codes,kaldiio_ark"]
    args = ChunkSSLTask.get_parser().parse_args(argv)
    assert conf["model_conf"]["cada"]
    torch.manual_seed(seed)
    return ChunkSSLTask.build_model(args), args


def _batch(args: argparse.Namespace) -> dict:
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    ds = ESPnetDataset([tuple(spec) for spec in args.train_data_path_and_name_and_type])
    keys = sorted(ds.loader_dict["speech"].keys())
    _, batch = CommonCollateFn(int_pad_value=-1)([ds[k] for k in keys])
    return batch


def test_online_fbank_and_codes_equal_the_dumped_ones(setup):
    model, args = _build(setup, online=True)
    batch = _batch(args)
    fbank, lengths = model.input_fbank(batch["speech"], batch["speech_lengths"])
    codes, code_lengths = model.online_codes(fbank, lengths)
    dumped = kaldiio.load_scp(str(setup["root"] / "fbank" / "feats.scp"))
    dumped_codes = kaldiio.load_scp(str(setup["root"] / "codes" / "codes.scp"))
    for i, key in enumerate(sorted(dumped)):
        ref = np.asarray(dumped[key])
        assert int(lengths[i]) == len(ref)
        assert np.abs(fbank[i, : len(ref)].numpy() - ref).max() <= 1e-4, key
        ref_codes = np.asarray(dumped_codes[key])
        assert int(code_lengths[i]) == len(ref_codes)
        assert np.array_equal(codes[i, : len(ref_codes)].numpy(), ref_codes), key  # exactly


@pytest.mark.parametrize("training", [True, False])
def test_the_loss_of_a_batch_is_the_same_both_ways(setup, training):
    online, online_args = _build(setup, online=True)
    dumped, dumped_args = _build(setup, online=False)
    state = {k: v for k, v in online.state_dict().items() if not k.startswith("targets.")}
    assert state.keys() == dumped.state_dict().keys()
    for k, v in dumped.state_dict().items():
        assert torch.equal(v, state[k]), k
    losses = []
    for model, args in ((online, online_args), (dumped, dumped_args)):
        model.train(training)
        assert not model.targets.training if model.targets is not None else True
        torch.manual_seed(0)
        loss, stats, weight = model(**_batch(args))
        losses.append((float(loss.detach()), float(stats["masked_frac"]), int(weight)))
    (a, frac_a, n_a), (b, frac_b, n_b) = losses
    assert n_a == n_b > 0 and frac_a == frac_b  # the same masked frames
    assert abs(a - b) <= 1e-5, (a, b)


def test_online_targets_are_frozen_and_saved(setup):
    model, _ = _build(setup, online=True)
    assert not any(p.requires_grad for p in model.targets.parameters())
    assert any(k.startswith("targets.") for k in model.state_dict())
    model.train()
    assert model.training and not model.targets.training
    loss, _, _ = model(**_batch(_build(setup, online=True)[1]))
    loss.backward()
    assert all(p.grad is None for p in model.targets.parameters())


def test_without_codes_or_tokenizer_the_build_says_what_to_give(setup):
    root = setup["root"]
    args = ChunkSSLTask.get_parser().parse_args([
        "--config", str(REPO / "conf/ssl/chunk_conformer_tiny.yaml"), "--code_info",
        str(root / "codes" / "code_info.yaml"),
        "--train_data_path_and_name_and_type", f"{root / 'fbank' / 'feats.scp'},speech,kaldi_ark"])
    with pytest.raises(DataError, match="--ssl-targets online"):
        ChunkSSLTask.build_model(args)
    args.target_tokenizer = str(REPO / "conf/fsq/bestrq.yaml")
    with pytest.raises(DataError, match="--target_cmvn_stats"):
        ChunkSSLTask.build_model(args)
