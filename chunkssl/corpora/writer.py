"""Write Kaldi data dirs (wav.scp, text, utt2spk, spk2utt, optional segments) from utterance records."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from chunkssl.fileio import DataError, write_kv


@dataclass(frozen=True)
class Utterance:
    """One utterance: id, speaker, audio (path or ``cmd |``), transcript, optional segment of a recording."""

    utt_id: str
    speaker: str
    audio: str
    text: str | None  # None for unlabelled audio (SSL): no text file is written
    recording: str | None = None  # with start/end: the segment's recording id (audio is the recording's)
    start: float | None = None
    end: float | None = None
    extra: tuple[tuple[str, str], ...] = ()  # other per-utterance files, e.g. (("text.fr", "bonjour"),)


def write_data_dir(out_dir: str | os.PathLike, utts: Iterable[Utterance]) -> int:
    """Write a sorted Kaldi data dir and return its number of utterances.

    Utterance ids must start with the speaker id (Kaldi's rule, so that sorting by utterance
    also sorts by speaker); duplicates are an error naming the id.
    """
    out = Path(out_dir)
    by_id: dict[str, Utterance] = {}
    for u in utts:
        if u.utt_id in by_id:
            raise DataError(f"{out}: duplicate utterance id {u.utt_id!r}; ids must be unique within a set")
        if not u.utt_id.startswith(u.speaker):
            raise DataError(f"{out}: utterance id {u.utt_id!r} must start with its speaker id {u.speaker!r}")
        if any(c.isspace() for c in u.utt_id + u.speaker):
            raise DataError(f"{out}: utterance/speaker id {u.utt_id!r}/{u.speaker!r} contains whitespace")
        by_id[u.utt_id] = u
    if not by_id:
        raise DataError(f"{out}: no utterances to write; check the corpus path")
    ids = sorted(by_id)  # Python's str order equals LC_ALL=C order for ASCII ids
    out.mkdir(parents=True, exist_ok=True)
    utt_list = [by_id[i] for i in ids]
    labelled = [u for u in utt_list if u.text is not None]
    if labelled and len(labelled) != len(utt_list):
        raise DataError(f"{out}: some utterances have a transcript and some have none (text=None)")
    if labelled:
        write_kv(out / "text", [(u.utt_id, u.text) for u in utt_list])
    elif (out / "text").exists():
        (out / "text").unlink()
    write_kv(out / "utt2spk", [(u.utt_id, u.speaker) for u in utt_list])
    spk2utt: dict[str, list[str]] = defaultdict(list)
    for u in utt_list:
        spk2utt[u.speaker].append(u.utt_id)
    write_kv(out / "spk2utt", [(s, " ".join(spk2utt[s])) for s in sorted(spk2utt)])
    segmented = [u for u in utt_list if u.recording is not None]
    if segmented and len(segmented) != len(utt_list):
        raise DataError(f"{out}: mix of segmented and whole-file utterances; give every utterance a recording")
    if segmented:
        write_kv(out / "segments", [(u.utt_id, f"{u.recording} {u.start:.3f} {u.end:.3f}") for u in utt_list])
        recs = {}
        for u in utt_list:
            recs.setdefault(u.recording, u.audio)
        write_kv(out / "wav.scp", sorted(recs.items()))
    else:
        write_kv(out / "wav.scp", [(u.utt_id, u.audio) for u in utt_list])
        stale = out / "segments"
        if stale.exists():
            stale.unlink()
    extra_names = sorted({name for u in utt_list for name, _ in u.extra})
    for name in extra_names:
        write_kv(out / name, [(u.utt_id, dict(u.extra)[name]) for u in utt_list if name in dict(u.extra)])
    return len(utt_list)
