"""Offline decoding of long audio through pieces cut at pauses: the cuts, and bounded memory on 10 minutes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO, shared_corpus
from tiny_asr import SR


def test_cuts_fall_in_pauses_and_pieces_are_bounded():
    from chunkssl.asr.pieces import cut_frames, feats_pieces, wave_pieces

    rng = np.random.default_rng(0)
    # 10 s of noise "speech" with a 0.5 s pause at 3.2-3.7 s and at 7.0-7.5 s
    wave = rng.normal(0, 0.3, 10 * SR).astype(np.float32)
    for a in (3.2, 7.0):
        wave[int(a * SR):int((a + 0.5) * SR)] *= 0.001
    pieces = list(wave_pieces(wave, SR, 4.0))
    assert np.array_equal(np.concatenate(pieces), wave)  # nothing lost or repeated
    ends = np.cumsum([len(p) for p in pieces])[:-1] / SR
    assert len(pieces) == 3 and all(len(p) <= 4 * SR for p in pieces)
    assert 3.2 <= ends[0] <= 3.7 and 7.0 <= ends[1] <= 7.5, ends
    # without pauses: cut anyway within the limit; short audio and no limit: one piece
    cuts = cut_frames(np.zeros(1000), 300)
    assert cuts[0] == 0 and cuts[-1] == 1000 and max(np.diff(cuts)) <= 300
    assert len(list(wave_pieces(wave, SR, None))) == 1 and len(list(wave_pieces(wave, SR, 20.0))) == 1
    # fbank pieces: the quiet frames of the log-mel energies
    feats = torch.full((1000, 80), 5.0)
    feats[420:470] = -10.0
    got = list(feats_pieces(feats, 6.0))
    assert sum(p.shape[0] for p in got) == 1000 and 420 <= got[0].shape[0] <= 470
    with pytest.raises(ValueError, match="at least 2 frames"):
        cut_frames(np.zeros(10), 1)


def _peak_mb(cmd: list[str]) -> tuple[int, float, str]:
    """Exit status, peak RSS (MB, ru_maxrss) and stderr tail of a child process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, err[-3000:]


@pytest.mark.slow
def test_offline_decoder_on_ten_minutes_in_bounded_memory(tiny_asr, tmp_path):
    """5 and 10 minutes of real speech: both finish, under 2 GB, and 10 minutes needs no more than 5 (but audio)."""
    from long_wav import write_long_wav

    shared = shared_corpus("libritrans").parent
    shared_corpus("fsdd")
    ten = write_long_wav(tmp_path / "ten.wav", 600, shared)
    wave, _ = sf.read(ten, dtype="float32")
    sf.write(tmp_path / "five.wav", wave[: 300 * SR], SR, subtype="PCM_16")
    peaks, texts = {}, {}
    for name in ("five", "ten"):
        (tmp_path / f"{name}.scp").write_text(f"{name} {tmp_path / name}.wav\n")
        out = tmp_path / f"out_{name}"
        rc, peaks[name], err = _peak_mb([sys.executable, "-m", "chunkssl.bin.asr_inference", "--asr_train_config",
                                         str(tiny_asr["config"]), "--asr_model_file", str(tiny_asr["model"]),
                                         "--wav-scp", str(tmp_path / f"{name}.scp"), "--chunk-ms", "640",
                                         "--beam-size", "4", "--num-threads", "1", "--output-dir", str(out)])
        assert rc == 0, err
        texts[name] = (out / "text").read_text().split(maxsplit=1)[1]
    assert peaks["ten"] < 2000, peaks
    # 5 more minutes hold 19.2 MB more float32 samples, plus the reader's check and allocator slack (+62 MB
    # measured); one pass over the whole recording would need GBs (a (T x T) mask and attention scores)
    assert peaks["ten"] - peaks["five"] < 100, peaks
    assert len(texts["ten"]) > len(texts["five"]) > 20
