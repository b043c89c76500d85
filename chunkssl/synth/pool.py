"""A large synthetic pre-training pool and its labelled sets: long multi-prompt espeak-ng utterances.

One call makes one *part* in its own directory ``OUT``
(``python -m chunkssl.bin.make_synth_pool --out OUT --part pool --hours 6``)::

    OUT/wav/<utt>.wav          16 kHz mono 16-bit PCM
    OUT/data/                  Kaldi dir: wav.scp text utt2spk spk2utt utt2dur phone_ali (see corpus.py)
    OUT/speaker_info           <spk> <seen|heldout> <espeak voice> <pitch> <rate>
    OUT/shards/<k>.json        what each finished shard of utterances rendered (for resuming)
    OUT/.done                  JSON: the parameters and a summary, written last

Parts. ``pool`` (unlabelled pre-training audio), ``dev`` (validation) and ``labelled`` (fine-tuning)
are spoken by the *seen* voice variants, ``test`` by the *held-out* ones only. The split of variants
is fixed (:data:`VOICE_SPLIT_SEED`), not drawn from ``--seed``: a pre-training pool and a test set
made with different seeds can therefore never share a voice. Each part draws its own speakers (accent,
pitch, rate of its variants) and its own prompts from ``(seed, part)``, so the parts are fresh
utterances of each other; ``dev`` made twice with the same seed is the same bytes.

Utterances. Each one aims at a speech length drawn from :data:`TARGET_SECONDS` and is built from
prompts of :mod:`chunkssl.synth.sentences`, each spoken separately (own intonation range) and joined
with 150-600 ms pauses, until the target is reached; a prompt that would take the whole file past
:data:`MAX_SECONDS` is skipped for another. So nearly all files last 4-20 s. The prompts' words,
joined, are the transcript. Speech is scaled to a random peak, padded with silence, and mixed with
coloured Gaussian noise (see :func:`chunkssl.synth.corpus.add_noise`) at an SNR drawn per utterance
from :data:`SNR_DB` relative to the power of the spoken prompts.

Determinism and resuming. Every utterance is rendered from its own plan entry and seeds, so the bytes
do not depend on ``--nj``. Work is done in shards of :data:`SHARD_SIZE` utterances; a shard's JSON is
written after its wavs, so a rerun after a crash keeps finished shards and redoes the rest. A rerun
with the same parameters does nothing; other parameters on an existing ``OUT`` are refused. Two
processes asked for the same ``OUT`` at once take turns (a lock file beside it), so the second one
finds the part made.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from chunkssl.fileio import DataError, atomic_open
from chunkssl.synth import espeak
from chunkssl.synth.corpus import (SAMPLE_RATE, Rendered, Speaker, add_noise, check_out_dir, draw_speakers,
                                   phone_spans, run_jobs, to_16k, to_pcm16, usable_variants, write_data_dir,
                                   write_speaker_info, write_wav)
from chunkssl.synth.sentences import generate_sentence, speech_markup

FORMAT_VERSION = 1
PART_CODES = {"pool": 1, "dev": 2, "labelled": 3, "test": 4}  # mixed into every seed of a part
HELDOUT_PARTS = ("test",)
HELDOUT_FRACTION = 0.2
VOICE_SPLIT_SEED = 2024
SPEAKERS_PER_VARIANT = {"pool": 8, "dev": 2, "labelled": 4, "test": 4}
PITCH_RANGE = (20, 80)
RATE_RANGE = (120, 220)
TARGET_SECONDS = (4.0, 17.0)
MIN_SECONDS, MAX_SECONDS = 4.0, 20.0
PAUSE_MS = (150, 600)
SNR_DB = (10.0, 30.0)
SHARD_SIZE = 20
_MAX_SKIPS = 8  # prompts skipped for length before an utterance is closed as it is


@dataclass(frozen=True)
class PoolUtt:
    """One planned pool utterance: its speaker, target length and audio settings."""

    part: str
    index: int
    speaker: Speaker
    target_s: float
    snr_db: float
    pad_start_ms: int
    pad_end_ms: int
    peak: float
    noise_pole: float
    max_prompts: int = 0  # > 0: the utterance ends after this many prompts, whatever its target

    @property
    def utt_id(self) -> str:
        return f"{self.speaker.id}-{self.part}{self.index:06d}"


def child_seed(*keys: int) -> int:
    """A 31-bit seed derived from integer ``keys`` (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0]) & 0x7FFFFFFF


def voice_split() -> tuple[list[str], list[str]]:
    """(seen, held-out) voice variants, fixed by :data:`VOICE_SPLIT_SEED`, each sorted."""
    variants = usable_variants()
    random.Random(VOICE_SPLIT_SEED).shuffle(variants)
    n_held = max(1, round(len(variants) * HELDOUT_FRACTION))
    return sorted(variants[n_held:]), sorted(variants[:n_held])


def part_variants(part: str) -> list[str]:
    """The voice variants that speak ``part``."""
    if part not in PART_CODES:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PART_CODES)}")
    seen, held = voice_split()
    return held if part in HELDOUT_PARTS else seen


def plan_part(part: str, seed: int, seconds: float | None = None, num_utts: int | None = None,
              max_prompts: int = 0) -> list[PoolUtt]:
    """Plan ``num_utts`` utterances, or as many as it takes for their targets to sum to ``seconds``.

    ``max_prompts > 0`` caps the prompts of each utterance (short single-prompt utterances for
    fine-tuning); the targets then overstate the lengths, so the size must be given as ``num_utts``.
    """
    if (seconds is None) == (num_utts is None):
        raise ValueError("give exactly one of seconds and num_utts")
    if max_prompts < 0 or (max_prompts and seconds is not None):
        raise ValueError(f"max_prompts={max_prompts}: it must be >= 0, and a capped part is sized by num_utts")
    if (seconds is not None and seconds <= 0) or (num_utts is not None and num_utts < 1):
        raise ValueError(f"the size of part {part!r} must be positive (seconds={seconds}, num_utts={num_utts})")
    variants = part_variants(part)  # first: it names the parts when ``part`` is none of them
    rng = random.Random(child_seed(seed, PART_CODES[part]))
    speakers = draw_speakers(rng, variants, SPEAKERS_PER_VARIANT[part], PITCH_RANGE, RATE_RANGE)
    plans: list[PoolUtt] = []
    total = 0.0
    while (len(plans) < num_utts) if num_utts is not None else (total < seconds):
        target = round(rng.uniform(*TARGET_SECONDS), 3)
        plans.append(PoolUtt(
            part=part, index=len(plans), speaker=rng.choice(speakers), target_s=target,
            snr_db=round(rng.uniform(*SNR_DB), 2), pad_start_ms=rng.randint(50, 400),
            pad_end_ms=rng.randint(50, 300), peak=round(rng.uniform(0.3, 0.8), 4),
            noise_pole=round(rng.uniform(0.0, 0.95), 4), max_prompts=max_prompts))
        total += target
    return plans


def render_utt(u: PoolUtt, seed: int, noise: bool = True) -> tuple[np.ndarray, Rendered, str]:
    """Speak one planned utterance: int16 samples, its phone spans (seconds) and its transcript."""
    code = PART_CODES[u.part]
    rng = random.Random(child_seed(seed, code, u.index))
    pad_start = u.pad_start_ms * SAMPLE_RATE // 1000
    pad_end = u.pad_end_ms * SAMPLE_RATE // 1000
    room = int(MAX_SECONDS * SAMPLE_RATE) - pad_start - pad_end
    pieces: list[np.ndarray] = []  # prompts and the pauses between them
    prompts: list[np.ndarray] = []
    words: list[str] = []
    spans: list[tuple[str, float, float]] = []
    length = skips = k = 0
    while (length < u.target_s * SAMPLE_RATE and skips < _MAX_SKIPS
           and not (u.max_prompts and len(prompts) >= u.max_prompts)):
        prompt = generate_sentence(rng)
        pitch_range, pause = rng.randint(30, 80), rng.randint(*PAUSE_MS)
        syn = espeak.synthesize(speech_markup(prompt), u.speaker.voice, rate=u.speaker.rate,
                                pitch=u.speaker.pitch, pitch_range=pitch_range, ssml=True,
                                seed=child_seed(seed, code, u.index, k))
        k += 1
        if syn.samples.size == 0 or not syn.events:
            raise DataError(f"espeak produced no audio for utterance {u.utt_id} (prompt {' '.join(prompt)!r})")
        speech = to_16k(syn)
        gap = pause * SAMPLE_RATE // 1000 if pieces else 0
        if length + gap + len(speech) > room:
            skips += 1  # too long to fit: try a shorter prompt
            continue
        if gap:
            pieces.append(np.zeros(gap))
        start_s = (pad_start + length + gap) / SAMPLE_RATE
        audio_ms = syn.samples.size * 1000 // syn.sample_rate
        spans += [(ph, start_s + s / 1000, start_s + e / 1000) for ph, s, e in phone_spans(syn.events, audio_ms)]
        pieces.append(speech)
        prompts.append(speech)
        words += prompt
        length += gap + len(speech)
    if not words:
        raise DataError(f"utterance {u.utt_id}: no prompt fits in {MAX_SECONDS} s; this is a bug in the plan")
    speech = np.concatenate(pieces)
    scale = u.peak / max(float(np.max(np.abs(speech))), 1e-9)
    speech *= scale
    audio = np.concatenate([np.zeros(pad_start), speech, np.zeros(pad_end)])
    if noise:
        ref_power = float(np.mean(np.concatenate(prompts) ** 2)) * scale ** 2  # the prompts, not the pauses
        rng_noise = np.random.default_rng(np.random.SeedSequence([seed, code, u.index, 1]))
        audio = add_noise(audio, u.snr_db, ref_power, u.noise_pole, rng_noise)
    pcm = to_pcm16(audio)
    return pcm, Rendered(u.utt_id, len(pcm) / SAMPLE_RATE, spans), " ".join(words)


def _shard_path(out: Path, k: int) -> Path:
    return out / "shards" / f"{k:05d}.json"


def _wav(out: Path, utt_id: str) -> Path:
    return out / "wav" / f"{utt_id}.wav"


def _load_shard(out: Path, k: int, plans: list[PoolUtt]) -> list[dict] | None:
    """The records of a finished shard, or None if it must be (re)made."""
    path = _shard_path(out, k)
    if not path.exists():
        return None
    records = json.loads(path.read_text())
    if [r["utt"] for r in records] != [p.utt_id for p in plans] or not all(
            _wav(out, p.utt_id).exists() for p in plans):
        return None
    return records


def _render_shard(job: tuple[Path, int, list[PoolUtt], int, bool]) -> list[dict]:
    out, k, plans, seed, noise = job
    records = []
    for u in plans:
        pcm, rendered, text = render_utt(u, seed, noise)
        write_wav(_wav(out, u.utt_id), pcm)
        records.append({"utt": u.utt_id, "spk": u.speaker.id, "text": text, "dur": rendered.duration,
                        "spans": rendered.spans})
    with atomic_open(_shard_path(out, k), "w") as f:  # after the wavs: a shard file means all are there
        json.dump(records, f)
    return records


def part_params(part: str, seed: int, seconds: float | None, num_utts: int | None, noise: bool,
                max_prompts: int = 0) -> dict:
    """Everything that decides a part's bytes, as stored in its ``.done``."""
    extra = {"max_prompts": max_prompts} if max_prompts else {}  # absent when 0: older parts stay valid
    return {"format_version": FORMAT_VERSION, "part": part, "seed": seed, "seconds": seconds, **extra,
            "num_utts": num_utts, "noise_snr_db": list(SNR_DB) if noise else None,
            "sample_rate": SAMPLE_RATE, "variants": part_variants(part)}


@contextlib.contextmanager
def _locked(out: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive lock on ``.<out name>.lock`` beside ``out`` (waiting for another holder)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is making {out}; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def make_part(out: str | Path, part: str, seed: int = 0, seconds: float | None = None,
              num_utts: int | None = None, noise: bool = True, nj: int = 1,
              log: Callable[[str], None] = print, max_prompts: int = 0) -> dict:
    """Generate ``part`` under ``out`` (see the module docstring); a no-op if it is already there.

    Returns a summary: utterances, speakers, seconds of audio and the share within 4-20 s.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    out = Path(out).resolve()
    params = part_params(part, seed, seconds, num_utts, noise, max_prompts)
    plan_part(part, seed, seconds, num_utts, max_prompts)  # bad sizes fail here, before the lock
    with _locked(out, log):
        return _make_part(out, params, nj, log)


def _make_part(out: Path, params: dict, nj: int, log: Callable[[str], None]) -> dict:
    part, seed, noise = params["part"], params["seed"], params["noise_snr_db"] is not None
    seconds, num_utts = params["seconds"], params["num_utts"]
    if check_out_dir(out, params):
        summary = json.loads((out / ".done").read_text())["summary"]
        log(f"{out} already holds this part ({summary['num_utts']} utterances); nothing to do")
        return summary
    plans = plan_part(part, seed, seconds, num_utts, params.get("max_prompts", 0))
    pending = out / ".in_progress"
    if pending.exists():
        log(f"resuming unfinished part in {out}: finished shards are kept, the rest is made again")
    with atomic_open(pending, "w") as f:
        json.dump(params, f)
    shards = [plans[i:i + SHARD_SIZE] for i in range(0, len(plans), SHARD_SIZE)]
    done = {k: _load_shard(out, k, s) for k, s in enumerate(shards)}
    jobs = [(out, k, s, seed, noise) for k, s in enumerate(shards) if done[k] is None]
    for (_, k, _, _, _), records in zip(jobs, run_jobs(_render_shard, jobs, nj, f"synth {part}", "shard")):
        done[k] = records
    records = [r for k in range(len(shards)) for r in done[k]]
    write_data_dir(out / "data", [(r["spk"], _wav(out, r["utt"]), r["text"],
                                   Rendered(r["utt"], r["dur"], [tuple(s) for s in r["spans"]]))
                                  for r in records])
    group = "heldout" if part in HELDOUT_PARTS else "seen"
    write_speaker_info(out / "speaker_info", {p.speaker.id: (p.speaker, group) for p in plans})
    from importlib.metadata import version

    durations = [r["dur"] for r in records]
    summary = dict(num_utts=len(records), num_speakers=len({p.speaker.id for p in plans}),
                   seconds=round(sum(durations), 3), min_seconds=round(min(durations), 3),
                   max_seconds=round(max(durations), 3),
                   share_4_20s=round(float(np.mean([MIN_SECONDS <= d <= MAX_SECONDS for d in durations])), 4),
                   espeakng_loader=version("espeakng-loader"))
    with atomic_open(out / ".done", "w") as f:
        json.dump({"params": params, "summary": summary}, f, indent=1, sort_keys=True)
    pending.unlink()
    return summary
