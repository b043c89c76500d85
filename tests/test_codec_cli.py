"""RVQ tokenizer through the real entry points: fsq_train (conf/fsq/rvq_tiny.yaml) -> fsq_tokenize in a fresh
process -> code_info kind rvq -> codes read as ESPnet data and embedded by the token frontend."""

from __future__ import annotations

import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import torch

from chunkssl.codec.bitrate import code_info_bitrate
from chunkssl.codec.bitrate import main as bitrate_main
from chunkssl.fsq.frontend import TokenFrontend
from chunkssl.fsq.rvq import ResidualVQ
from chunkssl.fsq.io import load_fsq_tokenizer, read_code_info, read_codes
from conftest import REPO


def _run(args: list[str], env: dict) -> None:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def test_rvq_train_tokenize_and_frontend(tmp_path, capsys):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    rng = np.random.default_rng(0)
    mats = {f"utt{i:02d}": (np.cumsum(rng.normal(size=(int(rng.integers(40, 90)), 80)) * 0.3, 0)
                            + rng.normal(size=80) * 2).astype(np.float32) for i in range(8)}
    fb = tmp_path / "fbank"
    fb.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{fb}/feats.ark,{fb}/feats.scp") as writer:
        for key, mat in mats.items():
            writer(key, mat)
    (fb / "utt2num_frames").write_text("".join(f"{k} {m.shape[0]}\n" for k, m in mats.items()))
    allf = np.concatenate(list(mats.values())).astype(np.float64)
    np.savez(fb / "cmvn_stats.npz", count=np.array(allf.shape[0]), sum=allf.sum(0), sum_square=(allf ** 2).sum(0))
    exp = tmp_path / "exp"
    data = [f"{fb}/feats.scp,speech,kaldi_ark"]
    _run(["chunkssl.bin.fsq_train", "--config", "conf/fsq/rvq_tiny.yaml", "--output_dir", str(exp),
          "--cmvn_stats", str(fb / "cmvn_stats.npz"), "--train_data_path_and_name_and_type", *data,
          "--train_shape_file", str(fb / "utt2num_frames"), "--valid_data_path_and_name_and_type", *data,
          "--valid_shape_file", str(fb / "utt2num_frames"), "--max_epoch", "1", "--num_iters_per_epoch", "3"], env)

    tok = load_fsq_tokenizer(exp / "valid.loss.best.pth")
    rvq = tok.quantizer
    assert isinstance(rvq, ResidualVQ) and float(rvq.initted) == 1.0, "k-means init was not saved"
    assert not torch.equal(rvq.codebooks, ResidualVQ(dim=8, num_codebooks=2, codebook_size=32).codebooks)
    expected = {k: tok.tokenize(torch.from_numpy(m)[None], torch.tensor([m.shape[0]]))[0][0].numpy()
                for k, m in mats.items()}

    out = tmp_path / "codes"
    _run(["chunkssl.bin.fsq_tokenize", "--model", str(exp / "valid.loss.best.pth"), "--feats-scp",
          f"{fb}/feats.scp", "--out-dir", str(out), "--batch-size", "3"], env)
    codes = read_codes(out)
    assert list(codes) == list(mats)
    for key, exp_codes in expected.items():
        assert codes[key].dtype == np.int16 and codes[key].shape == (mats[key].shape[0] // 4, 2)
        assert np.array_equal(codes[key], exp_codes), f"{key}: fresh-process codes differ"
    allc = np.concatenate([codes[k] for k in codes])
    assert len(np.unique(allc[:, 0])) > 3 and len(np.unique(allc[:, 1])) > 3  # not collapsed
    info = read_code_info(out)
    assert info["tokenizer"] == "rvq" and info["groups"] == [[32], [32]] and info["levels"] == [32, 32]
    assert code_info_bitrate(info)["bits_per_second"] == pytest.approx(250.0)  # 2 x log2(32) bits, 25 tok/s
    bitrate_main([str(out)])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    codes_bytes = sum(p.stat().st_size for p in out.glob("codes.*.ark"))
    assert row == f"| {out} | rvq | 10.00 | 250.0 | {codes_bytes:,} | {(fb / 'feats.ark').stat().st_size:,} |"

    # ESPnet reads the int codes with kaldiio_ark; the frontend starts from the trained codewords
    glue = pytest.importorskip("chunkssl.espnet_glue")
    from espnet2.train.dataset import ESPnetDataset

    glue.register()
    ds = ESPnetDataset([(str(out / "codes.scp"), "speech", "kaldiio_ark")])
    arr = ds["utt03"][1]["speech"]
    assert np.array_equal(arr, codes["utt03"].astype(arr.dtype))
    fe = TokenFrontend(str(out / "code_info.yaml"), embed_dim=8).eval()
    for n in range(2):
        assert torch.equal(fe.unit_table(n), rvq.codebooks[n])
    x = torch.from_numpy(np.asarray(arr, dtype=np.int64))[None]
    feats, lens = fe(x, torch.tensor([x.shape[1]]))
    assert torch.allclose(feats[0], rvq.decode(x[0]), atol=1e-5) and lens.tolist() == [x.shape[1]]
