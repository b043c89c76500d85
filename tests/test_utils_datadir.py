"""Kaldi-style data-dir tools in utils/: split, spk2utt, filter, fix, subset and combine."""

from __future__ import annotations

import importlib.util

from conftest import UTILS
from script_helpers import lines, make_data_dir, run, write


# ---------------------------------------------------------------- split / spk2utt


def load_split_scp():
    spec = importlib.util.spec_from_file_location("split_scp", UTILS / "split_scp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_scp_pure_layouts():
    split_scp = load_split_scp()
    assert split_scp.balanced_sizes(10, 3) == [4, 3, 3]
    assert split_scp.balanced_sizes(3, 3) == [1, 1, 1]
    # Groups of 3,1,1,5,2 lines: the cut nearest the middle (6 of 12) falls after 5 lines.
    assert split_scp.group_boundaries([3, 1, 1, 5, 2], 2) == [0, 3, 5]
    # A big first group still leaves one group for each later part.
    assert split_scp.group_boundaries([5, 1, 1, 1], 3) == [0, 1, 2, 4]


def test_split_scp_round_trip_and_speakers(tmp_path, script_env):
    data = make_data_dir(tmp_path / "d", {"a": 4, "b": 1, "c": 2, "d": 3})
    outs = [tmp_path / f"split/wav.{i}.scp" for i in (1, 2, 3)]
    run([UTILS / "split_scp.py", data / "wav.scp", *outs], script_env)
    assert [len(lines(o)) for o in outs] == [4, 3, 3]
    assert sum((lines(o) for o in outs), []) == lines(data / "wav.scp")

    run([UTILS / "split_scp.py", "--utt2spk", data / "utt2spk", data / "wav.scp", *outs], script_env)
    assert sum((lines(o) for o in outs), []) == lines(data / "wav.scp")
    speakers = [{line.split()[0].split("-")[0] for line in lines(o)} for o in outs]
    assert all(speakers) and sum(len(s) for s in speakers) == 4, speakers

    proc = run([UTILS / "split_scp.py", data / "spk2gender", *[tmp_path / f"x.{i}" for i in range(5)]],
               script_env, check=False)
    assert proc.returncode != 0 and "4 lines" in proc.stderr


def test_utt2spk_spk2utt_round_trip(tmp_path, script_env):
    data = make_data_dir(tmp_path / "d", {"a": 2, "b": 3})
    spk2utt = run([UTILS / "utt2spk_to_spk2utt.py", data / "utt2spk"], script_env).stdout
    assert spk2utt == "a a-1 a-2\nb b-1 b-2 b-3\n"
    back = run([UTILS / "spk2utt_to_utt2spk.py"], script_env, input=spk2utt).stdout
    assert back == (data / "utt2spk").read_text()
    proc = run([UTILS / "utt2spk_to_spk2utt.py"], script_env, input="u1 s1\nu1 s2\n", check=False)
    assert proc.returncode != 0 and "'u1'" in proc.stderr


def test_filter_scp(tmp_path, script_env):
    data = make_data_dir(tmp_path / "d", {"a": 2, "b": 2})
    ids = write(tmp_path / "ids", "b-2\na-1 extra\n")
    assert run([UTILS / "filter_scp.py", ids, data / "text"], script_env).stdout == \
        "a-1 words of a-1\nb-2 words of b-2\n"
    assert run([UTILS / "filter_scp.py", "--exclude", ids], script_env,
               input=(data / "utt2spk").read_text()).stdout == "a-2 a\nb-1 b\n"


# ---------------------------------------------------------------- fix_data_dir.sh


def test_fix_data_dir_cleans_messy_dir(tmp_path, script_env):
    d = tmp_path / "messy"
    write(d / "wav.scp", "u3 /w/u3.wav\nu1 /w/u1.wav\nu2 sox /w/u2.flac -t wav - |\nu1 /w/dup.wav\n"
                         "u4 /w/u4.wav\nu6 /w/u6.wav\n")
    write(d / "text", "u1 hello world\nu2 foo\nu3\nu4 bar\nu5 baz\nu2 other\n")
    write(d / "utt2spk", "u2 s1\nu1 s1\nu3 s2\nu4 s2\nu5 s2\nu6 s3\n")
    write(d / "spk2gender", "s3 m\ns1 m\ns2 f\n")
    original = {p.name: p.read_text() for p in d.iterdir()}
    proc = run([UTILS / "fix_data_dir.sh", d], script_env)

    assert lines(d / "wav.scp") == ["u1 /w/u1.wav", "u2 sox /w/u2.flac -t wav - |", "u4 /w/u4.wav"]
    assert lines(d / "text") == ["u1 hello world", "u2 foo", "u4 bar"]
    assert lines(d / "utt2spk") == ["u1 s1", "u2 s1", "u4 s2"]
    assert lines(d / "spk2utt") == ["s1 u1 u2", "s2 u4"]
    assert lines(d / "spk2gender") == ["s1 m", "s2 f"]
    assert {p.name: p.read_text() for p in (d / ".backup").iterdir()} == original
    out = proc.stdout
    assert "kept 3 of 6 utterances" in out
    assert "empty transcript" in out and "u3" in out
    assert "duplicate" in out and "(u1)" in out and "(u2)" in out
    assert "(u5)" in out and "(u6)" in out

    # A clean dir stays as it is.
    before = {p.name: p.read_text() for p in d.iterdir() if p.is_file()}
    assert "kept all 3 utterances" in run([UTILS / "fix_data_dir.sh", d], script_env).stdout
    assert {p.name: p.read_text() for p in d.iterdir() if p.is_file()} == before


def test_fix_data_dir_segments_and_empty_result(tmp_path, script_env):
    d = tmp_path / "seg"
    write(d / "wav.scp", "r1 /w/r1.wav\nr2 /w/r2.wav\nr3 /w/r3.wav\n")
    write(d / "segments", "r1-b r1 1.5 3.0\nr1-a r1 0.0 1.5\nr2-a r2 0 2\nr4-a r4 0 1\nr1-c r1 2 1\n")
    write(d / "text", "r1-a x\nr1-b y\nr2-a z\nr4-a w\nr1-c q\n")
    write(d / "utt2spk", "r1-a r1\nr1-b r1\nr2-a r2\nr4-a r4\nr1-c r1\n")
    proc = run([UTILS / "fix_data_dir.sh", d], script_env)
    assert lines(d / "segments") == ["r1-a r1 0.0 1.5", "r1-b r1 1.5 3.0", "r2-a r2 0 2"]
    assert lines(d / "wav.scp") == ["r1 /w/r1.wav", "r2 /w/r2.wav"]
    assert "recording is not in wav.scp (r4-a)" in proc.stdout and "malformed" in proc.stdout

    e = tmp_path / "nothing"
    write(e / "wav.scp", "a /w/a.wav\n")
    write(e / "utt2spk", "b s\n")
    proc = run([UTILS / "fix_data_dir.sh", e], script_env, check=False)
    assert proc.returncode == 1 and "unchanged" in proc.stderr
    assert lines(e / "wav.scp") == ["a /w/a.wav"] and not (e / "spk2utt").exists()


# ---------------------------------------------------------------- subset / combine


def test_subset_data_dir_selections(tmp_path, script_env):
    src = make_data_dir(tmp_path / "src", {"a": 3, "b": 3, "c": 3})
    sub = UTILS / "subset_data_dir.sh"

    run([sub, "--first", "4", src, tmp_path / "first"], script_env)
    assert lines(tmp_path / "first/utt2spk") == ["a-1 a", "a-2 a", "a-3 a", "b-1 b"]
    assert lines(tmp_path / "first/spk2utt") == ["a a-1 a-2 a-3", "b b-1"]
    assert lines(tmp_path / "first/spk2gender") == ["a f", "b f"]
    assert lines(tmp_path / "first/wav.scp")[-1] == "b-1 /corpus/b-1.wav"

    write(tmp_path / "ids", "c-2\na-1 x\nnot-there\n")
    proc = run([sub, "--utt-list", tmp_path / "ids", src, tmp_path / "ul"], script_env)
    assert lines(tmp_path / "ul/text") == ["a-1 words of a-1", "c-2 words of c-2"]
    assert "1 of the 3 ids" in proc.stderr

    write(tmp_path / "spks", "b\n")
    run([sub, "--spk-list", tmp_path / "spks", src, tmp_path / "sl"], script_env)
    assert lines(tmp_path / "sl/spk2utt") == ["b b-1 b-2 b-3"]

    run([sub, "--shortest", "3", src, tmp_path / "short"], script_env)
    assert lines(tmp_path / "short/utt2dur") == ["a-1 1.5", "b-1 1.5", "c-1 1.5"]

    picks = []
    for seed, dest in [("5", "r1"), ("5", "r2")]:
        run([sub, "--seed", seed, src, "4", tmp_path / dest], script_env)
        picks.append(lines(tmp_path / dest / "utt2spk"))
    assert picks[0] == picks[1] and len(picks[0]) == 4 and picks[0] == sorted(picks[0])
    assert set(picks[0]) <= set(lines(src / "utt2spk"))

    proc = run([sub, "--first", "10", src, tmp_path / "big"], script_env, check=False)
    assert proc.returncode == 1 and "only 9" in proc.stderr
    proc = run([sub, "--first", "2", "--last", "2", src, tmp_path / "two"], script_env, check=False)
    assert proc.returncode == 1 and "exactly one" in proc.stderr


def test_subset_keeps_only_used_recordings(tmp_path, script_env):
    d = tmp_path / "seg"
    write(d / "wav.scp", "r1 /w/r1.wav\nr2 /w/r2.wav\n")
    write(d / "segments", "r1-a r1 0 1\nr1-b r1 1 2\nr2-a r2 0 2\n")
    write(d / "utt2spk", "r1-a r1\nr1-b r1\nr2-a r2\n")
    run([UTILS / "subset_data_dir.sh", "--first", "2", d, tmp_path / "sub"], script_env)
    assert lines(tmp_path / "sub/segments") == ["r1-a r1 0 1", "r1-b r1 1 2"]
    assert lines(tmp_path / "sub/wav.scp") == ["r1 /w/r1.wav"]


def test_combine_data(tmp_path, script_env):
    a = make_data_dir(tmp_path / "a", {"a": 2})
    b = make_data_dir(tmp_path / "b", {"b": 2})
    (b / "utt2dur").unlink()
    proc = run([UTILS / "combine_data.sh", tmp_path / "ab", b, a], script_env)
    ab = tmp_path / "ab"
    assert lines(ab / "utt2spk") == ["a-1 a", "a-2 a", "b-1 b", "b-2 b"]
    assert lines(ab / "spk2utt") == ["a a-1 a-2", "b b-1 b-2"]
    assert len(lines(ab / "wav.scp")) == 4 and len(lines(ab / "text")) == 4
    assert not (ab / "utt2dur").exists() and "utt2dur is missing" in proc.stderr

    proc = run([UTILS / "combine_data.sh", tmp_path / "dup", a, make_data_dir(tmp_path / "a2", {"a": 1})],
               script_env, check=False)
    assert proc.returncode == 1
    assert "'a-1'" in proc.stderr and "prefix" in proc.stderr
    assert not (tmp_path / "dup").exists()

    # A source with segments next to one without: the latter gets whole-recording segments.
    s = tmp_path / "s"
    write(s / "wav.scp", "r9 /w/r9.wav\n")
    write(s / "segments", "r9-x r9 0 1\nr9-y r9 1 2.5\n")
    write(s / "utt2spk", "r9-x z\nr9-y z\n")
    write(s / "text", "r9-x hi\nr9-y there\n")
    write(s / "utt2dur", "r9-x 1\nr9-y 1.5\n")
    run([UTILS / "combine_data.sh", tmp_path / "as", a, s], script_env)
    assert lines(tmp_path / "as/segments") == ["a-1 a-1 0 1.5", "a-2 a-2 0 2.5", "r9-x r9 0 1", "r9-y r9 1 2.5"]
    assert lines(tmp_path / "as/wav.scp") == ["a-1 /corpus/a-1.wav", "a-2 /corpus/a-2.wav", "r9 /w/r9.wav"]
