"""Synthetic AN4-like speech corpus spoken by espeak-ng, written as Kaldi data directories.

Layout of ``DIR`` (``python -m chunkssl.bin.make_synth_corpus --out DIR ...``)::

    DIR/wav/{train,dev,test}/<utt>.wav   16 kHz mono 16-bit PCM
    DIR/{train,dev,test}/wav.scp         <utt> <absolute path of the wav>
    DIR/{train,dev,test}/text            <utt> <UPPER CASE WORDS>
    DIR/{train,dev,test}/utt2spk         <utt> <spk>
    DIR/{train,dev,test}/spk2utt         <spk> <utt> <utt> ...
    DIR/{train,dev,test}/utt2dur         <utt> <seconds>
    DIR/{train,dev,test}/phone_ali       <utt> <phone> <start> <end> <phone> <start> <end> ...
    DIR/speaker_info                     <spk> <split-group> <espeak voice> <pitch> <rate>
    DIR/.done                            JSON: generation parameters and a summary, written last

Every key-first file is sorted in ``LC_ALL=C`` (byte) order, so Kaldi tools (``utils/filter_scp.pl``,
``utils/subset_data_dir.sh``, ...) work on all of them, ``phone_ali`` included. wav.scp holds
absolute paths: moving ``DIR`` means regenerating it (cheap) or rewriting wav.scp.

Speakers. A speaker is an espeak voice (English language/accent + voice variant such as ``f3``)
at a fixed pitch (espeak 0-100) and rate (words per minute); its id is
``<variant>-<accent>-p<pitch>-r<rate>`` and every utterance id is ``<spk>-<6-digit index>``, so
utt2spk is sorted both ways. About 20% of the voice variants are held out for test: test speakers
never share a variant with train or dev speakers, so test is on unseen voices. Dev speakers are
drawn from the train pool (a matched-condition validation set). Utterances are split 80/10/10
(at least one per set). Within a speaker, the pitch range (intonation) varies per utterance.

Audio. espeak speaks at 22050 Hz; the samples are resampled to 16 kHz (polyphase, scipy),
scaled to a random peak level, padded with 50-400 ms of silence before and 50-300 ms after,
and, unless ``--no-noise``, mixed with seeded coloured Gaussian noise (white to brown-ish, a
one-pole low-pass with random coefficient) at ``--noise-snr-db`` relative to the power of the
espeak output (its own short pauses included).

Phone alignment. ``phone_ali`` has one line per utterance: ``utt`` followed by triples
``phone start end`` (seconds with millisecond precision, relative to the start of the wav).
Labels are espeak's ASCII phoneme mnemonics (``k``, ``O:``, ``dZ``, ``aI``, ``@``, ...) with the
stress marks removed. Times come from espeak's phoneme events (ms within espeak's output): a
phone starts at its event and ends at the next event, or at the end of espeak's audio for the last
one. Pauses (espeak's ``_`` phonemes) and zero-length phones are left out, so the gaps between
spans (including the padding) are silence; a consumer that wants frame labels everywhere should
fill gaps with a silence label.

Determinism. Same ``--num-utts``/``--seed``/noise settings give byte-identical wavs and identical
text files whatever ``--nj`` is: every utterance is rendered from its own plan entry with its own
seeds (see :mod:`chunkssl.synth.espeak` for how espeak's hidden state is reset).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from chunkssl.fileio import DataError, atomic_open, read_kv, write_kv
from chunkssl.synth import espeak
from chunkssl.synth.sentences import generate_sentence, speech_markup

FORMAT_VERSION = 1
SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
DEV_FRACTION = 0.1
TEST_FRACTION = 0.1
TEST_VARIANT_FRACTION = 0.2
SPEAKERS_PER_VARIANT = 2
PITCH_RANGE = (25, 75)
RATE_RANGE = (130, 200)

# Variants that sound like plain speech; whispered, croaking and robotic ones are left out.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
            "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Michael",
            "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "david", "ed",
            "edward", "grandma", "grandpa", "gustave", "ian", "iven", "john", "linda", "max",
            "michel", "norbert", "paul", "quincy", "rob", "robert", "shelby", "steph", "travis",
            "victor")
ACCENTS = {"en": "engb", "en-us": "enus", "en-gb-x-rp": "enrp", "en-gb-scotland": "ensc",
           "en-029": "encb", "en-us-nyc": "enny", "en-gb-x-gbclan": "enln", "en-gb-x-gbcwmd": "enwm"}


class CorpusExistsError(DataError):
    """The output directory already holds something other than this exact corpus."""


@dataclass(frozen=True)
class Speaker:
    """An espeak voice at a fixed pitch and speaking rate."""

    variant: str
    language: str
    pitch: int
    rate: int

    @property
    def id(self) -> str:
        return f"{self.variant.lower()}-{ACCENTS[self.language]}-p{self.pitch:02d}-r{self.rate:03d}"

    @property
    def voice(self) -> str:
        return f"{self.language}+{self.variant}"


@dataclass(frozen=True)
class UttPlan:
    """Everything needed to render one utterance, independent of any other."""

    index: int
    split: str
    speaker: Speaker
    words: tuple[str, ...]
    pitch_range: int
    pad_start_ms: int
    pad_end_ms: int
    peak: float
    noise_pole: float

    @property
    def utt_id(self) -> str:
        return f"{self.speaker.id}-{self.index:06d}"


@dataclass(frozen=True)
class Rendered:
    """What the data-dir writer needs from a rendered utterance."""

    utt_id: str
    duration: float
    spans: list[tuple[str, float, float]]


def draw_speakers(rng: random.Random, variants: list[str], per_variant: int = SPEAKERS_PER_VARIANT,
                  pitch_range: tuple[int, int] = PITCH_RANGE,
                  rate_range: tuple[int, int] = RATE_RANGE) -> list[Speaker]:
    """``per_variant`` distinct speakers (accent, pitch, rate in steps of 5) per variant, sorted by id."""
    pool: dict[str, Speaker] = {}
    for variant in variants:
        made = 0
        while made < per_variant:
            spk = Speaker(variant, rng.choice(sorted(ACCENTS)), rng.randint(*pitch_range),
                          rng.randrange(rate_range[0], rate_range[1] + 1, 5))
            if spk.id not in pool:
                pool[spk.id] = spk
                made += 1
    return [pool[k] for k in sorted(pool)]


def split_sizes(num_utts: int) -> dict[str, int]:
    """Utterances per set: 10% dev and 10% test (at least one each), the rest train."""
    if num_utts < 3:
        raise ValueError(f"--num-utts must be at least 3 (one per set), got {num_utts}")
    n_dev = max(1, round(num_utts * DEV_FRACTION))
    n_test = max(1, round(num_utts * TEST_FRACTION))
    return {"train": num_utts - n_dev - n_test, "dev": n_dev, "test": n_test}


def usable_variants() -> list[str]:
    """The plain-speech voice variants (:data:`VARIANTS` order) that the installed espeak data has."""
    available = set(espeak.voice_variants())
    variants = [v for v in VARIANTS if v in available]
    if len(variants) < 4:
        raise DataError(f"only {len(variants)} of the expected espeak voice variants are in "
                        f"{espeak.data_path()}; reinstall the espeakng-loader wheel")
    return variants


def plan_corpus(num_utts: int, seed: int) -> list[UttPlan]:
    """Draw speakers, splits, prompts and audio settings for every utterance from ``seed``."""
    variants = usable_variants()
    rng = random.Random(seed)
    rng.shuffle(variants)
    n_test_var = max(1, round(len(variants) * TEST_VARIANT_FRACTION))
    pools = {"test": draw_speakers(rng, sorted(variants[:n_test_var]))}
    pools["train"] = pools["dev"] = draw_speakers(rng, sorted(variants[n_test_var:]))
    labels = [split for split, n in split_sizes(num_utts).items() for _ in range(n)]
    rng.shuffle(labels)
    plans = []
    for index, split in enumerate(labels):
        plans.append(UttPlan(
            index=index, split=split, speaker=rng.choice(pools[split]),
            words=tuple(generate_sentence(rng)), pitch_range=rng.randint(30, 80),
            pad_start_ms=rng.randint(50, 400), pad_end_ms=rng.randint(50, 300),
            peak=round(rng.uniform(0.3, 0.8), 4), noise_pole=round(rng.uniform(0.0, 0.95), 4)))
    return plans


def phone_spans(events: Iterable[espeak.PhonemeEvent], audio_ms: int) -> list[tuple[str, int, int]]:
    """Turn espeak phoneme events into ``(phone, start_ms, end_ms)`` spans, dropping pauses.

    A phone ends where the next event (pause included) starts, the last one at ``audio_ms``;
    stress marks are stripped and zero-length or pause phones left out.
    """
    events = list(events)
    spans = []
    for i, ev in enumerate(events):
        end = events[i + 1].start_ms if i + 1 < len(events) else audio_ms
        start, end = min(ev.start_ms, audio_ms), min(end, audio_ms)
        label = ev.name.lstrip("',%=")
        if not label or label.startswith("_") or end <= start:
            continue
        spans.append((label, start, end))
    return spans


def add_noise(signal: np.ndarray, snr_db: float, ref_power: float, pole: float,
              rng: np.random.Generator) -> np.ndarray:
    """``signal`` plus Gaussian noise low-passed by a one-pole filter, at ``snr_db`` below ``ref_power``."""
    from scipy.signal import lfilter

    noise = lfilter([1.0], [1.0, -pole], rng.standard_normal(len(signal)))
    noise *= math.sqrt(ref_power / 10 ** (snr_db / 10) / max(float(np.mean(noise ** 2)), 1e-12))
    return signal + noise


def to_16k(syn: espeak.Synthesis) -> np.ndarray:
    """espeak's samples as float64 at :data:`SAMPLE_RATE` (polyphase resampling)."""
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, syn.sample_rate)
    return resample_poly(syn.samples.astype(np.float64), SAMPLE_RATE // g, syn.sample_rate // g)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as clipped int16."""
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def render(plan: UttPlan, seed: int, noise_snr_db: float | None) -> tuple[np.ndarray, Rendered]:
    """Synthesize one planned utterance: 16 kHz int16 samples and its phone spans in seconds."""
    utt_seed = int(np.random.SeedSequence([seed, plan.index]).generate_state(1)[0])
    syn = espeak.synthesize(speech_markup(list(plan.words)), plan.speaker.voice, rate=plan.speaker.rate,
                            pitch=plan.speaker.pitch, pitch_range=plan.pitch_range, ssml=True,
                            seed=utt_seed & 0x7FFFFFFF)
    if syn.samples.size == 0 or not syn.events:
        raise DataError(f"espeak produced no audio for utterance {plan.utt_id} ({' '.join(plan.words)!r})")
    speech = to_16k(syn)
    speech *= plan.peak / max(float(np.max(np.abs(speech))), 1e-9)
    pad_start = plan.pad_start_ms * SAMPLE_RATE // 1000
    audio = np.concatenate([np.zeros(pad_start), speech, np.zeros(plan.pad_end_ms * SAMPLE_RATE // 1000)])
    if noise_snr_db is not None:
        rng = np.random.default_rng(np.random.SeedSequence([seed, plan.index, 1]))
        audio = add_noise(audio, noise_snr_db, float(np.mean(speech ** 2)), plan.noise_pole, rng)
    pcm = to_pcm16(audio)
    audio_ms = syn.samples.size * 1000 // syn.sample_rate
    spans = [(ph, (plan.pad_start_ms + s) / 1000, (plan.pad_start_ms + e) / 1000)
             for ph, s, e in phone_spans(syn.events, audio_ms)]
    return pcm, Rendered(plan.utt_id, len(pcm) / SAMPLE_RATE, spans)


def wav_path(out: Path, plan: UttPlan) -> Path:
    """Where the wav of ``plan`` lives under the corpus root ``out``."""
    return out / "wav" / plan.split / f"{plan.utt_id}.wav"


def write_wav(path: Path, pcm: np.ndarray) -> None:
    """Write 16 kHz int16 samples as a PCM WAV file, atomically."""
    import soundfile as sf

    with atomic_open(path, "wb") as f:
        sf.write(f, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")


def _render_and_write(job: tuple[Path, UttPlan, int, float | None]) -> Rendered:
    out, plan, seed, noise_snr_db = job
    pcm, rendered = render(plan, seed, noise_snr_db)
    write_wav(wav_path(out, plan), pcm)
    return rendered


def run_jobs(fn: Callable, jobs: list, nj: int, desc: str, unit: str, chunksize: int = 1) -> list:
    """``[fn(j) for j in jobs]`` in order, with ``nj`` spawned worker processes when ``nj > 1``."""
    from tqdm import tqdm

    progress = dict(total=len(jobs), desc=desc, unit=unit, file=sys.stderr, disable=None)
    if nj <= 1:
        return [fn(j) for j in tqdm(jobs, **progress)]
    with multiprocessing.get_context("spawn").Pool(nj) as pool:
        return list(tqdm(pool.imap(fn, jobs, chunksize=chunksize), **progress))


def _params(num_utts: int, seed: int, noise_snr_db: float | None) -> dict:
    return {"format_version": FORMAT_VERSION, "num_utts": num_utts, "seed": seed,
            "noise_snr_db": noise_snr_db, "sample_rate": SAMPLE_RATE}


def check_out_dir(out: Path, params: dict) -> bool:
    """True if ``out`` already holds this exact corpus; raise if it holds anything else."""
    done, pending = out / ".done", out / ".in_progress"
    for marker in (done, pending):
        if marker.exists():
            old = json.loads(marker.read_text())
            old = old.get("params") if marker is done else old
            if old != params:
                state = "a corpus" if marker is done else "an unfinished corpus"
                raise CorpusExistsError(f"{out} holds {state} made with {old}, not {params}; "
                                        f"remove {out} or choose another --out")
            return marker is done
    if out.exists() and any(out.iterdir()):
        raise CorpusExistsError(f"{out} exists and is not a synthetic corpus made by this tool; "
                                f"remove it or choose another --out")
    return False


def write_data_dir(ddir: Path, utts: list[tuple[str, Path, str, Rendered]]) -> None:
    """Kaldi files (wav.scp text utt2spk spk2utt utt2dur phone_ali) for ``(speaker, wav, text, rendered)``."""
    utts = sorted(utts, key=lambda u: u[3].utt_id.encode())
    write_kv(ddir / "wav.scp", [(r.utt_id, str(wav)) for _, wav, _, r in utts])
    write_kv(ddir / "text", [(r.utt_id, text) for _, _, text, r in utts])
    write_kv(ddir / "utt2spk", [(r.utt_id, spk) for spk, _, _, r in utts])
    write_kv(ddir / "utt2dur", [(r.utt_id, f"{r.duration:.4f}") for _, _, _, r in utts])
    write_kv(ddir / "phone_ali", [(r.utt_id, " ".join(f"{ph} {s:.3f} {e:.3f}" for ph, s, e in r.spans))
                                  for _, _, _, r in utts])
    by_spk: dict[str, list[str]] = {}
    for spk, _, _, r in utts:
        by_spk.setdefault(spk, []).append(r.utt_id)
    write_kv(ddir / "spk2utt", [(spk, " ".join(by_spk[spk])) for spk in sorted(by_spk, key=str.encode)])


def write_speaker_info(path: Path, speakers: dict[str, tuple[Speaker, str]]) -> None:
    """``<spk> <group> <espeak voice> <pitch> <rate>`` lines for ``{id: (speaker, group)}``, sorted."""
    write_kv(path, [(spk, f"{grp} {s.voice} {s.pitch} {s.rate}")
                    for spk, (s, grp) in sorted(speakers.items(), key=lambda kv: kv[0].encode())])


def make_corpus(out: str | Path, num_utts: int, seed: int = 0, noise_snr_db: float | None = 20.0,
                nj: int = 1, log: Callable[[str], None] = print) -> dict:
    """Generate the corpus under ``out`` (see the module docstring); a no-op if it is already there.

    Returns a summary: utterances per set and total seconds of audio.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    out = Path(out).resolve()
    params = _params(num_utts, seed, noise_snr_db)
    if check_out_dir(out, params):
        summary = json.loads((out / ".done").read_text())["summary"]
        log(f"{out} already holds this corpus ({summary['num_utts']} utterances); nothing to do")
        return summary
    plans = plan_corpus(num_utts, seed)
    pending = out / ".in_progress"
    if pending.exists():
        log(f"resuming unfinished corpus in {out}: regenerating (the output is deterministic)")
    with atomic_open(pending, "w") as f:
        json.dump(params, f)
    jobs = [(out, p, seed, noise_snr_db) for p in plans]
    results = run_jobs(_render_and_write, jobs, nj, "synth", "utt", chunksize=8)
    rendered = {r.utt_id: r for r in results}
    for split in SPLITS:
        write_data_dir(out / split, [(p.speaker.id, wav_path(out, p), " ".join(p.words), rendered[p.utt_id])
                                     for p in plans if p.split == split])
    write_speaker_info(out / "speaker_info",
                       {p.speaker.id: (p.speaker, "test" if p.split == "test" else "train") for p in plans})
    from importlib.metadata import version

    summary = dict(num_utts=num_utts, seconds=round(sum(r.duration for r in results), 3),
                   espeakng_loader=version("espeakng-loader"),
                   **{f"num_{s}": sum(p.split == s for p in plans) for s in SPLITS})
    with atomic_open(out / ".done", "w") as f:
        json.dump({"params": params, "summary": summary}, f, indent=1, sort_keys=True)
    pending.unlink()
    return summary


def read_phone_ali(path: str | Path) -> dict[str, list[tuple[str, float, float]]]:
    """Read a ``phone_ali`` file into ``{utt: [(phone, start_s, end_s), ...]}``."""
    result = {}
    for utt, rest in read_kv(path, allow_empty_value=True):
        fields = rest.split()
        if len(fields) % 3:
            raise DataError(f"{path}: utterance {utt} has {len(fields)} fields after the key, not a "
                            f"multiple of 3 (phone start end); regenerate the corpus")
        try:
            result[utt] = [(fields[i], float(fields[i + 1]), float(fields[i + 2]))
                           for i in range(0, len(fields), 3)]
        except ValueError as err:
            raise DataError(f"{path}: utterance {utt} has a non-numeric time ({err})") from None
    return result
