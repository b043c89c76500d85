"""End to end through the real entry points: fsq_train -> fsq_tokenize (fresh processes) -> fsq_analyze."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from chunkssl.fsq.io import load_fsq_tokenizer, read_code_info, read_codes
from chunkssl.fsq.quantizer import codes_to_index
from conftest import REPO

N_UTTS = 10


def _run(args: list[str], env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _write_feats(out: Path, mats: dict[str, np.ndarray]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{out}/feats.ark,{out}/feats.scp") as writer:
        for key, mat in mats.items():
            writer(key, mat)
    (out / "utt2num_frames").write_text("".join(f"{k} {m.shape[0]}\n" for k, m in mats.items()))
    return out / "feats.scp"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    import os

    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), e.get("PYTHONPATH", "")]))
    e["OMP_NUM_THREADS"] = "1"
    return e


@pytest.fixture(scope="module")
def trained(tmp_path_factory, env) -> dict:
    """Tiny fbank corpus and an FSQ tokenizer trained on it for a few steps with fsq_train."""
    root = tmp_path_factory.mktemp("fsq")
    rng = np.random.default_rng(0)
    mats = {}
    for i in range(N_UTTS):
        n = int(rng.integers(30, 90))
        mats[f"utt{i:02d}"] = (np.cumsum(rng.normal(size=(n, 80)) * 0.3, 0) + rng.normal(size=80) * 2
                               ).astype(np.float32)
    feats_scp = _write_feats(root / "fbank", mats)
    allf = np.concatenate(list(mats.values())).astype(np.float64)
    np.savez(root / "fbank" / "cmvn_stats.npz", count=np.array(allf.shape[0]), sum=allf.sum(0),
             sum_square=(allf ** 2).sum(0))
    exp = root / "exp"
    _run(["chunkssl.bin.fsq_train", "--config", "conf/fsq/tiny.yaml", "--output_dir", str(exp),
          "--cmvn_stats", str(root / "fbank" / "cmvn_stats.npz"),
          "--train_data_path_and_name_and_type", f"{feats_scp},speech,kaldi_ark",
          "--train_shape_file", str(root / "fbank" / "utt2num_frames"),
          "--valid_data_path_and_name_and_type", f"{feats_scp},speech,kaldi_ark",
          "--valid_shape_file", str(root / "fbank" / "utt2num_frames"),
          "--max_epoch", "1", "--num_iters_per_epoch", "3"], env)
    return dict(root=root, mats=mats, feats_scp=feats_scp, model=exp / "valid.loss.best.pth", exp=exp)


def test_train_writes_espnet_outputs(trained):
    exp = trained["exp"]
    assert (exp / "config.yaml").is_file() and (exp / "checkpoint.pth").is_file()
    assert trained["model"].exists() and (exp / "1epoch.pth").is_file()
    tok = load_fsq_tokenizer(trained["model"])
    assert tok.code_levels == [8, 5, 5, 5]  # the preset name was expanded into config.yaml
    assert float(tok.cmvn.std.min()) > 0 and float(tok.cmvn.mean.abs().sum()) > 0  # CMVN stored in model


def test_reload_in_fresh_process_batch_and_parallel_give_same_codes(trained, env):
    tok = load_fsq_tokenizer(trained["model"])
    expected = {}
    for key, mat in trained["mats"].items():
        codes, _ = tok.tokenize(torch.from_numpy(mat).unsqueeze(0), torch.tensor([mat.shape[0]]))
        expected[key] = codes[0].numpy()
    root = trained["root"]
    _run(["chunkssl.bin.fsq_tokenize", "--model", str(trained["model"]), "--feats-scp", str(trained["feats_scp"]),
          "--out-dir", str(root / "tok_b4"), "--batch-size", "4"], env)
    _run(["chunkssl.bin.fsq_tokenize", "--model", str(trained["model"]), "--feats-scp", str(trained["feats_scp"]),
          "--out-dir", str(root / "tok_nj2"), "--batch-size", "1", "--nj", "2"], env)
    for out in ("tok_b4", "tok_nj2"):
        codes = read_codes(root / out)
        assert list(codes.keys()) == list(trained["mats"]), "codes.scp must keep the feats.scp order"
        for key, exp_codes in expected.items():
            got = codes[key]
            assert got.dtype == np.int16 and got.shape == (trained["mats"][key].shape[0] // 4, 4)
            assert np.array_equal(got, exp_codes), f"{out}: {key} differs from the in-process codes"
        lines = (root / out / "utt2num_frames").read_text().split("\n")
        assert lines[0] == f"utt00 {trained['mats']['utt00'].shape[0] // 4}"
        assert not list((root / out).glob(".tmp*")), "temp dir left behind"
    info = read_code_info(root / "tok_nj2")
    assert info["tokenizer"] == "fsq" and info["vocab_size"] == 1000 and info["frame_shift_ms"] == 40
    assert info["num_utts"] == N_UTTS and sorted(p.name for p in (root / "tok_nj2").glob("*.ark")) == [
        "codes.1.ark", "codes.2.ark"]


def test_tokenize_bad_inputs(trained, env, tmp_path):
    rng = np.random.default_rng(1)
    scp = _write_feats(tmp_path / "short", {"ok1": rng.normal(size=(20, 80)).astype(np.float32),
                                            "tiny": rng.normal(size=(3, 80)).astype(np.float32)})
    base = ["chunkssl.bin.fsq_tokenize", "--model", str(trained["model"]), "--feats-scp", str(scp)]
    proc = _run(base + ["--out-dir", str(tmp_path / "o1")], env, ok=False)
    assert proc.returncode == 2 and "'tiny'" in proc.stderr and "--short-utt skip" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o1" / "codes.scp").exists()
    _run(base + ["--out-dir", str(tmp_path / "o2"), "--short-utt", "skip"], env)
    assert (tmp_path / "o2" / "skipped").read_text() == "tiny\n"
    assert list(read_codes(tmp_path / "o2").keys()) == ["ok1"]
    scp40 = _write_feats(tmp_path / "dim40", {"u40": rng.normal(size=(20, 40)).astype(np.float32)})
    proc = _run(["chunkssl.bin.fsq_tokenize", "--model", str(trained["model"]), "--feats-scp", str(scp40),
                 "--out-dir", str(tmp_path / "o3")], env, ok=False)
    assert proc.returncode == 2 and "'u40'" in proc.stderr and "80 mel bins" in proc.stderr


def test_bestrq_cli_deterministic_and_float32_readable_by_espnet(trained, env, tmp_path):
    from espnet2.train.dataset import ESPnetDataset

    conf = tmp_path / "bestrq.yaml"
    conf.write_text("bestrq_conf:\n  codebook_size: 256\n  codebook_dim: 8\n  num_codebooks: 2\n  seed: 3\n")
    stats = trained["root"] / "fbank" / "cmvn_stats.npz"
    base = ["chunkssl.bin.fsq_tokenize", "--quantizer", "bestrq", "--bestrq-config", str(conf),
            "--cmvn-stats", str(stats), "--feats-scp", str(trained["feats_scp"])]
    _run(base + ["--out-dir", str(tmp_path / "a"), "--nj", "2"], env)
    _run(base + ["--out-dir", str(tmp_path / "b"), "--dtype", "float32"], env)
    a, b = read_codes(tmp_path / "a"), read_codes(tmp_path / "b")
    ds = ESPnetDataset([(str(tmp_path / "b" / "codes.scp"), "codes", "kaldi_ark")])
    for key in trained["mats"]:
        assert a[key].shape == (trained["mats"][key].shape[0] // 4, 2) and a[key].dtype == np.int16
        assert np.array_equal(a[key], b[key].astype(np.int16))
        assert np.array_equal(ds[key][1]["codes"], a[key].astype(np.float32))
    info = read_code_info(tmp_path / "a")
    assert info["tokenizer"] == "bestrq" and info["groups"] == [[256], [256]] and info["vocab_size"] == 65536


def test_analyze_cli(trained, env, tmp_path):
    root = trained["root"]
    code_dir = root / "tok_b4"
    if not (code_dir / "codes.scp").exists():
        _run(["chunkssl.bin.fsq_tokenize", "--model", str(trained["model"]), "--feats-scp",
              str(trained["feats_scp"]), "--out-dir", str(code_dir)], env)
    # synthetic-corpus layout: one line per utterance, phone start end triples; gaps become 'sil'
    ali = tmp_path / "phone_ali"
    ali.write_text("".join(f"{k} a 0.000 0.120 b 0.120 0.200 c 0.250 {m.shape[0] / 100:.3f}\n"
                           for k, m in trained["mats"].items()))
    out = tmp_path / "analysis"
    _run(["chunkssl.bin.fsq_analyze", "--tokenizers", f"tiny={code_dir}", f"again={code_dir}",
          "--feats-scp", str(trained["feats_scp"]), "--phone-ali", str(ali), "--out-dir", str(out)], env)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["name"] for m in metrics] == ["tiny", "again"]
    codes = read_codes(code_dir)
    allc = torch.from_numpy(np.concatenate([codes[k].astype(np.int64) for k in codes]))
    joint = codes_to_index(allc, [8, 5, 5, 5]).numpy()
    m = metrics[0]
    assert m["joint"]["distinct"] == len(np.unique(joint)) and m["joint"]["frames"] == joint.size
    assert m["phones"]["frames"] == joint.size  # every frame labelled (gap frames as 'sil')
    assert 0 < m["phones"]["pnmi"] <= 1 and 0 < m["phones"]["phone_purity"] <= 1
    rec = m["recon"]
    assert rec["mean_mse"] == pytest.approx(1.0, abs=0.2)  # CMVN from the same data: unit variance
    assert rec["rel_mse"] == pytest.approx(rec["recon_mse"] / rec["mean_mse"])
    table = (out / "results.md").read_text()
    assert "| tiny | fsq | 1,000 |" in table and "fsq_analyze" in table
    png = (out / "metrics.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
