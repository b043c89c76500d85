"""Libri-light preparation as a job array (local/data.sh --nj) and the Libri-Trans stand-in corpus.

The job-array tests use a small synthetic corpus (noise, five speakers, Libri-light layout) built in
tmp_path; the stand-in tests use the real Libri-Trans sample in ../shared/data/libritrans and skip
when it is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chunkssl.corpora import librilight, librilight_sample
from chunkssl.fileio import DataError, read_kv
from conftest import make_recipe, shared_corpus

RATE = 16000
# speaker -> [(book, file, seconds, voice-activity spans)]; the names sort differently as text and numbers
CORPUS = {
    "100": [("book_a_1_librivox", "a_01_64kb", 6.0, [(0.5, 2.0), (2.5, 5.5)])],
    "1034": [("book_a_1_librivox", "a_02_64kb", 4.0, [(0.2, 3.9)]),
             ("book_b_2_librivox", "b_01_64kb", 5.0, [(1.0, 2.0), (3.0, 4.5)])],
    "65": [("book_c_3_librivox", "c_01_64kb", 3.0, [(0.1, 2.9)])],
    "7302": [("book_c_3_librivox", "c_02_64kb", 7.0, [(0.5, 6.8)]),
             ("book_c_3_librivox", "c_03_64kb", 2.5, [(0.3, 2.2)])],
    "89": [("book_d_4_librivox", "d_01_64kb", 4.5, [(0.4, 1.9), (2.1, 4.4)])],
}


def _build_corpus(root: Path) -> None:
    """``root/small/<speaker>/<book>/<file>.{flac,json}`` for CORPUS, with seeded noise as audio."""
    rng = np.random.default_rng(0)
    for speaker, files in CORPUS.items():
        for book, stem, seconds, spans in files:
            flac = root / "small" / speaker / book / f"{stem}.flac"
            flac.parent.mkdir(parents=True, exist_ok=True)
            sf.write(flac, (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32), RATE,
                     subtype="PCM_16")
            meta = {"speaker": speaker, "snr": 10.0, "voice_activity": [list(s) for s in spans],
                    "book_meta": {"id": book.split("_")[-2], "title": "x"}}
            flac.with_suffix(".json").write_text(json.dumps(meta))


def _data_sh(recipe: Path, env: dict, corpus: Path, *opts: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "local/data.sh", "--download", "false", "--max-seg-sec", "3", *opts],
                          cwd=recipe, env=dict(env, LIBRILIGHT=str(corpus)), capture_output=True, text=True)


def _snapshot(data: Path, names: list[str]) -> dict[str, bytes]:
    """Every file of the named data dirs, by relative path."""
    return {str(p.relative_to(data)): p.read_bytes() for n in names for p in sorted((data / n).rglob("*"))
            if p.is_file()}


def test_job_share_is_a_fixed_disjoint_cover():
    speakers = sorted(CORPUS)
    for nj in range(1, 8):
        shares = [librilight.job_share(speakers, nj, j) for j in range(1, nj + 1)]
        assert sorted(s for share in shares for s in share) == speakers  # every speaker exactly once
        assert shares == [librilight.job_share(list(reversed(speakers)), nj, j) for j in range(1, nj + 1)]
    with pytest.raises(ValueError):
        librilight.job_share(speakers, 3, 4)


def test_data_sh_output_is_the_same_for_any_nj(tmp_path, script_env):
    corpus = tmp_path / "corpus"
    _build_corpus(corpus)
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    sets = ["small", "small_dev"]
    outputs = {}
    for nj in (1, 3, 7):  # 7 > 5 speakers: some jobs get none
        r = _data_sh(recipe, script_env, corpus, "--nj", str(nj), "--dev-recordings", "2")
        assert r.returncode == 0, r.stderr
        assert sorted((recipe / "data/local/librilight/log").glob("prep.*.log")) == [
            recipe / f"data/local/librilight/log/prep.{j}.log" for j in range(1, nj + 1)]
        outputs[nj] = _snapshot(recipe / "data", sets)
        shutil.rmtree(recipe / "data")
    assert outputs[1] == outputs[3] == outputs[7]
    # in one process (no job array) too
    librilight.prepare(corpus, tmp_path / "inproc", ["small"], 3.0, 1.0, dev_recordings=2)
    assert _snapshot(tmp_path / "inproc", sets) == outputs[1]
    # the hold-out is the last two recordings in sorted id order, whatever the jobs
    assert list(dict(read_kv(tmp_path / "inproc/small_dev/wav.scp"))) == [
        "7302-book_c_3_librivox-c_03_64kb", "89-book_d_4_librivox-d_01_64kb"]
    assert len(read_kv(tmp_path / "inproc/small/wav.scp")) == 5
    for n in sets:
        r = subprocess.run(["bash", "utils/validate_data_dir.sh", "--no-text", str(tmp_path / "inproc" / n)],
                           cwd=recipe, env=script_env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_failed_job_is_reported_and_nothing_is_replaced(tmp_path, script_env):
    corpus = tmp_path / "corpus"
    _build_corpus(corpus)
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    assert _data_sh(recipe, script_env, corpus, "--nj", "3").returncode == 0
    before = _snapshot(recipe / "data", ["small"])
    # with 3 jobs, job 2 takes the 2nd and 5th of the sorted speakers: 1034 and 89
    assert librilight.job_share(sorted(CORPUS), 3, 2) == ["1034", "89"]
    bad = corpus / "small/89/book_d_4_librivox/d_01_64kb.json"
    good = bad.read_text()
    bad.write_text("{not json")
    r = _data_sh(recipe, script_env, corpus, "--nj", "3", "--max-seg-sec", "2")
    assert r.returncode != 0
    log = recipe / "data/local/librilight/log/prep.2.log"
    assert "job(s) [2] of 3 failed" in r.stderr and str(log.relative_to(recipe)) in r.stderr, r.stderr
    assert "d_01_64kb.json" in r.stderr  # the log's tail, with the job's own error, is quoted
    assert "cannot read voice-activity metadata" in log.read_text()
    assert _snapshot(recipe / "data", ["small"]) == before  # the old data dir is untouched
    assert not list((recipe / "data").glob(".librilight_prep.*"))  # no partial results left to trust
    bad.write_text(good)
    r = _data_sh(recipe, script_env, corpus, "--nj", "3", "--max-seg-sec", "2")
    assert r.returncode == 0, r.stderr
    assert _snapshot(recipe / "data", ["small"]) != before  # now the new options apply


def test_part_from_another_run_is_refused(tmp_path):
    header = {"job": 1, "nj": 2, "subsets": ["small"], "max_seg_sec": 15.0, "min_seg_sec": 1.0}
    part = tmp_path / "part.1.jsonl"
    librilight.write_part(part, header, [])
    assert librilight.read_part(part, header) == []
    with pytest.raises(DataError, match="part.1.jsonl was written by another run"):
        librilight.read_part(part, dict(header, nj=3))


def test_bad_subset_folder(tmp_path):
    corpus = tmp_path / "corpus"
    _build_corpus(corpus)
    (corpus / "small/stray.flac").write_bytes(b"")
    with pytest.raises(DataError, match=r"small/stray\.flac is not at <subset>/<speaker>/<book>/<file>\.flac"):
        librilight.prepare(corpus, tmp_path / "data", ["small"], nj=2)
    with pytest.raises(DataError, match="subset folder .*medium not found"):
        librilight.prepare(corpus, tmp_path / "data", ["medium"], nj=2)
    assert not (tmp_path / "data" / "small").exists()


# ------------------------------------------------------------------ the Libri-Trans stand-in corpus

def _manifest(out: Path) -> dict[str, list[tuple[str, float, float]]]:
    rows = [ln.split("\t") for ln in (out / librilight_sample.MANIFEST).read_text().splitlines()[1:]]
    by_file: dict[str, list[tuple[str, float, float]]] = {}
    for f, utt, a, b in rows:
        by_file.setdefault(f, []).append((utt, float(a), float(b)))
    return by_file


def test_make_sample_from_real_libritrans(tmp_path):
    src = shared_corpus("libritrans")
    out = tmp_path / "sample"
    silence = 0.4
    n = librilight_sample.make_sample(src, out, readers=3, minutes_per_reader=2, recording_minutes=1,
                                      silence_sec=silence)
    flacs = sorted((out / "small").rglob("*.flac"))
    assert n == len(flacs) >= 3
    manifest = _manifest(out)
    assert sorted(manifest) == [str(f.relative_to(out)) for f in flacs]
    readers = set()
    for flac in flacs:
        speaker, book, _ = flac.relative_to(out / "small").parts
        readers.add(speaker)
        meta = json.loads(flac.with_suffix(".json").read_text())
        assert set(meta) == {"speaker", "snr", "voice_activity", "book_meta"}
        assert meta["speaker"] == speaker and book == f"book_{meta['book_meta']['id']}_librivox"
        assert isinstance(meta["snr"], float)
        wave, rate = sf.read(flac, dtype="int16")
        assert rate == RATE and wave.ndim == 1
        utts = manifest[str(flac.relative_to(out))]
        sources = [sf.read(src / "audio_files" / f"{u}.flac", dtype="int16")[0] for u, _, _ in utts]
        # the file is its utterances plus (n + 1) silences, nothing else
        assert len(wave) == sum(len(s) for s in sources) + (len(utts) + 1) * round(silence * RATE)
        assert 0 < len(wave) / RATE <= 60 or len(utts) == 1
        assert not wave[:round(silence * RATE)].any() and not wave[-round(silence * RATE):].any()
        spans = meta["voice_activity"]
        assert len(spans) == len(utts)
        total = len(wave) / RATE
        prev_end = 0.0
        for (utt, a, b), source, (start, end) in zip(utts, sources, spans):
            assert prev_end <= start < end <= total  # inside the file, in order, disjoint
            assert start <= a and b <= end and a - start < 0.01 and end - b < 0.01  # the boundaries, to 10 ms
            assert start == round(start, 2) and end == round(end, 2)  # Libri-light's centiseconds
            np.testing.assert_array_equal(wave[round(a * RATE):round(b * RATE)], source)  # samples unchanged
            prev_end = end
    assert len(readers) == 3
    # deterministic: a second run gives the same bytes, and it may replace its own output
    again = tmp_path / "again"
    librilight_sample.make_sample(src, again, readers=3, minutes_per_reader=2, recording_minutes=1,
                                  silence_sec=silence)
    assert _snapshot(again, ["small"]) == _snapshot(out, ["small"])
    librilight_sample.make_sample(src, out, readers=1, minutes_per_reader=1)
    assert len(list((out / "small").iterdir())) == 1


def test_make_sample_refuses_foreign_folder_and_bad_input(tmp_path):
    (tmp_path / "real/small/65").mkdir(parents=True)
    with pytest.raises(DataError, match="was not made by this module"):
        librilight_sample.make_sample(tmp_path, tmp_path / "real")
    with pytest.raises(DataError, match="alignments.meta not found"):
        librilight_sample.make_sample(tmp_path, tmp_path / "out")
    assert (tmp_path / "real/small/65").is_dir()


def test_sample_through_the_recipe(tmp_path, script_env):
    src = shared_corpus("libritrans")
    recipe = make_recipe(tmp_path, "librilight", "ssl1")
    out = tmp_path / "librilight_sample"
    r = subprocess.run(["bash", "local/make_sample.sh", "--readers", "4", "--minutes-per-reader", "2",
                        str(src), str(out)], cwd=recipe, env=script_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["bash", "local/data.sh", "--download", "false", "--subsets", "small", "--nj", "2",
                        "--dev-recordings", "2"], cwd=recipe, env=dict(script_env, LIBRILIGHT=str(out)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("small", "small_dev"):
        r = subprocess.run(["bash", "utils/validate_data_dir.sh", "--no-text", f"data/{name}"], cwd=recipe,
                           env=script_env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    assert len(read_kv(recipe / "data/small_dev/wav.scp")) == 2
    speakers = {s for _, s in read_kv(recipe / "data/small/utt2spk")} | \
        {s for _, s in read_kv(recipe / "data/small_dev/utt2spk")}
    assert speakers == {p.name for p in (out / "small").iterdir()}
    for _, seg in read_kv(recipe / "data/small/segments"):
        _, start, end = seg.split()
        assert 1.0 <= float(end) - float(start) <= 15.0
