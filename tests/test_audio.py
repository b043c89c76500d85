"""Reading wav.scp entries: wav/flac/SPHERE files, shell pipes, segments, resampling and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from chunkssl.audio import Segment, cut_segment, load_utterance, read_audio, resample, wav_shortfall
from chunkssl.fileio import DataError


def tone(sr: int, seconds: float, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A sine plus a little noise, quantised to int16 steps so every format stores it exactly."""
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (np.round(x * 32767) / 32768).astype(np.float32)


@pytest.mark.parametrize("ext,fmt", [("wav", "WAV"), ("flac", "FLAC"), ("sph", "NIST")])
def test_read_file_formats(tmp_path, ext, fmt):
    x = tone(16000, 0.3)
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 16000, format=fmt, subtype="PCM_16")
    wave, sr = read_audio(str(path))
    assert sr == 16000 and wave.dtype == np.float32
    np.testing.assert_allclose(wave, x, atol=1e-6)


def test_read_pipe_equals_file(tmp_path):
    x = tone(8000, 0.2)
    path = tmp_path / "a.wav"
    sf.write(path, x, 8000, subtype="PCM_16")
    wave, sr = read_audio(f"cat {path} |")
    assert sr == 8000
    np.testing.assert_array_equal(wave, read_audio(str(path))[0])


def test_multichannel_keeps_first_channel(tmp_path):
    left, right = tone(16000, 0.1, 300), tone(16000, 0.1, 900, seed=1)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    np.testing.assert_allclose(read_audio(str(path))[0], left, atol=1e-6)


def test_failing_pipe_names_command_and_stderr():
    with pytest.raises(DataError) as e:
        read_audio("echo disk-on-fire >&2; exit 3 |", "utt7", "data/x/wav.scp")
    msg = str(e.value)
    assert "utt7" in msg and "data/x/wav.scp" in msg and "disk-on-fire" in msg and "exit status 3" in msg


def test_failure_inside_pipeline_is_caught(tmp_path):
    # Without pipefail, `cat missing | cat` would "succeed" with no output.
    with pytest.raises(DataError, match="exit status"):
        read_audio(f"cat {tmp_path}/nope.wav | cat |", "u1")


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match=r"'u1'.*does not exist.*check the path in wav.scp"):
        read_audio(str(tmp_path / "missing.wav"), "u1", "wav.scp")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"'u2'.*empty \(0 bytes\).*fix_data_dir"):
        read_audio(str(tmp_path / "empty.wav"), "u2", "wav.scp")
    (tmp_path / "junk.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(DataError, match=r"'u3'.*cannot decode.*junk.wav"):
        read_audio(str(tmp_path / "junk.wav"), "u3", "wav.scp")
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(DataError, match=r"'u4'.*zero samples"):
        read_audio(str(tmp_path / "zero.wav"), "u4", "wav.scp")


def test_cut_segment_slices_and_clips():
    wave = np.arange(16000, dtype=np.float32)  # 1 s at 16 kHz
    np.testing.assert_array_equal(cut_segment(wave, 16000, Segment("r", 0.25, 0.5)), wave[4000:8000])
    np.testing.assert_array_equal(cut_segment(wave, 16000, Segment("r", 0.75, -1)), wave[12000:])
    # a small overshoot past the end is clipped, like Kaldi's extract-segments
    np.testing.assert_array_equal(cut_segment(wave, 16000, Segment("r", 0.5, 1.2)), wave[8000:])
    with pytest.raises(DataError, match=r"'u9'.*past the end"):
        cut_segment(wave, 16000, Segment("r", 0.5, 2.0), "u9", "segments")
    with pytest.raises(DataError, match="not after its start"):
        cut_segment(wave, 16000, Segment("r", 0.5, 0.5), "u9")
    with pytest.raises(DataError, match="only 1.000 s long"):
        cut_segment(wave, 16000, Segment("r", 1.5, 1.6), "u9")


def test_load_utterance_segment_and_resample(tmp_path):
    x = tone(8000, 1.0, freq=1000.0)
    path = tmp_path / "r.wav"
    sf.write(path, x, 8000, subtype="PCM_16")
    out = load_utterance("u1", str(path), Segment("r", 0.25, 0.75), sample_rate=16000)
    assert len(out) == 8000  # 0.5 s at the new rate
    # the tone is still at 1 kHz after resampling
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / len(out) - 1000.0) < 3.0
    np.testing.assert_array_equal(load_utterance("u1", str(path), sample_rate=8000), read_audio(str(path))[0])


def test_resample_matches_torchaudio():
    import torch
    import torchaudio.functional as taf

    x = tone(8000, 0.1)
    expected = taf.resample(torch.from_numpy(x), 8000, 16000).numpy()
    np.testing.assert_allclose(resample(x, 8000, 16000), expected, atol=1e-7)
    assert resample(x, 8000, 8000) is x


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused_naming_the_utterance(tmp_path, bad):
    x = tone(16000, 0.2)
    x[1600] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"data/x/wav.scp: utterance 'u5'.*1 non-finite sample.*at 0.100 s"):
        read_audio(str(path), "u5", "data/x/wav.scp")
    with pytest.raises(DataError, match=r"'u6'.*non-finite"):
        read_audio(f"cat {path} |", "u6")


def test_truncated_wav_is_refused_but_a_streamed_header_is_not(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(16000, 0.2), 16000, subtype="PCM_16")
    whole = path.read_bytes()
    path.write_bytes(whole[:-2000])
    with pytest.raises(DataError, match=r"'u7'.*truncated.*6400 bytes.*only 4400"):
        read_audio(str(path), "u7", "wav.scp")
    # the same bytes through a pipe: a pipe's header may not know the length, so it is read
    assert len(read_audio(f"cat {path} |")[0]) == 2200
    # a header marked "length unknown" (0xFFFFFFFF), as streaming writers leave it, is not a truncation
    data_at = whole.index(b"data")
    path.write_bytes(whole[:data_at + 4] + b"\xff\xff\xff\xff" + whole[data_at + 8:])
    assert wav_shortfall(str(path)) is None


def test_corpus_prep_data_error_is_one_line(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    r = subprocess.run([sys.executable, "-m", "chunkssl.corpora.yesno", "--src", str(tmp_path / "nowhere"),
                        "--out", str(tmp_path / "data")], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("yesno: error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
