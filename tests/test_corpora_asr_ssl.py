"""Data prep of yesno, LibriSpeech (+ Libri-light fine-tuning sets) and Libri-light unlabelled audio.

LibriSpeech and Libri-light fixtures are built in tmp_path in their official layouts from real
utterances of ../shared/data/libritrans (which are LibriSpeech recordings), then prepared through the
recipes' local/data.sh, with fake wget/curl on PATH so that any download attempt is recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chunkssl.corpora import librilight, librispeech, yesno
from chunkssl.datadir import load_data_dir
from chunkssl.fileio import DataError, read_kv
from conftest import make_recipe, shared_corpus

RATE = 16000




def _fake_downloaders(tmp_path: Path, env: dict) -> tuple[dict, Path]:
    """Env whose wget/curl only log their arguments and fail, and the log path."""
    bin_dir, log = tmp_path / "fakebin", tmp_path / "download.log"
    bin_dir.mkdir()
    for tool in ("wget", "curl"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexit 1\n')
        (bin_dir / tool).chmod(0o755)
    return dict(env, PATH=f"{bin_dir}:{env['PATH']}"), log


def _serving_downloader(tmp_path: Path, env: dict, served: Path) -> tuple[dict, Path]:
    """Env whose wget hands out files of ``served`` by URL basename (and logs the URL), as if online."""
    bin_dir, log = tmp_path / "servebin", tmp_path / "serve.log"
    bin_dir.mkdir()
    (bin_dir / "wget").write_text(f'''#!/bin/sh
echo "wget $*" >> "{log}"
while [ $# -gt 1 ]; do [ "$1" = "-O" ] && out=$2; shift; done
cp "{served}/$(basename "$1")" "$out"
''')
    (bin_dir / "wget").chmod(0o755)
    return dict(env, PATH=f"{bin_dir}:{env['PATH']}"), log


def _sh(recipe: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=recipe, env=env, capture_output=True, text=True)


def _libritrans_rows() -> dict[str, tuple[str, str, str]]:
    """{audio_filename: (reader, chapter, English text)} of the shared Libri-Trans sample."""
    src = shared_corpus("libritrans")
    meta = (src / "alignments.meta").read_text().splitlines()[1:]
    english = (src / "data.en").read_text().splitlines()
    return {f[4]: (f[2], f[1], text) for f, text in zip((m.split("\t") for m in meta), english)}


# ----------------------------------------------------------------------------------------------- yesno

def test_yesno_transcript_from_file_name():
    assert yesno.transcript("0_1_1_0_0_1_1_1") == "NO YES YES NO NO YES YES YES"
    for bad in ("0_1_1", "0_1_1_0_0_1_1_2", "a_b_c_d_e_f_g_h"):
        with pytest.raises(ValueError):
            yesno.transcript(bad)


def test_yesno_data_sh_on_real_corpus(tmp_path, script_env):
    src = shared_corpus("yesno")
    recipe = make_recipe(tmp_path, "yesno", "asr1")
    env = dict(script_env, YESNO=str(src))
    r = _sh(recipe, env, "local/data.sh")
    assert r.returncode == 0, r.stderr
    train, test = (dict(read_kv(recipe / f"data/{s}/text")) for s in ("train", "test"))
    assert (len(train), len(test)) == (29, 31)
    assert all(u.startswith("yesno_0_") for u in test) and not any(u.startswith("yesno_0_") for u in train)
    assert test["yesno_0_0_1_0_1_0_0_1"] == "NO NO YES NO YES NO NO YES"
    assert train["yesno_1_0_1_1_1_0_1_0"] == "YES NO YES YES YES NO YES NO"
    wav = dict(read_kv(recipe / "data/train/wav.scp"))["yesno_1_0_1_1_1_0_1_0"]
    assert Path(wav) == (src / "waves_yesno/1_0_1_1_1_0_1_0.wav").resolve()
    r = _sh(recipe, env, "local/data.sh", "--num-dev", "4")
    assert r.returncode == 0, r.stderr
    dev = dict(read_kv(recipe / "data/dev/text"))
    train2 = dict(read_kv(recipe / "data/train/text"))
    assert len(dev) == 4 and len(train2) == 25 and not set(dev) & set(train2) and set(dev) | set(train2) == set(train)


def test_yesno_download_skips_present_corpus(tmp_path, script_env):
    src = shared_corpus("yesno")
    recipe = make_recipe(tmp_path, "yesno", "asr1")
    env, log = _fake_downloaders(tmp_path, script_env)
    r = _sh(recipe, env, "local/download.sh", str(src))
    assert r.returncode == 0 and "already present; skipping" in r.stdout and not log.exists()
    r = _sh(recipe, env, "local/download.sh", str(tmp_path / "dl"))
    assert r.returncode != 0 and not (tmp_path / "dl" / "waves_yesno").exists()
    assert log.read_text().split()[-1] == "https://www.openslr.org/resources/1/waves_yesno.tar.gz"


def test_yesno_rejects_bad_file_name(tmp_path):
    waves = tmp_path / "waves_yesno"
    waves.mkdir()
    (waves / "0_1_1_0_0_1_1_1.wav").write_bytes(b"")
    (waves / "1_1_0.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"1_1_0\.wav"):
        yesno.prepare(tmp_path, tmp_path / "data")


# ----------------------------------------------------------------------------------------- LibriSpeech

LS_LAYOUT = {  # folder -> Libri-Trans audio files placed in it as <reader>/<chapter>/<reader>-<chapter>-<utt>.flac
    "LibriSpeech/train-clean-100": ["1184-86814-0018", "1184-86814-0048", "1184-86815-0036", "1184-86815-0110",
                                    "1184-121119-0064", "1184-121119-0066"],
    "LibriSpeech/dev-clean": ["1184-86777-0041", "1184-86777-0052", "1184-86777-0080"],
    "librispeech_finetuning/1h/0/clean": ["1184-86814-0079"],
    "librispeech_finetuning/1h/0/other": ["1184-121089-0049"],
    "librispeech_finetuning/1h/1/other": ["1184-86809-0060"],
    "librispeech_finetuning/9h/clean": ["1184-86815-0078"],
    "librispeech_finetuning/9h/other": ["1184-86809-0053"],
}


def _ls_id(name: str, rows: dict) -> str:
    reader, chapter, _ = rows[name]
    return f"{reader}-{chapter}-{name.rsplit('-', 1)[1]}"


def _build_librispeech(root: Path) -> dict:
    """The LS_LAYOUT fixture under root; fine-tuning chapters also list an utterance left out, as they do."""
    rows = _libritrans_rows()
    audio = shared_corpus("libritrans") / "audio_files"
    for folder, names in LS_LAYOUT.items():
        for name in names:
            reader, chapter, text = rows[name]
            chapter_dir = root / folder / reader / chapter
            chapter_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(audio / f"{name}.flac", chapter_dir / f"{_ls_id(name, rows)}.flac")
            with open(chapter_dir / f"{reader}-{chapter}.trans.txt", "a") as f:
                f.write(f"{_ls_id(name, rows)} {text}\n")
                if folder.startswith("librispeech_finetuning"):
                    f.write(f"{reader}-{chapter}-9999 A LINE WHOSE AUDIO IS NOT IN THIS FOLD\n")
    return rows


def test_librispeech_data_sh_official_and_finetuning_layouts(tmp_path, script_env):
    corpus = tmp_path / "corpus"
    rows = _build_librispeech(corpus)
    recipe = make_recipe(tmp_path, "librispeech", "asr1")
    env, log = _fake_downloaders(tmp_path, dict(script_env, LIBRISPEECH=str(corpus)))
    r = _sh(recipe, env, "local/data.sh", "--subsets", "train-clean-100 dev-clean train-10min train-1h train-10h",
            "--combine", "train_all=train-clean-100,dev-clean")
    assert r.returncode == 0, r.stderr
    assert not log.exists(), "present subsets must not be downloaded"
    assert "skipping" in r.stdout

    def texts(name: str) -> dict:
        return dict(read_kv(recipe / "data" / name / "text"))

    expected = {
        "train_clean_100": LS_LAYOUT["LibriSpeech/train-clean-100"],
        "dev_clean": LS_LAYOUT["LibriSpeech/dev-clean"],
        "train_10min": [n for k in ("1h/0/clean", "1h/0/other") for n in LS_LAYOUT[f"librispeech_finetuning/{k}"]],
        "train_1h": [n for k, v in LS_LAYOUT.items() if "/1h/" in k for n in v],
        "train_10h": [n for k, v in LS_LAYOUT.items() if k.startswith("librispeech_finetuning") for n in v],
    }
    for set_name, names in expected.items():
        assert texts(set_name) == {_ls_id(n, rows): rows[n][2] for n in names}, set_name
    assert len(texts("train_10h")) == 5 and len(texts("train_1h")) == 3 and len(texts("train_10min")) == 2
    assert len(texts("train_all")) == 9
    utt2spk = dict(read_kv(recipe / "data/train_clean_100/utt2spk"))
    assert utt2spk == {u: u.split("-")[0] for u in texts("train_clean_100")}
    assert [spk for spk, _ in read_kv(recipe / "data/train_clean_100/spk2utt")] == ["1034", "7302"]
    wav = dict(read_kv(recipe / "data/dev_clean/wav.scp"))["2929-86777-0052"]
    assert Path(wav) == (corpus / "LibriSpeech/dev-clean/2929/86777/2929-86777-0052.flac").resolve()
    r = _sh(recipe, env, "utils/validate_data_dir.sh", "data/train_10h")
    assert r.returncode == 0, r.stdout + r.stderr


def test_librispeech_ssl1_data_sh_merges_training_subsets(tmp_path, script_env):
    corpus = tmp_path / "corpus"
    rows = _build_librispeech(corpus)
    recipe = make_recipe(tmp_path, "librispeech", "ssl1")
    env, log = _fake_downloaders(tmp_path, dict(script_env, LIBRISPEECH=str(corpus)))
    r = _sh(recipe, env, "local/data.sh", "--subsets", "train-clean-100 dev-clean",
            "--combine", "train_both=train-clean-100,dev-clean")
    assert r.returncode == 0, r.stderr
    assert not log.exists()
    names = LS_LAYOUT["LibriSpeech/train-clean-100"] + LS_LAYOUT["LibriSpeech/dev-clean"]
    assert dict(read_kv(recipe / "data/train_both/text")) == {_ls_id(n, rows): rows[n][2] for n in names}
    r = _sh(recipe, env, "local/data.sh", "--subsets", "train-clean-100", "--combine", "oops")
    assert r.returncode != 0 and "NAME=SUBSET1,SUBSET2" in r.stderr


def test_librispeech_download_uses_official_urls_for_missing_parts(tmp_path, script_env):
    recipe = make_recipe(tmp_path, "librispeech", "asr1")
    env, log = _fake_downloaders(tmp_path, script_env)
    (tmp_path / "dl" / "LibriSpeech" / "dev-clean").mkdir(parents=True)
    r = _sh(recipe, env, "local/download.sh", "--subsets", "dev-clean test-other", str(tmp_path / "dl"))
    assert r.returncode != 0  # the fake wget fails, and so must the script
    assert "dev-clean present; skipping" in r.stdout
    assert log.read_text().split()[-1] == "https://www.openslr.org/resources/12/test-other.tar.gz"
    log.unlink()
    r = _sh(recipe, env, "local/download.sh", "--subsets", "train-10h", str(tmp_path / "dl"))
    assert r.returncode != 0
    assert log.read_text().split()[-1] == "https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz"
    assert not (tmp_path / "dl" / "librispeech_finetuning").exists()  # a failed fetch leaves no fake corpus


def test_librispeech_download_unpacks_then_skips(tmp_path, script_env):
    fixture = tmp_path / "fixture"
    _build_librispeech(fixture)
    (fixture / "LibriSpeech/README.TXT").write_text("LibriSpeech ASR corpus\n")
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "dev-clean.tar.gz", "w:gz") as tar:  # as openslr ships it
        tar.add(fixture / "LibriSpeech/README.TXT", "LibriSpeech/README.TXT")
        tar.add(fixture / "LibriSpeech/dev-clean", "LibriSpeech/dev-clean")
    recipe = make_recipe(tmp_path, "librispeech", "asr1")
    env, log = _serving_downloader(tmp_path, dict(script_env, LIBRISPEECH=str(tmp_path / "dl")), served)
    r = _sh(recipe, env, "local/data.sh", "--subsets", "dev-clean")
    assert r.returncode == 0, r.stderr
    assert log.read_text().split()[-1] == "https://www.openslr.org/resources/12/dev-clean.tar.gz"
    assert (tmp_path / "dl/LibriSpeech/README.TXT").is_file()
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["LibriSpeech"]  # archive and temp gone
    assert len(read_kv(recipe / "data/dev_clean/text")) == 3
    log.unlink()
    r = _sh(recipe, env, "local/data.sh", "--subsets", "dev-clean")
    assert r.returncode == 0 and "present; skipping" in r.stdout and not log.exists()


def test_librispeech_bad_input_names_the_file(tmp_path):
    rows = _build_librispeech(tmp_path)
    chapter = tmp_path / "LibriSpeech/dev-clean/2929/86777"
    trans = chapter / "2929-86777.trans.txt"
    lines = trans.read_text().splitlines()
    trans.write_text("\n".join(line for line in lines if not line.startswith("2929-86777-0052")) + "\n")
    with pytest.raises(DataError, match=r"2929-86777-0052\.flac has no line in .*2929-86777\.trans\.txt"):
        librispeech.prepare(tmp_path, tmp_path / "data", ["dev-clean"])
    trans.unlink()
    with pytest.raises(DataError, match=r"no transcript file .*2929-86777\.trans\.txt"):
        librispeech.prepare(tmp_path, tmp_path / "data", ["dev-clean"])
    with pytest.raises(DataError, match="test-other not found"):
        librispeech.prepare(tmp_path, tmp_path / "data", ["test-other"])
    shutil.rmtree(tmp_path / "librispeech_finetuning/9h")
    with pytest.raises(DataError, match="train-10h needs .*9h"):
        librispeech.prepare(tmp_path, tmp_path / "data", ["train-10h"])
    assert rows  # the fixture was built from the real corpus


# ------------------------------------------------------------------------------------------ Libri-light

def test_merge_vad_hand_examples():
    # merged while the segment (gaps included) stays within 5 s
    assert librilight.merge_vad([(0.5, 2), (2.5, 4), (6, 9), (9.5, 10)], 5) == [(0.5, 4), (6, 10)]
    assert librilight.merge_vad([(3, 5), (0, 2)], 5) == [(0, 5)]  # unsorted input; exactly 5 s still fits
    # a 12 s span becomes three 4 s pieces (not 5 + 5 + 2)
    assert librilight.merge_vad([(0, 12)], 5) == [(0, 4), (4, 8), (8, 12)]
    # clipped to the audio length, short ones dropped
    assert librilight.merge_vad([(1, 3), (4, 8)], 10, total=6) == [(1, 6)]
    assert librilight.merge_vad([(0, 0.3), (5, 5.2), (7, 8)], 1, min_sec=0.5) == [(7, 8)]
    assert librilight.merge_vad([(7, 9)], 5, total=6) == []


def _recording(rows: dict, names: list[str], layout: list[tuple[float, float]], total: float) -> np.ndarray:
    """Silence of ``total`` s with the start of each named utterance placed at each (start, end) span."""
    audio = shared_corpus("libritrans") / "audio_files"
    wave = np.zeros(int(total * RATE), dtype=np.float32)
    for name, (start, end) in zip(names, layout):
        utt, rate = sf.read(audio / f"{name}.flac", dtype="float32")
        n = int(round((end - start) * RATE))
        assert rate == RATE and len(utt) >= n
        wave[int(round(start * RATE)):int(round(start * RATE)) + n] = utt[:n]
    return wave


def _write_librilight_file(flac: Path, wave: np.ndarray, speaker: str, spans: list) -> None:
    flac.parent.mkdir(parents=True, exist_ok=True)
    sf.write(flac, wave, RATE, subtype="PCM_16")
    meta = {"speaker": speaker, "snr": 12.3, "voice_activity": [list(s) for s in spans],
            "book_meta": {"id": "1184", "title": "The Count of Monte Cristo", "genre": ["Fiction"],
                          "Dramatic Readings": False, "meta_genre": "Literature"}}
    flac.with_suffix(".json").write_text(json.dumps(meta, indent=1))


def _build_librilight(root: Path) -> dict[str, np.ndarray]:
    """small/ with two recordings; returns their waveforms (as written, 16-bit) by recording id."""
    rows = _libritrans_rows()
    # 7302: four 2 s utterances separated by 1 s, plus a VAD span running past the end of the audio
    spans_a = [(1, 3), (4, 6), (7, 9), (10, 12)]
    wave_a = _recording(rows, ["1184-86814-0025", "1184-86814-0079", "1184-86815-0043", "1184-86814-0086"],
                        spans_a, 13.0)
    flac_a = root / "small/7302/count_monte_cristo_1184_librivox/monte_cristo_001_dumas_64kb.flac"
    _write_librilight_file(flac_a, wave_a, "7302", spans_a + [(12.5, 14.0)])
    # 65: one 9 s stretch of speech (two utterances back to back) in a 10 s file
    wave_b = _recording(rows, ["1184-86777-0041", "1184-121085-0003"], [(0.5, 2.5), (2.5, 9.5)], 10.0)
    flac_b = root / "small/65/count_monte_cristo_1184_librivox/monte_cristo_002_dumas_64kb.flac"
    _write_librilight_file(flac_b, wave_b, "65", [(0.5, 9.5)])
    return {"65-count_monte_cristo_1184_librivox-monte_cristo_002_dumas_64kb": sf.read(flac_b, dtype="float32")[0],
            "7302-count_monte_cristo_1184_librivox-monte_cristo_001_dumas_64kb": sf.read(flac_a, dtype="float32")[0]}


def test_librilight_data_sh_cuts_vad_segments(tmp_path, script_env):
    corpus = tmp_path / "corpus"
    waves = _build_librilight(corpus)
    rec_b, rec_a = sorted(waves)
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    env, log = _fake_downloaders(tmp_path, dict(script_env, LIBRILIGHT=str(corpus)))
    r = _sh(recipe, env, "local/data.sh", "--max-seg-sec", "5", "--dev-recordings", "1")
    assert r.returncode == 0, r.stderr
    assert not log.exists(), "a present subset must not be downloaded"
    # 65 (sorted first) trains: its 9 s span is split in two 4.5 s halves
    assert read_kv(recipe / "data/small/segments") == [
        (f"{rec_b}-00000500-00005000", f"{rec_b} 0.500 5.000"),
        (f"{rec_b}-00005000-00009500", f"{rec_b} 5.000 9.500")]
    # 7302 is held out: (1,3)+(4,6) fit in 5 s, (7,9)+(10,12) too; the clipped 0.5 s tail is dropped
    assert read_kv(recipe / "data/small_dev/segments") == [
        (f"{rec_a}-00001000-00006000", f"{rec_a} 1.000 6.000"),
        (f"{rec_a}-00007000-00012000", f"{rec_a} 7.000 12.000")]
    for name, rec, spk in (("small", rec_b, "65"), ("small_dev", rec_a, "7302")):
        d = recipe / "data" / name
        assert not (d / "text").exists()
        assert dict(read_kv(d / "wav.scp")) == {rec: str(next(corpus.rglob(f"{rec.split('-')[-1]}.flac")).resolve())}
        assert set(dict(read_kv(d / "utt2spk")).values()) == {spk}
        r = _sh(recipe, env, "utils/validate_data_dir.sh", "--no-text", f"data/{name}")
        assert r.returncode == 0, r.stdout + r.stderr
    data = load_data_dir(recipe / "data/small_dev")
    np.testing.assert_array_equal(data.load_audio(data.utt_ids[1]), waves[rec_a][7 * RATE:12 * RATE])


def test_librilight_download_unpacks_then_skips(tmp_path, script_env):
    fixture = tmp_path / "fixture"
    _build_librilight(fixture)
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "small.tar", "w") as tar:
        tar.add(fixture / "small", "small")
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    env, log = _serving_downloader(tmp_path, dict(script_env, LIBRILIGHT=str(tmp_path / "dl")), served)
    r = _sh(recipe, env, "local/data.sh")
    assert r.returncode == 0, r.stderr
    assert log.read_text().split()[-1] == "https://dl.fbaipublicfiles.com/librilight/data/small.tar"
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["small"]
    # default --max-seg-sec 15: each recording's spans fit in one segment, 7302's up to the clipped end of its audio
    assert [v.split()[1:] for _, v in read_kv(recipe / "data/small/segments")] == [["0.500", "9.500"],
                                                                                   ["1.000", "13.000"]]
    log.unlink()
    r = _sh(recipe, env, "local/data.sh")
    assert r.returncode == 0 and "present; skipping" in r.stdout and not log.exists()


def test_librilight_download_and_bad_input(tmp_path, script_env):
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    env, log = _fake_downloaders(tmp_path, script_env)
    r = _sh(recipe, env, "local/download.sh", "--subsets", "medium", str(tmp_path / "dl"))
    assert r.returncode != 0
    assert log.read_text().split()[-1] == "https://dl.fbaipublicfiles.com/librilight/data/medium.tar"
    assert not (tmp_path / "dl" / "medium").exists()

    corpus = tmp_path / "corpus"
    _build_librilight(corpus)
    meta = next(corpus.rglob("monte_cristo_002_dumas_64kb.json"))
    meta.write_text(json.dumps({"speaker": "65", "snr": 3.0}))
    with pytest.raises(DataError, match=r"monte_cristo_002_dumas_64kb\.json has no 'voice_activity'"):
        librilight.prepare(corpus, tmp_path / "data", ["small"])
    meta.unlink()
    with pytest.raises(DataError, match=r"monte_cristo_002_dumas_64kb\.flac has no voice-activity file"):
        librilight.prepare(corpus, tmp_path / "data", ["small"])
