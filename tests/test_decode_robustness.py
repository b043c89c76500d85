"""Decoding hostile inputs: a checkpoint must fit its config exactly (a broken file is "not a valid
checkpoint", exit status 2), and a decode set goes on past a bad utterance, lists it in ``failed`` and exits 1."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from chunkssl.checkpoint import build_from_files, read_state
from chunkssl.fileio import DataError
from conftest import REPO, single_thread
from tiny_asr import make_data, train_args


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny ASR model after one epoch of ``asr_train`` on eight synthetic utterances."""
    from chunkssl.bin import asr_train

    root = tmp_path_factory.mktemp("ckpt")
    make_data(root / "data", n_utts=8)
    with single_thread():
        asr_train.main(train_args(root / "data", root / "exp", 1))
    return {"root": root, "config": root / "exp" / "config.yaml", "model": root / "exp" / "1epoch.pth"}


def _decode_cli(trained, model_file, mode: str = "rescore", *inputs: str, module: str = "asr_inference",
                fresh_process: bool = False) -> subprocess.CompletedProcess:
    """Run a decoder CLI (in this process unless ``fresh_process``); stdout is not captured in process."""
    import importlib

    from chunkssl.fileio import run_cli

    root = trained["root"]
    inputs = inputs or ("--feats-scp", str(root / "data" / "feats.scp"), "--decode-mode", mode)
    argv = ["--asr_train_config", str(trained["config"]), "--asr_model_file", str(model_file), *inputs,
            "--beam-size", "2", "--output-dir", str(root / f"dec_{module}_{mode}")]
    if fresh_process:
        env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, "-m", f"chunkssl.bin.{module}", *argv], capture_output=True,
                              text=True, env=env, timeout=300)
    import contextlib
    import io

    err = io.StringIO()
    main = importlib.import_module(f"chunkssl.bin.{module}").main
    with contextlib.redirect_stderr(err), single_thread():
        rc = run_cli(module, main, argv)
    return subprocess.CompletedProcess(argv, rc, "", err.getvalue())


def test_the_right_checkpoint_loads_every_key(trained):
    from espnet2.tasks.asr import ASRTask

    model, _ = build_from_files(ASRTask, trained["config"], trained["model"])
    state = read_state(trained["model"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_foreign_checkpoint_names_missing_and_unexpected_keys(trained, tmp_path):
    from chunkssl.asr.model import load_asr

    state = read_state(trained["model"])
    foreign = {k.replace("decoder.", "quantizer."): v for k, v in state.items()}  # another model's layout
    torch.save(foreign, tmp_path / "other.pth")
    with pytest.raises(DataError) as e:
        load_asr(trained["config"], tmp_path / "other.pth")
    msg = str(e.value)
    assert "missing from the checkpoint (decoder." in msg and "unexpected key(s) (quantizer." in msg
    assert str(tmp_path / "other.pth") in msg and str(trained["config"]) in msg
    # a few keys short, nothing foreign: still refused (ESPnet alone would keep random weights there)
    torch.save({k: v for k, v in state.items() if not k.startswith("ctc.")}, tmp_path / "part.pth")
    with pytest.raises(DataError, match=r"2 of its \d+ parameter\(s\) are missing.*ctc.ctc_lo.bias"):
        load_asr(trained["config"], tmp_path / "part.pth")
    # same names, other sizes
    bigger = dict(state, **{"ctc.ctc_lo.bias": torch.zeros(99)})
    torch.save(bigger, tmp_path / "size.pth")
    with pytest.raises(DataError, match=r"size mismatch for ctc.ctc_lo.bias"):
        load_asr(trained["config"], tmp_path / "size.pth")


def test_broken_files_are_not_valid_checkpoints(trained, tmp_path):
    from chunkssl.asr.model import load_asr

    whole = trained["model"].read_bytes()
    cases = {"empty.pth": b"", "cut.pth": whole[: len(whole) // 2], "junk.pth": bytes(range(256)) * 40}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as e:
            load_asr(trained["config"], tmp_path / name)
        assert str(e.value).startswith(f"not a valid checkpoint: {tmp_path / name}"), e.value
        assert "UNSAFE" not in str(e.value) and "weights_only" not in str(e.value)
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, tmp_path / "checkpoint.pth")
    with pytest.raises(DataError, match="not a valid checkpoint.*valid.acc.best.pth"):
        read_state(tmp_path / "checkpoint.pth")


@pytest.mark.parametrize("mode", ["rescore", "joint"])
def test_decoder_cli_refuses_a_foreign_checkpoint_in_one_line(trained, tmp_path, mode):
    state = read_state(trained["model"])
    torch.save({f"encoder.{k}": v for k, v in state.items()}, tmp_path / "ssl.pth")
    r = _decode_cli(trained, tmp_path / "ssl.pth", mode, fresh_process=mode == "rescore")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr, r.stderr
    assert "does not fit the model built from" in r.stderr and "unexpected key(s) (encoder." in r.stderr
    (tmp_path / "empty.pth").write_bytes(b"")
    r = _decode_cli(trained, tmp_path / "empty.pth", mode)
    assert r.returncode == 2 and "not a valid checkpoint" in r.stderr and "UNSAFE" not in r.stderr, r.stderr


@pytest.mark.parametrize("module", ["asr_inference", "asr_inference_streaming"])
def test_decode_set_goes_on_past_bad_utterances(trained, tmp_path, module):
    data = trained["root"] / "data"
    lines = (data / "wav.scp").read_text().splitlines()[:4]
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    nan = np.full(8000, 0.1, dtype=np.float32)
    nan[4000] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    bad = [f"utt001 {tmp_path / 'empty.wav'}", f"utt002 {tmp_path / 'nan.wav'}"]
    (tmp_path / "wav.scp").write_text("\n".join([lines[0], *bad, lines[3]]) + "\n")
    r = _decode_cli(trained, trained["model"], "rescore", "--wav-scp", str(tmp_path / "wav.scp"), module=module)
    out = trained["root"] / f"dec_{module}_rescore"
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    # the good utterances on both sides of the bad ones are decoded and kept
    assert [ln.split()[0] for ln in (out / "text").read_text().splitlines()] == ["utt000", "utt003"]
    failed = dict(ln.split(" ", 1) for ln in (out / "failed").read_text().splitlines())
    assert "zero samples" in failed["utt001"] and "non-finite" in failed["utt002"]
    assert json.loads((out / "timing.json").read_text())["num_failed"] == 2
    # fixed input: the next run succeeds and the stale list is gone
    (tmp_path / "wav.scp").write_text("\n".join([lines[0], lines[3]]) + "\n")
    r = _decode_cli(trained, trained["model"], "rescore", "--wav-scp", str(tmp_path / "wav.scp"), module=module)
    assert r.returncode == 0, r.stderr
    assert not (out / "failed").exists()


def test_repeated_ids_in_a_decoder_wav_scp_are_refused(trained, tmp_path):
    line = (trained["root"] / "data" / "wav.scp").read_text().splitlines()[0]
    (tmp_path / "wav.scp").write_text(f"{line}\n{line}\n")
    r = _decode_cli(trained, trained["model"], "rescore", "--wav-scp", str(tmp_path / "wav.scp"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "'utt000' appear more than once" in r.stderr, r.stderr


def test_streaming_cli_skips_the_full_context_pass_beyond_align_max_s(trained, tmp_path):
    lines = (trained["root"] / "data" / "wav.scp").read_text().splitlines()[:3]
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    for limit, aligned in (("60", True), ("0.1", False)):
        r = _decode_cli(trained, trained["model"], limit, "--wav-scp", str(tmp_path / "wav.scp"),
                        "--align-max-s", limit, module="asr_inference_streaming")
        assert r.returncode == 0, r.stderr
        timing = json.loads((trained["root"] / f"dec_asr_inference_streaming_{limit}" / "timing.json").read_text())
        entries = timing["utterances"].values()
        assert all(e["aligned"] is aligned for e in entries)
        if not aligned:  # the streaming pass still dates the first token
            assert all(e["mean_emission_delay_s"] is None for e in entries)
            assert all(e["rtf"] > 0 for e in entries)
