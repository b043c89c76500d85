"""Synthetic espeak-ng corpus: determinism, Kaldi data dirs, unseen test voices, phone alignments, speed."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chunkssl.datadir import validate
from chunkssl.fileio import DataError, read_kv
from chunkssl.synth import espeak
from chunkssl.synth.corpus import (SPLITS, CorpusExistsError, make_corpus, phone_spans, read_phone_ali,
                                   split_sizes)
from chunkssl.synth.sentences import (generate_sentences, number_words, ordinal_words, speech_markup,
                                      year_words)

from conftest import REPO

NUM_UTTS = 40
SEED = 3
DATA_FILES = ("wav.scp", "text", "utt2spk", "utt2dur", "phone_ali")


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict:
    """Four small corpora: the CLI's (timed), a twin made with --nj 2, another seed, a clean one."""
    root = tmp_path_factory.mktemp("synth")
    cpu0 = _cpu_children()
    cmd = [sys.executable, "-m", "chunkssl.bin.make_synth_corpus", "--out", str(root / "a"),
           "--num-utts", str(NUM_UTTS), "--seed", str(SEED)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cli_cpu = _cpu_children() - cpu0
    quiet = dict(log=lambda msg: None)
    make_corpus(root / "twin", NUM_UTTS, seed=SEED, noise_snr_db=20.0, nj=2, **quiet)
    make_corpus(root / "other", NUM_UTTS, seed=SEED + 1, **quiet)
    make_corpus(root / "clean", NUM_UTTS, seed=SEED, noise_snr_db=None, **quiet)
    return {"root": root, "a": root / "a", "twin": root / "twin", "other": root / "other",
            "clean": root / "clean", "cli_cpu": cli_cpu, "cli_stdout": done.stdout}


def _files(corpus: Path) -> dict[str, bytes]:
    """Every file under the corpus by relative path, with the corpus root masked out of wav.scp."""
    return {str(p.relative_to(corpus)): p.read_bytes().replace(str(corpus).encode(), b"ROOT")
            for p in sorted(corpus.rglob("*")) if p.is_file()}


# ---- sentences -------------------------------------------------------------------------------

def test_number_words_hand_checked():
    assert number_words(0) == ["ZERO"]
    assert number_words(15) == ["FIFTEEN"]
    assert number_words(40) == ["FORTY"]
    assert number_words(1984) == ["ONE", "THOUSAND", "NINE", "HUNDRED", "EIGHTY", "FOUR"]
    assert number_words(305) == ["THREE", "HUNDRED", "FIVE"]
    assert ordinal_words(23) == ["TWENTY", "THIRD"] and ordinal_words(30) == ["THIRTIETH"]
    assert year_words(1984) == ["NINETEEN", "EIGHTY", "FOUR"]
    assert year_words(1905) == ["NINETEEN", "OH", "FIVE"]
    assert year_words(2003) == ["TWO", "THOUSAND", "THREE"]
    with pytest.raises(ValueError):
        number_words(10000)


def test_sentences_seeded_upper_case_words():
    a, b, c = generate_sentences(300, 7), generate_sentences(300, 7), generate_sentences(300, 8)
    assert a == b and a != c
    vocab = {w for s in a for w in s}
    for sentence in a:
        assert sentence and all(w.isalpha() and w.isupper() for w in sentence), sentence
    # The AN4-like domain: digits, spelled letters, months, commands all occur.
    assert {"ONE", "ZERO"} & vocab and {"JANUARY", "MARCH", "MAY"} & vocab
    assert any(len(w) == 1 for w in vocab) and {"STOP", "ENTER", "RUBOUT", "CALL"} & vocab


def test_speech_markup_spells_letter_runs():
    assert speech_markup(["CALL", "J", "O", "HN"]) == \
        '<speak>call <say-as interpret-as="characters">jo</say-as> hn</speak>'
    assert speech_markup(["FIVE", "P", "M"]) == \
        '<speak>five <say-as interpret-as="characters">pm</say-as></speak>'


# ---- espeak binding and alignment spans --------------------------------------------------------

def test_espeak_output_does_not_depend_on_earlier_calls():
    first = espeak.synthesize("<speak>turn left</speak>", "en-us+f3", rate=160, pitch=40, seed=5)
    espeak.synthesize("<speak>call mary at noon</speak>", "en+whisper", rate=200, pitch=70, seed=9)
    again = espeak.synthesize("<speak>turn left</speak>", "en-us+f3", rate=160, pitch=40, seed=5)
    assert first.sample_rate == 22050 and first.samples.dtype == np.int16 and first.samples.size > 5000
    assert np.array_equal(first.samples, again.samples) and first.events == again.events
    names = [e.name.lstrip("',") for e in first.events]
    assert names[:3] == ["t", "3:", "n"], names
    with pytest.raises(espeak.EspeakError, match="variant"):
        espeak.synthesize("hello", "en+nosuchvoice")


def test_phone_spans_hand_checked():
    ev = espeak.PhonemeEvent
    events = [ev("k", 48), ev("'O:", 95), ev("l", 293), ev("_:", 300), ev(",eI", 400), ev("_|", 450),
              ev("b", 450), ev("_", 700)]
    assert phone_spans(events, 720) == [("k", 48, 95), ("O:", 95, 293), ("l", 293, 300),
                                        ("eI", 400, 450), ("b", 450, 700)]
    # The last phone runs to the end of the audio; events past it are clipped away.
    assert phone_spans([ev("s", 10), ev("t", 90)], 120) == [("s", 10, 90), ("t", 90, 120)]
    assert phone_spans([ev("s", 10), ev("t", 130)], 120) == [("s", 10, 120)]


def test_read_phone_ali_rejects_malformed_lines(tmp_path):
    path = tmp_path / "phone_ali"
    path.write_text("u1 k 0.100 0.150 O: 0.150 0.300\nu2 k 0.100\n")
    with pytest.raises(DataError, match="u2.*multiple of 3"):
        read_phone_ali(path)
    path.write_text("u1 k 0.100 0.150 O: 0.150 0.300\n")
    assert read_phone_ali(path) == {"u1": [("k", 0.1, 0.15), ("O:", 0.15, 0.3)]}


# ---- determinism ------------------------------------------------------------------------------

def test_same_seed_same_bytes_whatever_nj(corpora):
    a, twin = _files(corpora["a"]), _files(corpora["twin"])
    wavs = [k for k in a if k.endswith(".wav")]
    assert len(wavs) == NUM_UTTS
    assert a == twin  # wavs byte for byte, text/utt2spk/phone_ali/.done identical too


def test_different_seed_differs(corpora):
    a, other = _files(corpora["a"]), _files(corpora["other"])
    assert a["train/text"] != other["train/text"]
    wavs_a = {v for k, v in a.items() if k.endswith(".wav")}
    wavs_other = {v for k, v in other.items() if k.endswith(".wav")}
    assert len(wavs_a) == NUM_UTTS and not wavs_a & wavs_other


# ---- data dirs --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "clean"])
def test_data_dirs_consistent_and_sorted(corpora, name):
    corpus = corpora[name]
    sizes = split_sizes(NUM_UTTS)
    for split in SPLITS:
        d = corpus / split
        keys = {f: [k for k, _ in read_kv(d / f)] for f in DATA_FILES}
        utts = keys["wav.scp"]
        assert len(utts) == sizes[split]
        assert utts == sorted(utts, key=str.encode), f"{d}/wav.scp not in LC_ALL=C order"
        for f in DATA_FILES:
            assert keys[f] == utts, f"{d}/{f} keys differ from wav.scp"
        utt2spk = dict(read_kv(d / "utt2spk"))
        spk2utt = {s: u.split() for s, u in read_kv(d / "spk2utt")}
        assert list(spk2utt) == sorted(spk2utt, key=str.encode)
        assert {u: s for s, us in spk2utt.items() for u in us} == utt2spk
        assert all(u.startswith(s + "-") for u, s in utt2spk.items())
        for utt, words in read_kv(d / "text"):
            assert all(w.isalpha() and w.isupper() for w in words.split()), (utt, words)
        durs = dict(read_kv(d / "utt2dur"))
        for utt, path in read_kv(d / "wav.scp"):
            assert Path(path).is_absolute() and Path(path).parent == corpus / "wav" / split
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / 16000 - float(durs[utt])) < 1e-3
        assert validate(d) == [], f"{d} fails validate_data_dir"


def test_test_speakers_and_voices_unseen_in_train(corpora):
    corpus = corpora["a"]
    spk = {s: {sp for _, sp in read_kv(corpus / s / "utt2spk")} for s in SPLITS}
    assert not spk["test"] & (spk["train"] | spk["dev"])
    info = {k: v.split() for k, v in read_kv(corpus / "speaker_info")}
    variant = {s: {info[x][1].split("+")[1] for x in spk[s]} for s in SPLITS}
    assert not variant["test"] & (variant["train"] | variant["dev"])
    assert len(spk["train"]) >= 5 and len(variant["train"]) >= 5  # several voices, not one


# ---- phone alignments vs the audio -------------------------------------------------------------

def _frame_energy_db(x: np.ndarray, sr: int, win: float = 0.025, hop: float = 0.010):
    w, h = int(win * sr), int(hop * sr)
    frames = np.lib.stride_tricks.sliding_window_view(x, w)[::h]
    centres = (np.arange(len(frames)) * h + w / 2) / sr
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-10), centres


@pytest.mark.parametrize("name", ["a", "clean"])
def test_phone_spans_cover_the_speech(corpora, name):
    corpus = corpora[name]
    checked = 0
    for split in SPLITS:
        ali = read_phone_ali(corpus / split / "phone_ali")
        for utt, path in read_kv(corpus / split / "wav.scp"):
            x, sr = sf.read(path)
            duration = len(x) / sr
            spans = ali[utt]
            assert spans, f"{utt}: no phones"
            times = [t for _, s, e in spans for t in (s, e)]
            assert times == sorted(times), f"{utt}: spans overlap or go backwards"
            assert 0 <= times[0] and times[-1] <= duration + 1e-9 and all(s < e for _, s, e in spans)
            energy, centre = _frame_energy_db(x, sr)
            # Loud frames: within 25 dB of the peak and clear of the noise floor.
            loud = (energy > energy.max() - 25) & (energy > np.percentile(energy, 5) + 10)
            covered = np.zeros(len(energy), bool)
            for _, s, e in spans:  # half a window of slack: a frame straddling a boundary counts
                covered |= (centre >= s - 0.0125) & (centre < e + 0.0125)
            assert (loud & covered).sum() >= 0.9 * loud.sum(), f"{utt}: phones miss the speech"
            loud_t = centre[loud]
            assert spans[0][1] < loud_t[0] + 0.03 and spans[-1][2] > loud_t[-1] - 0.03, utt
            if name == "clean":
                # Anything above digital silence: the first phone starts where the sound starts.
                audible = centre[energy > energy.max() - 50]
                assert abs(spans[0][1] - audible[0]) < 0.03, f"{utt}: first phone misplaced"
                assert spans[-1][2] < audible[-1] + 0.03, f"{utt}: last phone runs into silence"
            checked += 1
    assert checked == NUM_UTTS


# ---- reruns, refusals, resume -----------------------------------------------------------------

def test_rerun_is_noop_and_other_args_refused(corpora, tmp_path):
    corpus = corpora["a"]
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    summary = make_corpus(corpus, NUM_UTTS, seed=SEED, log=lambda m: None)
    assert summary["num_utts"] == NUM_UTTS
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()} == before
    with pytest.raises(CorpusExistsError, match="remove"):
        make_corpus(corpus, NUM_UTTS, seed=SEED + 1, log=lambda m: None)
    cli = subprocess.run([sys.executable, "-m", "chunkssl.bin.make_synth_corpus", "--out", str(corpus),
                          "--num-utts", str(NUM_UTTS), "--no-noise"], cwd=REPO, capture_output=True, text=True)
    assert cli.returncode == 2 and "remove" in cli.stderr
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("not a corpus")
    with pytest.raises(CorpusExistsError, match="not a synthetic corpus"):
        make_corpus(tmp_path / "junk", 5, log=lambda m: None)


def test_interrupted_run_resumes_to_the_same_corpus(corpora, tmp_path):
    out = tmp_path / "c"
    make_corpus(out, 12, seed=SEED, noise_snr_db=None, log=lambda m: None)
    reference = _files(out)
    # Simulate a crash after some wavs: no .done, the start marker left, data dirs missing.
    params = json.loads((out / ".done").read_text())["params"]
    (out / ".done").unlink()
    (out / ".in_progress").write_text(json.dumps(params))
    for split in SPLITS:
        (out / split / "text").unlink()
    next(iter((out / "wav" / "train").glob("*.wav"))).unlink()
    with pytest.raises(CorpusExistsError, match="unfinished"):
        make_corpus(out, 12, seed=SEED + 1, noise_snr_db=None, log=lambda m: None)
    make_corpus(out, 12, seed=SEED, noise_snr_db=None, log=lambda m: None)
    assert _files(out) == reference


# ---- speed ------------------------------------------------------------------------------------

def test_ten_minutes_of_audio_would_take_under_a_minute_of_cpu(corpora):
    seconds = sum(float(v) for s in SPLITS for _, v in read_kv(corpora["a"] / s / "utt2dur"))
    assert seconds > 60, f"the timed run made only {seconds:.0f} s of audio"
    # CPU of the whole CLI process (interpreter start and imports included) scaled to 10 minutes.
    projected = corpora["cli_cpu"] * 600 / seconds
    assert projected < 60, f"{corpora['cli_cpu']:.1f} s CPU for {seconds:.0f} s audio -> {projected:.0f} s per 10 min"
    assert "s of audio" in corpora["cli_stdout"] and "s CPU" in corpora["cli_stdout"]
