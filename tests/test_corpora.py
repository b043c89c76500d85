"""Data preparation of the real corpora in ../shared/data, through the recipes' local/data.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chunkssl.corpora import Utterance, write_data_dir
from chunkssl.corpora.fsdd import split_of
from chunkssl.fileio import DataError, read_kv
from conftest import make_recipe, shared_corpus


def test_fsdd_split_rule():
    assert split_of(0) == ["test"] and split_of(4) == ["test"]
    assert split_of(5) == ["dev"] and split_of(9, dev_in_train=True) == ["dev", "train"]
    assert split_of(10) == ["train"] and split_of(49) == ["train"]


def test_fsdd_data_sh_on_real_corpus(tmp_path, script_env):
    fsdd = shared_corpus("fsdd")
    recipe = make_recipe(tmp_path, "fsdd", "asr1")
    env = dict(script_env, FSDD=str(fsdd))
    subprocess.run(["bash", "local/data.sh"], cwd=recipe, env=env, check=True, capture_output=True)
    counts = {s: len(read_kv(recipe / "data" / s / "text")) for s in ("train", "dev", "test")}
    assert counts == {"train": 2400, "dev": 300, "test": 300}
    text = dict(read_kv(recipe / "data/test/text"))
    assert text["george_7_03"] == "SEVEN"
    wav = dict(read_kv(recipe / "data/test/wav.scp"))["george_7_03"]
    assert Path(wav) == (fsdd / "recordings/7_george_3.wav").resolve()
    spk = dict(read_kv(recipe / "data/train/utt2spk"))
    assert set(spk.values()) == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    subprocess.run(["bash", "utils/validate_data_dir.sh", "--no-audio", "data/train"], cwd=recipe, env=env,
                   check=True, capture_output=True)


def test_an4_data_sh_on_mini_an4(tmp_path, script_env):
    an4 = shared_corpus("mini_an4")
    recipe = make_recipe(tmp_path, "an4", "asr1")
    env = dict(script_env, AN4=str(an4))
    subprocess.run(["bash", "local/data.sh"], cwd=recipe, env=env, check=True, capture_output=True)
    train = dict(read_kv(recipe / "data/train/text"))
    test = dict(read_kv(recipe / "data/test/text"))
    assert len(train) == 5 and len(test) == 2
    assert train["fash-an251-b"] == "YES"
    assert train["fbbh-cen8-b"] == "MARCH THIRD NINETEEN TWENTY EIGHT"
    assert test == {"fcaw-cen8-b": "ELEVEN TWENTY SEVEN FIFTY SEVEN",
                    "mmxg-cen8-b": "OCTOBER TWENTY FOUR NINETEEN SEVENTY"}
    wav = dict(read_kv(recipe / "data/test/wav.scp"))["mmxg-cen8-b"]
    assert wav.endswith("an4/wav/an4test_clstk/mmxg/cen8-mmxg-b.sph") and Path(wav).is_file()
    # Rerunning is a no-op on the unpacked archive and gives the same data dir.
    before = (recipe / "data/train/wav.scp").read_text()
    subprocess.run(["bash", "local/data.sh"], cwd=recipe, env=env, check=True, capture_output=True)
    assert (recipe / "data/train/wav.scp").read_text() == before


def test_write_data_dir_sorts_and_rejects_duplicates(tmp_path):
    utts = [Utterance("b_2", "b", "/x/2.wav", "TWO"), Utterance("a_1", "a", "/x/1.wav", "ONE")]
    assert write_data_dir(tmp_path / "d", utts) == 2
    assert (tmp_path / "d/text").read_text() == "a_1 ONE\nb_2 TWO\n"
    assert (tmp_path / "d/spk2utt").read_text() == "a a_1\nb b_2\n"
    with pytest.raises(DataError, match="duplicate utterance id 'a_1'"):
        write_data_dir(tmp_path / "e", utts + [Utterance("a_1", "a", "/x/3.wav", "THREE")])
    with pytest.raises(DataError, match="must start with its speaker"):
        write_data_dir(tmp_path / "f", [Utterance("x_1", "a", "/x/1.wav", "ONE")])


def test_an4_recipe_data_and_feature_stages(tmp_path, script_env, monkeypatch):
    """run.sh stages 1-2 on mini_an4: data dirs, validation, fbank; a rerun of stage 2 is a no-op."""
    an4 = shared_corpus("mini_an4")
    recipe = make_recipe(tmp_path, "an4", "asr1")
    env = dict(script_env, AN4=str(an4))
    r = subprocess.run(["bash", "run.sh", "--nj", "1", "--stop-stage", "2"], cwd=recipe, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    import kaldiio

    monkeypatch.chdir(recipe)  # scp paths are relative to the recipe folder, as in Kaldi
    feats = dict(kaldiio.load_scp("dump/fbank/train/feats.scp"))
    assert len(feats) == 5 and all(m.shape[1] == 80 for m in feats.values())
    frames = dict(read_kv(recipe / "dump/fbank/train/utt2num_frames"))
    assert {k: int(v) for k, v in frames.items()} == {k: m.shape[0] for k, m in feats.items()}
    r = subprocess.run(["bash", "run.sh", "--stage", "2", "--stop-stage", "2", "--nj", "1"], cwd=recipe, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "nothing to do" in r.stderr + r.stdout
    r = subprocess.run(["bash", "run.sh", "--stgae", "2"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "--stgae" in r.stderr
