"""Synthetic pool corpus and the synth_pool recipes' data prep: determinism, lengths, voice split, resuming."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chunkssl.corpora.libritrans import read_corpus, split_readers
from chunkssl.datadir import validate
from chunkssl.fileio import read_kv
from chunkssl.synth import pool
from chunkssl.synth.corpus import CorpusExistsError, read_phone_ali, usable_variants

from conftest import REPO, SHARED_DATA, make_recipe, shared_corpus

SEED = 3
QUIET = dict(log=lambda msg: None)
WORDS = re.compile(r"^[A-Z']+( [A-Z']+)*$")


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict[str, Path]:
    """A one-minute pool (and its twin made with --nj 2), and a few utterances of the labelled sets."""
    root = tmp_path_factory.mktemp("pool")
    pool.make_part(root / "pool", "pool", seed=SEED, seconds=60, **QUIET)
    pool.make_part(root / "twin", "pool", seed=SEED, seconds=60, nj=2, **QUIET)
    for part in ("dev", "labelled", "test"):
        pool.make_part(root / part, part, seed=SEED, num_utts=3, **QUIET)
    return {p.name: p for p in root.iterdir()}


def _files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` by relative path, with the root masked out of wav.scp."""
    return {str(p.relative_to(out)): p.read_bytes().replace(str(out).encode(), b"ROOT")
            for p in sorted(out.rglob("*")) if p.is_file()}


def _variants(out: Path) -> set[str]:
    """The espeak voice variants of the speakers that speak the utterances of a part (or data dir)."""
    info = {spk: rest.split()[1].split("+")[1] for spk, rest in read_kv(out.parent / "speaker_info")} \
        if (out.parent / "speaker_info").exists() else {}
    spk_variant = {}
    for _, spk in read_kv(out / "utt2spk"):
        spk_variant[spk] = info.get(spk, spk.split("-")[0])
    return set(spk_variant.values())


# ---- plans: sizes, lengths, voices ----------------------------------------------------------------

def test_voice_split_is_fixed_disjoint_and_covers_every_variant():
    seen, held = pool.voice_split()
    assert not set(seen) & set(held) and sorted(seen + held) == sorted(usable_variants())
    assert 0.1 < len(held) / (len(seen) + len(held)) < 0.3
    assert pool.voice_split() == (seen, held)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_held_out_variants_only_speak_the_test_part(seed):
    seen, held = pool.voice_split()
    for part in ("pool", "dev", "labelled", "test"):
        used = {u.speaker.variant for u in pool.plan_part(part, seed, seconds=1800)}
        assert used <= set(held if part == "test" else seen), part
        assert len(used) >= (len(held) if part == "test" else 30), f"{part}: only {len(used)} variants in 30 min"


def test_an_hour_of_pool_plan_has_many_voices_rates_and_pitches():
    plans = pool.plan_part("pool", SEED, seconds=3600)
    assert sum(u.target_s for u in plans) >= 3600
    assert all(pool.TARGET_SECONDS[0] <= u.target_s <= pool.TARGET_SECONDS[1] for u in plans)
    speakers = {u.speaker for u in plans}
    assert len(speakers) >= 150
    assert len({s.rate for s in speakers}) >= 15 and len({s.pitch for s in speakers}) >= 40
    assert len({s.language for s in speakers}) == 8
    snrs = [u.snr_db for u in plans]
    assert min(snrs) < 13 and max(snrs) > 27


def test_different_seed_or_part_gives_different_utterances():
    a = pool.plan_part("pool", SEED, num_utts=5)
    assert a == pool.plan_part("pool", SEED, num_utts=5)
    assert [u.target_s for u in a] != [u.target_s for u in pool.plan_part("pool", SEED + 1, num_utts=5)]
    assert [u.target_s for u in a] != [u.target_s for u in pool.plan_part("labelled", SEED, num_utts=5)]


def test_bad_sizes_and_parts_are_rejected():
    with pytest.raises(ValueError, match="exactly one"):
        pool.plan_part("pool", 0, seconds=10, num_utts=2)
    with pytest.raises(ValueError, match="positive"):
        pool.plan_part("pool", 0, num_utts=0)
    with pytest.raises(ValueError, match="unknown part"):
        pool.plan_part("train", 0, num_utts=1)
    with pytest.raises(ValueError, match="sized by num_utts"):
        pool.plan_part("labelled", 0, seconds=60, max_prompts=1)


def test_max_prompts_gives_one_prompt_utterances_and_other_params():
    plans = pool.plan_part("labelled", SEED, num_utts=3, max_prompts=1)
    texts = [pool.render_utt(u, SEED, noise=False)[2] for u in plans]
    full = [pool.render_utt(u, SEED, noise=False)[2] for u in pool.plan_part("labelled", SEED, num_utts=3)]
    # the capped utterance is the first prompt of the uncapped one (same seeds), and shorter
    assert all(f.startswith(t) and len(t.split()) < len(f.split()) for t, f in zip(texts, full))
    assert pool.part_params("labelled", SEED, None, 3, True, 1) != pool.part_params("labelled", SEED, None, 3, True)


# ---- rendered parts -------------------------------------------------------------------------------

def test_same_seed_same_bytes_whatever_nj(parts):
    assert _files(parts["pool"]) == _files(parts["twin"])


def test_pool_reaches_its_size_in_4_to_20_second_multi_prompt_utterances(parts):
    done = json.loads((parts["pool"] / ".done").read_text())["summary"]
    assert done["seconds"] >= 60
    for name in ("pool", "dev", "labelled", "test"):
        data = parts[name] / "data"
        durs = dict(read_kv(data / "utt2dur"))
        for utt, path in read_kv(data / "wav.scp"):
            info = sf.info(path)
            assert info.samplerate == 16000 and info.subtype == "PCM_16"
            assert abs(info.duration - float(durs[utt])) < 1e-3
            assert pool.MIN_SECONDS <= info.duration <= pool.MAX_SECONDS, (utt, info.duration)
        texts = dict(read_kv(data / "text"))
        assert all(WORDS.match(t) for t in texts.values())
        # Several prompts per utterance: 4 s and more of speech is far more than one prompt's words.
        assert np.mean([len(t.split()) for t in texts.values()]) >= 10


@pytest.mark.parametrize("name", ["pool", "dev", "labelled", "test"])
def test_parts_are_valid_kaldi_dirs_with_phone_alignments(parts, name):
    data = parts[name] / "data"
    assert validate(data) == []
    ali = read_phone_ali(data / "phone_ali")
    durs = {u: float(d) for u, d in read_kv(data / "utt2dur")}
    assert set(ali) == set(durs)
    for utt, spans in ali.items():
        assert spans and all(0 <= s < e <= durs[utt] + 1e-3 for _, s, e in spans)
        assert all(a[2] <= b[1] + 1e-3 for a, b in zip(spans, spans[1:])), f"{utt}: spans overlap"


def test_held_out_variants_never_in_pool_dev_or_labelled(parts):
    seen, held = pool.voice_split()
    for name in ("pool", "twin", "dev", "labelled"):
        assert _variants(parts[name] / "data") <= set(seen), name
        assert {r.split()[0] for _, r in read_kv(parts[name] / "speaker_info")} == {"seen"}
    assert _variants(parts["test"] / "data") <= set(held)
    assert {r.split()[0] for _, r in read_kv(parts["test"] / "speaker_info")} == {"heldout"}


def test_speech_sits_in_the_phone_spans_and_noise_has_the_planned_snr():
    u = pool.plan_part("labelled", SEED, num_utts=1)[0]
    clean, rendered, text = pool.render_utt(u, SEED, noise=False)
    noisy, again, text2 = pool.render_utt(u, SEED, noise=True)
    assert text == text2 and rendered == again
    clean, noisy = clean.astype(np.float64), noisy.astype(np.float64)
    inside = np.zeros(len(clean), bool)
    for _, s, e in rendered.spans:
        inside[int(s * 16000):int(e * 16000)] = True
    assert np.mean(clean[~inside] ** 2) < 1e-3 * np.mean(clean[inside] ** 2)
    # The reference power counts the prompts' own short silences, so the spans alone read a little higher.
    snr = 10 * np.log10(np.mean(clean[inside] ** 2) / np.mean((noisy - clean) ** 2))
    assert u.snr_db - 0.5 < snr < u.snr_db + 2.5


# ---- reruns, refusals, resume ---------------------------------------------------------------------

def test_rerun_is_noop_and_other_params_refused(parts):
    out = parts["dev"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert pool.make_part(out, "dev", seed=SEED, num_utts=3, **QUIET)["num_utts"] == 3
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    with pytest.raises(CorpusExistsError, match="remove"):
        pool.make_part(out, "dev", seed=SEED, num_utts=4, **QUIET)
    cli = subprocess.run([sys.executable, "-m", "chunkssl.bin.make_synth_pool", "--out", str(out), "--part", "dev",
                          "--num-utts", "3", "--seed", str(SEED), "--no-noise"], cwd=REPO, capture_output=True, text=True)
    assert cli.returncode == 2 and "remove" in cli.stderr


def test_cli_makes_a_part_and_says_its_size(tmp_path):
    cli = subprocess.run([sys.executable, "-m", "chunkssl.bin.make_synth_pool", "--out", str(tmp_path / "t"),
                          "--part", "test", "--num-utts", "1", "--seed", "5"], cwd=REPO, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "test: 1 utterances" in cli.stdout and "h of audio" in cli.stdout
    assert len(read_kv(tmp_path / "t/data/text")) == 1


def test_interrupted_run_keeps_finished_shards_and_ends_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "SHARD_SIZE", 2)
    out = tmp_path / "p"
    pool.make_part(out, "labelled", seed=SEED, num_utts=3, noise=False, **QUIET)
    reference = _files(out)
    # A crash during the second shard: no .done, the start marker left, one wav and the data dir missing.
    params = json.loads((out / ".done").read_text())["params"]
    (out / ".done").unlink()
    (out / ".in_progress").write_text(json.dumps(params))
    (out / "shards" / "00001.json").unlink()
    (out / "data" / "text").unlink()
    first = [out / "wav" / f"{r['utt']}.wav" for r in json.loads((out / "shards" / "00000.json").read_text())]
    kept = {p: p.stat().st_mtime_ns for p in first}
    with pytest.raises(CorpusExistsError, match="unfinished"):
        pool.make_part(out, "labelled", seed=SEED + 1, num_utts=3, noise=False, **QUIET)
    pool.make_part(out, "labelled", seed=SEED, num_utts=3, noise=False, **QUIET)
    assert _files(out) == reference
    assert {p: p.stat().st_mtime_ns for p in first} == kept, "a finished shard was made again"


# ---- the recipes' data prep -----------------------------------------------------------------------

def _run_data_sh(tmp_path: Path, task: str, *opts: str, env: dict) -> tuple[Path, str]:
    recipe = make_recipe(tmp_path, "synth_pool", task)
    r = subprocess.run(["bash", "local/data.sh", *opts], cwd=recipe, capture_output=True, text=True,
                       env={**env, "CHUNKSSL_SHARED_DATA": str(SHARED_DATA), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return recipe, r.stdout


def _libritrans_readers() -> tuple[set[str], set[str]]:
    """(train readers, test readers) of ../shared/data/libritrans, as the corpus prep splits them."""
    rows = read_corpus(shared_corpus("libritrans"))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.reader] = counts.get(row.reader, 0) + 1
    test, _ = split_readers(counts, 0.1)
    return set(counts) - test, test


def test_ssl1_data_sh_pool_holds_synthetic_and_real_audio_but_no_test_speech(tmp_path, script_env):
    for name in ("fsdd", "yesno", "mini_an4"):
        shared_corpus(name)
    lt_train, lt_test = _libritrans_readers()
    recipe, out = _run_data_sh(tmp_path, "ssl1", "--pool-hours", "0.005", "--dev-utts", "2", "--nj", "1",
                               env=script_env)
    train, dev = recipe / "data/train", recipe / "data/dev"
    assert validate(train, check_audio=False, check_text=False) == []
    assert validate(dev, check_text=False) == []
    assert not (train / "text").exists() and not (dev / "text").exists()
    assert (dev / "phone_ali").exists()
    speakers = {spk for _, spk in read_kv(train / "utt2spk")}
    seen, held = pool.voice_split()
    synth = {s for s in speakers if s.split("-")[0] in {v.lower() for v in seen + held}}
    assert synth and {s.split("-")[0] for s in synth} <= {v.lower() for v in seen}
    assert {"yesno", "jackson"} <= speakers, "yesno and FSDD are missing from the pool"
    assert lt_train <= speakers and not lt_test & speakers, "Libri-Trans test readers leaked into the pool"
    recordings = {rest.split()[0] for _, rest in read_kv(train / "segments")}
    assert not any(r.split("-")[0] in lt_test for r in recordings)
    assert any("-an" in r for r in recordings), "AN4 is missing from the pool"
    assert re.search(r"data/train: \d+ utterances, [\d.]+ h: synthetic [\d.]+ h", out)
    assert re.search(r"data/dev: 2 utterances, [\d.]+ h", out)


def test_asr1_data_sh_labelled_sets_share_one_normalisation_and_the_voice_split(tmp_path, script_env):
    lt_train, lt_test = _libritrans_readers()
    recipe, out = _run_data_sh(tmp_path, "asr1", "--labelled-utts", "6", "--test-utts", "2",
                               "--dev-utts", "2", "--nj", "1", env=script_env)
    seen, held = pool.voice_split()
    lower = {v.lower(): v for v in seen + held}
    for name in ("train_labelled", "dev", "test_unseen", "lt_train", "lt_test"):
        d = recipe / "data" / name
        assert validate(d, check_audio=name != "lt_train") == [], name
        assert all(WORDS.match(t) for _, t in read_kv(d / "text")), name
        assert re.search(rf"data/{name}: \d+ utterances of \d+ speakers, [\d.]+ h", out)
        speakers = {spk for _, spk in read_kv(d / "utt2spk")}
        if name.startswith("lt_"):
            assert speakers == (lt_test if name == "lt_test" else lt_train)
            continue
        variants = {lower[s.split("-")[0]] for s in speakers}
        assert variants <= set(held if name == "test_unseen" else seen), name
    assert len(read_kv(recipe / "data/test_unseen/text")) == 2
    labelled = [float(d) for _, d in read_kv(recipe / "data/train_labelled/utt2dur")]
    assert len(labelled) == 6 and max(labelled) < 7  # one prompt each
