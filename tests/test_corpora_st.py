"""Speech-translation data prep: Libri-Trans on the real sample, MuST-C on a fixture in its exact layout.

The MuST-C fixture concatenates real Libri-Trans utterances into "talk" wavs and writes the yaml
offsets/durations of each, so cutting the talks by the prepared segments must give back the
original samples. MuST-C times have millisecond precision, so the utterances used are cut to whole
milliseconds first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chunkssl.corpora import libritrans, must_c
from chunkssl.datadir import load_data_dir
from chunkssl.fileio import DataError, read_kv
from conftest import make_recipe, shared_corpus

RATE = 16000
MS = RATE // 1000




def _sh(recipe: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=recipe, env=env, capture_output=True, text=True)


def _raw_libritrans() -> list[dict]:
    """The shared sample's rows, read independently of the module under test."""
    src = shared_corpus("libritrans")
    meta = [line.split("\t") for line in (src / "alignments.meta").read_text().splitlines()[1:]]
    en = (src / "data.en").read_text().splitlines()
    fr = (src / "data.fr").read_text().splitlines()
    return [{"reader": m[2], "name": m[4], "dur": float(m[5]), "en": e, "fr": f} for m, e, f in zip(meta, en, fr)]


# ------------------------------------------------------------------------------------------ Libri-Trans

def test_split_readers_hand_examples():
    counts = {"a": 1, "b": 2, "c": 3, "d": 10}  # 16 utterances
    assert libritrans.split_readers(counts, 0.1) == ({"a", "b"}, set())  # 1 < 1.6, then 3 >= 1.6
    assert libritrans.split_readers(counts, 0.1, 0.1) == ({"a", "b"}, {"c"})
    assert libritrans.split_readers({"7": 2, "10": 2, "9": 5}, 0.2) == ({"7"}, set())  # ties: lower reader id
    with pytest.raises(DataError, match="leave no reader for train"):
        libritrans.split_readers(counts, 0.1, 0.2)


def test_libritrans_data_sh_on_real_corpus(tmp_path, script_env):
    src = shared_corpus("libritrans")
    rows = _raw_libritrans()
    recipe = make_recipe(tmp_path, "libritrans", "st1")
    r = _sh(recipe, dict(script_env, LIBRITRANS=str(src)), "local/data.sh")
    assert r.returncode == 0, r.stderr
    by_id = {f"{row['reader']}-{row['name']}": row for row in rows}
    sets = {s: dict(read_kv(recipe / f"data/{s}/text")) for s in ("train", "test")}
    assert not (recipe / "data/dev").exists()
    assert len(sets["test"]) == 51
    long_train = [row for row in rows if row["dur"] > 20]
    assert len(long_train) == 12 and len(sets["train"]) == 449 - 12
    spk = {s: set(dict(read_kv(recipe / f"data/{s}/utt2spk")).values()) for s in sets}
    assert spk["test"] == {"65", "2929", "7315", "90", "7246", "1034", "52", "6882", "7348"}
    assert not spk["test"] & spk["train"]
    for s, text in sets.items():
        fr = dict(read_kv(recipe / f"data/{s}/text.fr"))
        en = dict(read_kv(recipe / f"data/{s}/text.en"))
        assert set(fr) == set(en) == set(text)
        for utt in text:
            assert text[utt] == en[utt] == by_id[utt]["en"]
            assert fr[utt] == by_id[utt]["fr"]
            assert s == "test" or by_id[utt]["dur"] <= 20
    wav = dict(read_kv(recipe / "data/test/wav.scp"))["65-1184-121089-0038"]
    assert Path(wav) == (src / "audio_files/1184-121089-0038.flac").resolve()
    # everything kept, with a dev set: all 500 utterances, three disjoint speaker sets
    counts = libritrans.prepare(src, tmp_path / "all", test_frac=0.1, dev_frac=0.1, max_dur=0)
    assert counts["test"] == 51 and sum(counts.values()) == 500
    spk = {s: set(dict(read_kv(tmp_path / "all" / s / "utt2spk")).values()) for s in counts}
    assert not (spk["dev"] & spk["train"]) and not (spk["dev"] & spk["test"])


def _mini_libritrans(tmp_path: Path, n: int = 3) -> Path:
    """The first n rows of the shared sample, with its audio folder linked."""
    src = shared_corpus("libritrans")
    dst = tmp_path / "lt"
    dst.mkdir()
    (dst / "audio_files").symlink_to(src / "audio_files")
    for name, keep in (("alignments.meta", n + 1), ("data.en", n), ("data.fr", n)):
        (dst / name).write_text("\n".join((src / name).read_text().splitlines()[:keep]) + "\n")
    return dst


def test_libritrans_bad_input_names_the_file(tmp_path):
    src = _mini_libritrans(tmp_path)
    fr = src / "data.fr"
    fr.write_text("\n".join(fr.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(DataError, match=r"alignments.meta has 3 rows but .*data.en has 3 lines and .*data.fr 2"):
        libritrans.read_corpus(src)
    fr.write_text("un\n\ntrois\n")
    with pytest.raises(DataError, match=r"data.fr:2: empty line"):
        libritrans.read_corpus(src)
    fr.write_text("un\ndeux\ntrois\n")
    meta = src / "alignments.meta"
    meta.write_text(meta.read_text().replace("1184-86708-0031", "1184-86708-9999"))
    with pytest.raises(DataError, match=r"alignments.meta:3: audio .*1184-86708-9999.flac"):
        libritrans.read_corpus(src)


# ----------------------------------------------------------------------------------------------- MuST-C

TALKS = {  # split -> talk -> (speaker id, Libri-Trans utterances spoken in it, in order)
    "train": {"ted_1": ("spk.1", ["1184-86814-0018", "1184-86815-0036", "1184-86814-0048"]),
              "ted_10": ("spk.10", ["1184-86777-0052", "1184-121089-0049"])},
    "tst-COMMON": {"ted_767": ("spk.767", ["1184-86809-0060", "1184-86815-0110"])},
}


def _build_must_c(root: Path, tgt: str = "fr") -> dict:
    """en-<tgt>/data/<split>/{wav,txt} with talks made of real utterances; returns the expected segments."""
    rows = {row["name"]: row for row in _raw_libritrans()}
    audio = shared_corpus("libritrans") / "audio_files"
    expected = {}
    for split, talks in TALKS.items():
        base = root / f"en-{tgt}" / "data" / split
        (base / "wav").mkdir(parents=True)
        (base / "txt").mkdir()
        yaml_lines, en_lines, tgt_lines = [], [], []
        for talk, (speaker, names) in talks.items():
            pieces, pos = [], 300 * MS  # the talk opens with 0.3 s of silence
            pieces.append(np.zeros(pos, dtype=np.int16))
            for name in names:
                utt = sf.read(audio / f"{name}.flac", dtype="int16")[0]
                utt = utt[:len(utt) // MS * MS]  # whole milliseconds, as MuST-C times are
                row = rows[name]
                yaml_lines.append(f"- {{duration: {len(utt) / RATE:.6f}, offset: {pos / RATE:.6f}, "
                                  f"rW: {len(row['en'].split())}, uW: 0, speaker_id: {speaker}, wav: {talk}.wav}}")
                en_lines.append(row["en"])
                tgt_lines.append(row["fr"])
                start_ms, end_ms = pos // MS, (pos + len(utt)) // MS
                expected[f"{speaker}-{talk}-{start_ms:07d}-{end_ms:07d}"] = (split, talk, pos, utt, row)
                pieces += [utt, np.zeros(500 * MS, dtype=np.int16)]
                pos += len(utt) + 500 * MS
            sf.write(base / "wav" / f"{talk}.wav", np.concatenate(pieces), RATE, subtype="PCM_16")
        (base / "txt" / f"{split}.yaml").write_text("\n".join(yaml_lines) + "\n")
        (base / "txt" / f"{split}.en").write_text("\n".join(en_lines) + "\n")
        (base / "txt" / f"{split}.{tgt}").write_text("\n".join(tgt_lines) + "\n")
    return expected


def test_must_c_data_sh_cuts_talks_back_into_utterances(tmp_path, script_env):
    corpus = tmp_path / "mustc"
    expected = _build_must_c(corpus)
    # the yaml offsets/durations themselves cut the talks into the original samples
    for split in TALKS:
        txt = corpus / f"en-fr/data/{split}/txt"
        for seg, (_, _, _, utt, _) in zip(must_c.read_segments(txt / f"{split}.yaml"),
                                          [v for v in expected.values() if v[0] == split]):
            got = sf.read(corpus / f"en-fr/data/{split}/wav" / seg["wav"], dtype="int16",
                          start=round(seg["offset"] * RATE), frames=round(seg["duration"] * RATE))[0]
            np.testing.assert_array_equal(got, utt)
    recipe = make_recipe(tmp_path, "must_c", "st1")
    env = dict(script_env, MUST_C=str(corpus))
    r = _sh(recipe, env, "local/data.sh", "--tgt", "fr", "--splits", "train tst-COMMON")
    assert r.returncode == 0, r.stderr
    assert "present" in r.stdout
    for split, name in (("train", "train_en_fr"), ("tst-COMMON", "tst_COMMON_en_fr")):
        d = recipe / "data" / name
        mine = {u: v for u, v in expected.items() if v[0] == split}
        segments = read_kv(d / "segments")
        assert [u for u, _ in segments] == sorted(mine)
        text, en, fr = (dict(read_kv(d / f)) for f in ("text", "text.en", "text.fr"))
        assert text == en == {u: v[4]["en"] for u, v in mine.items()}
        assert fr == {u: v[4]["fr"] for u, v in mine.items()}
        assert dict(read_kv(d / "wav.scp")) == {
            t: str((corpus / f"en-fr/data/{split}/wav/{t}.wav").resolve()) for t in TALKS[split]}
        utt2spk = read_kv(d / "utt2spk")
        assert [s for _, s in utt2spk] == sorted(s for _, s in utt2spk)  # Kaldi: ids sort like their speakers
        data = load_data_dir(d)
        for utt, (_, talk, pos, samples, _) in mine.items():
            assert data.segments[utt].recording == talk and data.segments[utt].start == pos / RATE
            np.testing.assert_array_equal(data.load_audio(utt), samples.astype(np.float32) / 32768)
    train_ids = [u for u, _ in read_kv(recipe / "data/train_en_fr/utt2spk")]
    assert [u.split("-")[0] for u in train_ids] == ["spk.1"] * 3 + ["spk.10"] * 2


def test_must_c_bad_input_names_the_file(tmp_path, script_env):
    corpus = tmp_path / "mustc"
    _build_must_c(corpus)
    recipe = make_recipe(tmp_path, "must_c", "st1")
    r = _sh(recipe, dict(script_env, MUST_C=str(corpus)), "local/data.sh")  # default --tgt de
    assert r.returncode != 0 and "MuST-C en-de not found" in r.stderr and "ict.fbk.eu" in r.stderr
    with pytest.raises(DataError, match="no en-de/data folder"):
        must_c.prepare(corpus, tmp_path / "data", "de")
    txt = corpus / "en-fr/data/tst-COMMON/txt"
    (txt / "tst-COMMON.fr").write_text("seulement une ligne\n")
    with pytest.raises(DataError, match=r"tst-COMMON.yaml lists 2 segments but .*tst-COMMON.en has 2 lines and "
                                        r".*tst-COMMON.fr 1"):
        must_c.prepare(corpus, tmp_path / "data", "fr", ["tst-COMMON"])
    (txt / "tst-COMMON.fr").write_text("une\ndeux\n")
    (corpus / "en-fr/data/tst-COMMON/wav/ted_767.wav").unlink()
    with pytest.raises(DataError, match=r"tst-COMMON.yaml refers to .*ted_767.wav, which is missing"):
        must_c.prepare(corpus, tmp_path / "data", "fr", ["tst-COMMON"])
    (txt / "tst-COMMON.yaml").write_text("- {duration: 1.0, offset: 0.5, wav: ted_767.wav}\n")
    with pytest.raises(DataError, match=r"tst-COMMON.yaml: segment 1 .* lacks one of"):
        must_c.read_segments(txt / "tst-COMMON.yaml")
