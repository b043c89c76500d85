"""Data dir loading and validation: every bad case is rejected by utils/validate_data_dir.sh naming the utterance."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chunkssl.audio import Segment
from chunkssl.datadir import load_data_dir, validate
from chunkssl.fileio import DataError
from conftest import UTILS

UTTS = ["spkA-u1", "spkA-u2", "spkB-u3"]


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def make_data_dir(root: Path, utts: list[str] = UTTS, seconds: float = 0.2) -> Path:
    """A valid data dir: one 16 kHz wav per utterance, speakers from the id prefix."""
    d = root / "data"
    (root / "wav").mkdir(parents=True, exist_ok=True)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for u in utts:
        sf.write(root / "wav" / f"{u}.wav", 0.1 * rng.standard_normal(int(16000 * seconds)), 16000, subtype="PCM_16")
    write(d / "wav.scp", [f"{u} {root / 'wav' / u}.wav" for u in utts])
    write(d / "text", [f"{u} HELLO WORLD {i}" for i, u in enumerate(utts)])
    write(d / "utt2spk", [f"{u} {u.split('-')[0]}" for u in utts])
    spks = sorted({u.split("-")[0] for u in utts})
    write(d / "spk2utt", [f"{s} " + " ".join(u for u in utts if u.startswith(s + "-")) for s in spks])
    return d


def run_validate(d: Path, env: dict, *opts: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(UTILS / "validate_data_dir.sh"), *opts, str(d)], env=env, capture_output=True,
                          text=True, timeout=60)


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_valid_dir_is_ok(tmp_path, script_env):
    d = make_data_dir(tmp_path)
    assert validate(d) == []
    r = run_validate(d, script_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"validate_data_dir: {d} is OK (3 utterances)"


def _missing_file(d, root):
    (root / "wav" / "spkA-u2.wav").unlink()


def _corrupt(d, root):
    (root / "wav" / "spkA-u2.wav").write_bytes(b"RIFF\x00\x00garbage" * 50)


def _zero_length(d, root):
    sf.write(root / "wav" / "spkA-u2.wav", np.zeros(0), 16000)


def _nan_audio(d, root):
    wave = np.full(3200, 0.1, dtype=np.float32)
    wave[1000] = np.nan
    sf.write(root / "wav" / "spkA-u2.wav", wave, 16000, subtype="FLOAT")


def _truncated(d, root):
    path = root / "wav" / "spkA-u2.wav"
    path.write_bytes(path.read_bytes()[:-1000])


def _empty_transcript(d, root):
    edit(d / "text", "spkA-u2 HELLO WORLD 1", "spkA-u2")


def _duplicate(d, root):
    edit(d / "text", "spkA-u2 HELLO WORLD 1\n", "spkA-u2 HELLO WORLD 1\nspkA-u2 HELLO AGAIN\n")


def _unsorted(d, root):
    lines = (d / "wav.scp").read_text().splitlines()
    write(d / "wav.scp", [lines[0], lines[2], lines[1]])


def _text_mismatch(d, root):
    edit(d / "text", "spkA-u2 HELLO WORLD 1\n", "")


def _failing_pipe(d, root):
    edit(d / "wav.scp", f"spkA-u2 {root / 'wav' / 'spkA-u2.wav'}", "spkA-u2 sox-not-installed in.wav -t wav - |")


def _utt2spk_mismatch(d, root):
    edit(d / "utt2spk", "spkA-u2 spkA\n", "")


def _spk2utt_inconsistent(d, root):
    write(d / "spk2utt", ["spkA spkA-u1", "spkB spkA-u2 spkB-u3"])


CASES = {
    "missing file": (_missing_file, "does not exist"),
    "corrupt audio": (_corrupt, "cannot decode"),
    "zero-length audio": (_zero_length, "zero samples"),
    "NaN audio": (_nan_audio, "non-finite sample"),
    "truncated wav": (_truncated, "truncated"),
    "empty transcript": (_empty_transcript, "empty transcript"),
    "duplicate id": (_duplicate, "duplicated"),
    "unsorted ids": (_unsorted, "not sorted"),
    "text/wav.scp mismatch": (_text_mismatch, "missing from text"),
    "failing pipe": (_failing_pipe, "sox-not-installed"),
    "utt2spk mismatch": (_utt2spk_mismatch, "missing from utt2spk"),
    "spk2utt inconsistent": (_spk2utt_inconsistent, "spk2utt"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_dir_rejected_naming_utterance(tmp_path, script_env, case):
    breaker, expected = CASES[case]
    d = make_data_dir(tmp_path)
    breaker(d, tmp_path)
    r = run_validate(d, script_env)
    assert r.returncode == 1, r.stdout
    problems = [line for line in r.stderr.splitlines() if "spkA-u2" in line]
    assert problems, r.stderr
    assert any(expected in line for line in problems), r.stderr
    # only the broken utterance is blamed
    assert "utterance 'spkA-u1'" not in r.stderr and "utterance 'spkB-u3'" not in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith("problem(s); see above")


def test_no_audio_and_no_text_options(tmp_path, script_env):
    d = make_data_dir(tmp_path)
    _missing_file(d, tmp_path)
    (d / "text").unlink()
    assert run_validate(d, script_env).returncode == 1
    assert any("text: missing" in p for p in validate(d, check_audio=False))
    r = run_validate(d, script_env, "--no-audio", "--no-text")
    assert r.returncode == 0, r.stderr


def _segments_dir(tmp_path: Path, segs: list[str]) -> Path:
    d = make_data_dir(tmp_path, ["recA"], seconds=1.0)
    utts = [s.split()[0] for s in segs]
    write(d / "segments", segs)
    write(d / "text", [f"{u} WORD" for u in utts])
    write(d / "utt2spk", [f"{u} spkA" for u in utts])
    write(d / "spk2utt", ["spkA " + " ".join(utts)])
    return d


def test_segments_valid_and_loaded(tmp_path):
    d = _segments_dir(tmp_path, ["spkA-s1 recA 0.0 0.5", "spkA-s2 recA 0.5 1.0"])
    assert validate(d) == []
    data = load_data_dir(d, require_text=True)
    assert data.utt_ids == ["spkA-s1", "spkA-s2"]
    assert data.segments["spkA-s2"] == Segment("recA", 0.5, 1.0)
    full, _ = sf.read(tmp_path / "wav" / "recA.wav", dtype="float32")
    np.testing.assert_array_equal(data.load_audio("spkA-s2"), full[8000:16000])


@pytest.mark.parametrize("seg,expected", [("spkA-s2 recA 0.6 0.4", "not after its start"),
                                          ("spkA-s2 recA 0.5 3.0", "past the end"),
                                          ("spkA-s2 recZ 0.1 0.2", "not in")])
def test_bad_segments_rejected(tmp_path, script_env, seg, expected):
    d = _segments_dir(tmp_path, ["spkA-s1 recA 0.0 0.5", seg])
    r = run_validate(d, script_env)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert any("spkA-s2" in line and expected in line and "segments" in line for line in lines), r.stderr


def test_load_data_dir_raises_listing_all_problems(tmp_path):
    d = make_data_dir(tmp_path)
    _text_mismatch(d, tmp_path)
    _utt2spk_mismatch(d, tmp_path)
    with pytest.raises(DataError) as e:
        load_data_dir(d, require_text=True)
    assert "missing from text" in str(e.value) and "missing from utt2spk" in str(e.value)
    # text is optional for loading unlabeled data, but must agree when present
    (d / "text").unlink()
    with pytest.raises(DataError, match="missing from utt2spk"):
        load_data_dir(d)


@pytest.mark.parametrize("name", ["wav.scp", "utt2spk", "text", "spk2utt", "segments"])
def test_bom_is_named_as_the_cause(tmp_path, script_env, name):
    """A BOM sorts after every plain id: the first id must not be blamed as unsorted or unknown."""
    d = _segments_dir(tmp_path, ["spkA-s1 recA 0.0 0.5", "spkA-s2 recA 0.5 1.0"])
    (d / name).write_bytes(b"\xef\xbb\xbf" + (d / name).read_bytes())
    r = run_validate(d, script_env, "--no-audio")
    assert r.returncode == 1
    problems = [line for line in r.stderr.splitlines() if f"{d}/" in line]
    assert len(problems) == 1, r.stderr
    assert f"{d / name}:1:" in problems[0] and "id on line 1 starts with a UTF-8 byte-order mark: save the file " \
        "without BOM" in problems[0]
    with pytest.raises(DataError, match="byte-order mark"):
        load_data_dir(d)


def _spaced(d: Path, files: list[str]) -> None:
    for name in files:  # the id only, not the wav file's name
        lines = (d / name).read_text().splitlines()
        write(d / name, [line.replace("spkA-u2 ", "spkA u2 ", 1) if line.startswith("spkA-u2") else line
                         for line in lines])


@pytest.mark.parametrize("files,expected", [
    (["utt2spk"], ["line 2 of utt2spk has 3 fields, utt2spk expects 2"]),
    (["wav.scp"], ["line 2 of wav.scp has 3 fields and is neither one path nor a command"]),
    (["wav.scp", "text", "utt2spk", "spk2utt"], ["line 2 of wav.scp has 3 fields", "line 2 of utt2spk has 3 fields",
                                                 "line 2 of text starts with 'spkA u2', an id with spaces"]),
])
def test_space_in_an_id_is_named_as_the_cause(tmp_path, script_env, files, expected):
    d = make_data_dir(tmp_path)
    _spaced(d, files)
    r = run_validate(d, script_env)
    assert r.returncode == 1
    for cause in expected:
        assert any(cause in line and "ids cannot contain spaces" in line for line in r.stderr.splitlines()), r.stderr
    assert "not sorted" not in r.stderr and "duplicated" not in r.stderr, r.stderr


def test_space_in_a_segments_id_is_named_as_the_cause(tmp_path, script_env):
    d = _segments_dir(tmp_path, ["spkA-s1 recA 0.0 0.5", "spkA s2 recA 0.5 1.0"])
    r = run_validate(d, script_env)
    assert r.returncode == 1
    assert "line 2 of segments has 5 fields, segments expects 4 ('utterance recording start end'): ids cannot " \
        "contain spaces" in r.stderr, r.stderr


def test_pipe_and_path_with_spaces_are_not_ids_with_spaces(tmp_path):
    d = make_data_dir(tmp_path)
    spaced = tmp_path / "my wavs"
    spaced.mkdir()
    (tmp_path / "wav" / "spkA-u2.wav").rename(spaced / "spkA-u2.wav")
    edit(d / "wav.scp", f"{tmp_path / 'wav' / 'spkA-u2.wav'}", f"{spaced / 'spkA-u2.wav'}")
    wav = tmp_path / "wav" / "spkB-u3.wav"
    edit(d / "wav.scp", f"spkB-u3 {wav}", f"spkB-u3 cat {wav} |")
    assert validate(d) == []
