"""English -> French speech translation corpus: English prompts spoken by espeak-ng, French by rules.

Same speakers, splits, audio and layout as :mod:`chunkssl.synth.corpus` (test voices never heard in
train or dev), with the prompts of :mod:`chunkssl.synth.parallel` in place of the AN4-like ones,
and the texts in the convention of the ST recipes (``chunkssl.corpora.libritrans``, st.sh)::

    DIR/{train,dev,test}/text      <utt> <ENGLISH SOURCE>     (the ASR transcript, upper case)
    DIR/{train,dev,test}/text.en   <utt> <ENGLISH SOURCE>     (the same, under its language code)
    DIR/{train,dev,test}/text.fr   <utt> <french target>      (the translation)
    DIR/{train,dev,test}/kind      <utt> <prompt kind>        (date, time, action, ...)

plus wav.scp, utt2spk, spk2utt, utt2dur, phone_ali, DIR/speaker_info and DIR/.done as in
:mod:`chunkssl.synth.corpus`. Speakers, splits and audio settings come from
:func:`~chunkssl.synth.corpus.plan_corpus` (``seed``); the prompt pairs from
:func:`~chunkssl.synth.parallel.generate_pairs` (``seed``). Same arguments, same bytes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

from chunkssl.fileio import atomic_open, write_kv
from chunkssl.synth.corpus import (SPLITS, Rendered, UttPlan, check_out_dir, plan_corpus, render, run_jobs,
                                   wav_path, write_data_dir, write_speaker_info, write_wav)
from chunkssl.synth.parallel import Pair, generate_pairs

FORMAT_VERSION = 1
SRC_LANG, TGT_LANG = "en", "fr"


def plan_parallel(num_utts: int, seed: int) -> list[tuple[UttPlan, Pair]]:
    """The corpus plan of ``seed`` with each utterance's words replaced by an English/French pair."""
    plans = plan_corpus(num_utts, seed)
    pairs = generate_pairs(num_utts, seed)
    return [(dataclasses.replace(plan, words=pair.en), pair) for plan, pair in zip(plans, pairs)]


def _render_job(job: tuple[Path, UttPlan, int, float | None]) -> Rendered:
    out, plan, seed, noise_snr_db = job
    pcm, rendered = render(plan, seed, noise_snr_db)
    write_wav(wav_path(out, plan), pcm)
    return rendered


def make_parallel_corpus(out: str | Path, num_utts: int, seed: int = 0, noise_snr_db: float | None = 20.0,
                         nj: int = 1, log: Callable[[str], None] = print) -> dict:
    """Generate the ST corpus under ``out`` (see the module docstring); a no-op if it is already there.

    Returns a summary: utterances per set, seconds of audio, and prompts per kind.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    out = Path(out).resolve()
    params = {"format_version": FORMAT_VERSION, "kind": "parallel en-fr", "num_utts": num_utts, "seed": seed,
              "noise_snr_db": noise_snr_db}
    if check_out_dir(out, params):
        summary = json.loads((out / ".done").read_text())["summary"]
        log(f"{out} already holds this corpus ({summary['num_utts']} utterances); nothing to do")
        return summary
    planned = plan_parallel(num_utts, seed)
    pending = out / ".in_progress"
    if pending.exists():
        log(f"resuming unfinished corpus in {out}: regenerating (the output is deterministic)")
    with atomic_open(pending, "w") as f:
        json.dump(params, f)
    results = run_jobs(_render_job, [(out, plan, seed, noise_snr_db) for plan, _ in planned], nj,
                       "synth en-fr", "utt", chunksize=8)
    rendered = {r.utt_id: r for r in results}
    for split in SPLITS:
        rows = [(plan, pair) for plan, pair in planned if plan.split == split]
        write_data_dir(out / split, [(plan.speaker.id, wav_path(out, plan), " ".join(pair.en),
                                      rendered[plan.utt_id]) for plan, pair in rows])
        rows.sort(key=lambda row: row[0].utt_id.encode())
        write_kv(out / split / f"text.{SRC_LANG}", [(plan.utt_id, " ".join(pair.en)) for plan, pair in rows])
        write_kv(out / split / f"text.{TGT_LANG}", [(plan.utt_id, pair.fr) for plan, pair in rows])
        write_kv(out / split / "kind", [(plan.utt_id, pair.kind) for plan, pair in rows])
    write_speaker_info(out / "speaker_info", {plan.speaker.id: (plan.speaker, "test" if plan.split == "test"
                                                                else "train") for plan, _ in planned})
    kinds: dict[str, int] = {}
    for _, pair in planned:
        kinds[pair.kind] = kinds.get(pair.kind, 0) + 1
    summary = dict(num_utts=num_utts, seconds=round(sum(r.duration for r in results), 3),
                   kinds=dict(sorted(kinds.items())),
                   **{f"num_{s}": sum(plan.split == s for plan, _ in planned) for s in SPLITS})
    with atomic_open(out / ".done", "w") as f:
        json.dump({"params": params, "summary": summary}, f, indent=1, sort_keys=True)
    pending.unlink()
    return summary
