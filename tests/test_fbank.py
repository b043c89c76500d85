"""compute_fbank: features equal torchaudio's Kaldi fbank, CMVN stats, nj>1, crash safety, real corpora."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as taf

from chunkssl.bin.compute_fbank import main as compute_fbank
from chunkssl.datadir import validate
from chunkssl.features import CmvnStats, fbank
from chunkssl.fileio import run_cli
from conftest import REPO, UTILS, shared_corpus


def reference(path: Path, start: float | None = None, end: float | None = None) -> np.ndarray:
    """Kaldi fbank of a file computed straight from soundfile + torchaudio, resampled to 16 kHz."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = torch.from_numpy(np.ascontiguousarray(x[:, 0]))
    if start is not None:
        x = x[int(round(start * sr)):int(round(end * sr))]
    if sr != 16000:
        x = taf.resample(x, sr, 16000)
    return kaldi.fbank(x.unsqueeze(0) * 32768, num_mel_bins=80, frame_length=25.0, frame_shift=10.0,
                       dither=0.0, sample_frequency=16000.0).numpy()


def noise(sr: int, seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


def write_dir(d: Path, wav: dict[str, str], segments: dict[str, str] | None = None) -> Path:
    """Write a data dir; speakers are the utterance-id prefix before '-'."""
    d.mkdir(parents=True, exist_ok=True)
    utts = sorted(segments or wav)
    (d / "wav.scp").write_text("".join(f"{k} {wav[k]}\n" for k in sorted(wav)))
    if segments:
        (d / "segments").write_text("".join(f"{u} {segments[u]}\n" for u in utts))
    (d / "text").write_text("".join(f"{u} TEXT OF {u.upper()}\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    spks = sorted({u.split("-")[0] for u in utts})
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in utts if u.split('-')[0] == s)}\n" for s in spks))
    return d


def load_feats(out: Path) -> dict[str, np.ndarray]:
    return dict(kaldiio.load_scp(str(out / "feats.scp")))


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """Data dir with wav, flac, SPHERE, a pipe, an 8 kHz wav and a 10 ms utterance, computed with nj=1."""
    root = tmp_path_factory.mktemp("formats")
    files = {"a-wav": ("a.wav", "WAV", 16000), "b-flac": ("b.flac", "FLAC", 16000), "c-sph": ("c.sph", "NIST", 16000),
             "e-8k": ("e.wav", "WAV", 8000), "f-short": ("f.wav", "WAV", 16000)}
    wav = {}
    for i, (utt, (name, fmt, sr)) in enumerate(files.items()):
        seconds = 0.01 if utt == "f-short" else 0.3 + 0.05 * i
        sf.write(root / name, noise(sr, seconds, i), sr, format=fmt, subtype="PCM_16")
        wav[utt] = str(root / name)
    wav["d-pipe"] = f"cat {root / 'a.wav'} |"
    data = write_dir(root / "data", wav)
    assert compute_fbank(["--data-dir", str(data), "--out-dir", str(root / "out")]) == 0
    return root


@pytest.mark.parametrize("utt,name", [("a-wav", "a.wav"), ("b-flac", "b.flac"), ("c-sph", "c.sph"),
                                      ("d-pipe", "a.wav"), ("e-8k", "e.wav")])
def test_features_equal_kaldi_reference(formats, utt, name):
    got = load_feats(formats / "out")[utt]
    want = reference(formats / name)
    assert got.shape == want.shape and got.shape[1] == 80
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_8khz_is_resampled_to_16khz(formats):
    got = load_feats(formats / "out")["e-8k"]
    n16 = 2 * sf.info(formats / "e.wav").frames
    assert got.shape[0] == 1 + (n16 - 400) // 160  # frames at 16 kHz, not at 8 kHz


def test_outputs_form_a_valid_data_dir(formats):
    out = formats / "out"
    feats = load_feats(out)
    assert list(feats) == sorted(feats)
    frames = dict(line.split() for line in (out / "utt2num_frames").read_text().splitlines())
    assert frames == {u: str(m.shape[0]) for u, m in feats.items()}
    assert (out / "feat_dim").read_text().strip() == "80"
    assert validate(out) == []
    assert not (out / "segments").exists() and not (out / "wav.scp").exists()


def test_too_short_utterance_is_skipped_everywhere(formats):
    out = formats / "out"
    assert "f-short" not in load_feats(out)
    assert (out / "skipped_utts").read_text().startswith("f-short too short")
    for name in ("text", "utt2spk", "spk2utt", "utt2num_frames"):
        assert "f-short" not in (out / name).read_text(), name
    assert "f-short" in (formats / "data" / "text").read_text()  # the source dir is untouched


def test_cmvn_stats_equal_numpy_sums(formats):
    out = formats / "out"
    allf = np.concatenate([m.astype(np.float64) for m in load_feats(out).values()])
    with np.load(out / "cmvn_stats.npz") as z:
        assert set(z.files) == {"count", "sum", "sum_square"}
        assert int(z["count"]) == allf.shape[0]
        np.testing.assert_allclose(z["sum"], allf.sum(0), rtol=1e-9)
        np.testing.assert_allclose(z["sum_square"], np.square(allf).sum(0), rtol=1e-9)
    kaldi_stats = dict(kaldiio.load_ark(str(out / "cmvn.ark")))["global"]
    assert kaldi_stats.shape == (2, 81) and kaldi_stats[0, 80] == allf.shape[0] and kaldi_stats[1, 80] == 0
    np.testing.assert_allclose(kaldi_stats[0, :80], allf.sum(0), rtol=1e-9)
    # ESPnet's GlobalMVN reads the npz as its stats_file and normalises to zero mean, unit variance
    from espnet2.layers.global_mvn import GlobalMVN

    normed, _ = GlobalMVN(str(out / "cmvn_stats.npz"))(torch.from_numpy(allf).float()[None], torch.tensor([len(allf)]))
    np.testing.assert_allclose(normed[0].mean(0).numpy(), 0, atol=1e-3)
    np.testing.assert_allclose(normed[0].std(0, unbiased=False).numpy(), 1, atol=1e-3)


def test_nj2_equals_nj1(formats):
    out2 = formats / "out_nj2"
    assert compute_fbank(["--data-dir", str(formats / "data"), "--out-dir", str(out2), "--nj", "2",
                          "--cmd", str(UTILS / "run.pl")]) == 0
    assert (out2 / "feats.1.ark").is_file() and (out2 / "feats.2.ark").is_file()
    one, two = load_feats(formats / "out"), load_feats(out2)
    assert list(two) == list(one)
    for u in one:
        np.testing.assert_array_equal(two[u], one[u])
    s1, s2 = CmvnStats.load_npz(formats / "out" / "cmvn_stats.npz"), CmvnStats.load_npz(out2 / "cmvn_stats.npz")
    assert s1.count == s2.count
    np.testing.assert_allclose(s2.sum, s1.sum, rtol=1e-12)
    for name in ("text", "utt2spk", "spk2utt", "utt2num_frames", "skipped_utts"):
        assert (out2 / name).read_text() == (formats / "out" / name).read_text(), name


def test_segments_match_reference_and_rerun_is_noop(tmp_path, capsys):
    sf.write(tmp_path / "rec.wav", noise(16000, 1.0, 7), 16000, subtype="PCM_16")
    data = write_dir(tmp_path / "data", {"rec": str(tmp_path / "rec.wav")},
                     {"s-1": "rec 0.25 0.75", "s-2": "rec 0.5 1.0"})
    args = ["--data-dir", str(data), "--out-dir", str(tmp_path / "out")]
    assert compute_fbank(args) == 0
    feats = load_feats(tmp_path / "out")
    np.testing.assert_allclose(feats["s-1"], reference(tmp_path / "rec.wav", 0.25, 0.75), atol=1e-4)
    np.testing.assert_allclose(feats["s-2"], reference(tmp_path / "rec.wav", 0.5, 1.0), atol=1e-4)

    stamp = (tmp_path / "out" / "feats.scp").stat().st_mtime_ns
    capsys.readouterr()
    assert compute_fbank(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (tmp_path / "out" / "feats.scp").stat().st_mtime_ns == stamp
    # changed inputs are redone
    (data / "text").write_text((data / "text").read_text().replace("TEXT OF S-2", "NEW WORDS"))
    assert compute_fbank(args) == 0
    assert "nothing to do" not in capsys.readouterr().out
    assert "s-2 NEW WORDS" in (tmp_path / "out" / "text").read_text()


def test_bad_utterance_midway_leaves_no_trusted_output(tmp_path, capsys):
    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", noise(16000, 0.2, i), 16000, subtype="PCM_16")
    wav = {f"s-{i}": str(tmp_path / f"{i}.wav") for i in range(3)}
    data = write_dir(tmp_path / "data", wav)
    out = tmp_path / "out"
    args = ["--data-dir", str(data), "--out-dir", str(out)]
    assert compute_fbank(args) == 0
    write_dir(data, {**wav, "s-1": str(tmp_path / "gone.wav")})
    capsys.readouterr()
    assert run_cli("compute_fbank", compute_fbank, args) == 2
    err = capsys.readouterr().err
    assert "'s-1'" in err and "gone.wav" in err and "--skip-bad" in err
    # the previous run's results are invalidated, nothing half-written remains
    assert sorted(p.name for p in out.glob("*feats*")) == []
    assert not (out / ".done").exists()
    assert compute_fbank(args + ["--skip-bad"]) == 0
    assert list(load_feats(out)) == ["s-0", "s-2"] and "s-1" in (out / "skipped_utts").read_text()
    write_dir(data, wav)
    assert compute_fbank(args) == 0
    feats = load_feats(out)
    for i in range(3):
        np.testing.assert_allclose(feats[f"s-{i}"], reference(tmp_path / f"{i}.wav"), atol=1e-4)


def test_nan_audio_is_an_error_or_skipped_and_never_reaches_the_stats(tmp_path, capsys):
    wav = {}
    for i in range(3):
        x = noise(16000, 0.2, i)
        if i == 1:
            x[500:510] = np.nan
        sf.write(tmp_path / f"{i}.wav", x, 16000, subtype="FLOAT")
        wav[f"s-{i}"] = str(tmp_path / f"{i}.wav")
    data = write_dir(tmp_path / "data", wav)
    args = ["--data-dir", str(data), "--out-dir", str(tmp_path / "out")]
    assert run_cli("compute_fbank", compute_fbank, args) == 2
    err = capsys.readouterr().err
    assert "utterance 's-1'" in err and "non-finite" in err and "--skip-bad" in err
    assert compute_fbank(args + ["--skip-bad"]) == 0
    out = tmp_path / "out"
    assert list(load_feats(out)) == ["s-0", "s-2"]
    assert "s-1" in (out / "skipped_utts").read_text() and "non-finite" in (out / "skipped_utts").read_text()
    stats = np.load(out / "cmvn_stats.npz")
    assert all(np.isfinite(stats[k]).all() for k in stats.files)


def test_killed_run_is_redone_by_rerun(tmp_path, script_env):
    for i in range(2):
        sf.write(tmp_path / f"{i}.wav", noise(16000, 0.2, i), 16000, subtype="PCM_16")
    flag = tmp_path / "hold"
    # s-1's pipe blocks while the flag file exists, so the run can be killed mid-way.
    wav = {"s-0": str(tmp_path / "0.wav"),
           "s-1": f"while [ -e {flag} ]; do sleep 0.05; done; cat {tmp_path / '1.wav'} |"}
    data = write_dir(tmp_path / "data", wav)
    out = tmp_path / "out"
    args = ["--data-dir", str(data), "--out-dir", str(out)]
    assert compute_fbank(args) == 0  # a complete earlier run, which the killed one must invalidate
    (data / "text").write_text((data / "text").read_text().replace("TEXT", "CHANGED"))
    flag.touch()
    proc = subprocess.Popen([sys.executable, "-m", "chunkssl.bin.compute_fbank", *args], env=script_env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".feats.ark.*.tmp")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert list(out.glob(".feats.ark.*.tmp")), "compute_fbank never started writing"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the blocked pipe's shell dies too
        proc.wait()
    assert not (out / "feats.scp").exists() and not (out / ".done").exists() and not (out / "feats.ark").exists()
    flag.unlink()
    assert compute_fbank(args) == 0
    assert not list(out.glob(".*.tmp"))
    feats = load_feats(out)
    np.testing.assert_allclose(feats["s-1"], reference(tmp_path / "1.wav"), atol=1e-4)
    assert "CHANGED" in (out / "text").read_text()


def test_fbank_function_rejects_too_short():
    from chunkssl.features import TooShortError

    with pytest.raises(TooShortError, match="shorter than one 25 ms frame"):
        fbank(np.zeros(399, dtype=np.float32), 16000)
    assert fbank(np.zeros(400 + 160, dtype=np.float32) + 0.01, 16000).shape == (2, 80)


def test_real_an4_sphere(tmp_path):
    tar = shared_corpus("mini_an4") / "downloads.tar.gz"
    member = "downloads/an4/wav/an4_clstk/fash/an251-fash-b.sph"
    with tarfile.open(tar) as t:
        (tmp_path / "an251.sph").write_bytes(t.extractfile(member).read())
    data = write_dir(tmp_path / "data", {"fash-an251": str(tmp_path / "an251.sph")})
    assert compute_fbank(["--data-dir", str(data), "--out-dir", str(tmp_path / "out")]) == 0
    got = load_feats(tmp_path / "out")["fash-an251"]
    info = sf.info(tmp_path / "an251.sph")
    assert info.samplerate == 16000 and got.shape[0] == 1 + (info.frames - 400) // 160
    np.testing.assert_allclose(got, reference(tmp_path / "an251.sph"), atol=1e-4)


def test_real_fsdd_8khz(tmp_path):
    wav = shared_corpus("fsdd") / "recordings" / "3_jackson_7.wav"
    assert sf.info(wav).samplerate == 8000
    data = write_dir(tmp_path / "data", {"jackson-3_7": str(wav)})
    assert compute_fbank(["--data-dir", str(data), "--out-dir", str(tmp_path / "out")]) == 0
    got = load_feats(tmp_path / "out")["jackson-3_7"]
    np.testing.assert_allclose(got, reference(wav), atol=1e-4)
    assert got.shape[0] == 1 + (2 * sf.info(wav).frames - 400) // 160


def test_failed_parallel_job_names_log_and_utterance(tmp_path, capsys):
    sf.write(tmp_path / "0.wav", noise(16000, 0.2, 0), 16000, subtype="PCM_16")
    data = write_dir(tmp_path / "data", {"s-0": str(tmp_path / "0.wav"), "s-1": str(tmp_path / "gone.wav")})
    out = tmp_path / "out"
    assert run_cli("compute_fbank", compute_fbank, ["--data-dir", str(data), "--out-dir", str(out), "--nj", "2",
                                                    "--cmd", str(UTILS / "run.pl")]) == 2
    err = capsys.readouterr().err
    assert "job 2" in err and str(out / "log" / "fbank.2.log") in err and "'s-1'" in err and "gone.wav" in err
    assert "job 1 " not in err
    assert not (out / "feats.scp").exists() and not (out / ".done").exists()
