"""Load and validate a Kaldi data directory (wav.scp, text, utt2spk, spk2utt, optional segments).

Every problem found is reported as one line naming the file and the utterance (or speaker /
recording), with a hint on how to fix it. ``validate`` collects all of them instead of stopping
at the first, so one run shows everything that needs fixing. A directory holding ``feats.scp``
instead of ``wav.scp`` (what compute_fbank writes) is also accepted.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chunkssl.audio import DEFAULT_SAMPLE_RATE, Segment, cut_segment, load_utterance, read_audio
from chunkssl.fileio import DataError

FIX = "run utils/fix_data_dir.sh to keep only utterances present in every file"
SORT = "sort it with 'LC_ALL=C sort' (utils/fix_data_dir.sh does this)"

BOM = b"\xef\xbb\xbf"  # what some editors put at the start of a UTF-8 file
FIELDS = {"utt2spk": "utterance speaker", "segments": "utterance recording start end"}  # fixed-field files

Rows = list[tuple[int, str, str]]  # (line number, key, rest of line)


def _read_rows(path: Path) -> Rows:
    """Read ``key value...`` lines leniently: empty values are kept so they can be reported.

    A UTF-8 byte-order mark is dropped from the first key (``_check_rows`` reports it), so that it is
    reported once as what it is, not as an unsorted or unknown id in every file that lists the utterance.
    """
    rows = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            rows.append((lineno, parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return rows


def _starts_with_bom(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(BOM)) == BOM


def _spaced_id(name: str, key: str, value: str) -> str | None:
    """The whole id of a line of a fixed-field file whose id has spaces in it, or None.

    utt2spk and segments lines have a fixed number of fields; a wav.scp value is one path or a
    command ending in '|' (a path with spaces that exists is a path).
    """
    fields = [key, *value.split()]
    if name in FIELDS and len(fields) > len(FIELDS[name].split()):
        return " ".join(fields[:len(fields) - len(FIELDS[name].split()) + 1])
    if name == "wav.scp" and len(fields) > 2 and not value.endswith("|") and not os.path.exists(value):
        return " ".join(fields[:-1])
    return None


def _spaced_ids(rows: dict[str, Rows]) -> set[str]:
    """Ids with spaces found in the fixed-field files (text and spk2utt lines are checked against them)."""
    return {sid for name in ("wav.scp", "segments", "utt2spk") for _, key, value in rows.get(name, [])
            if (sid := _spaced_id(name, key, value))}


def _space_in_id(name: str, key: str, value: str, spaced: frozenset[str] | set[str]) -> str | None:
    """Why a line must hold an id with a space in it, or None."""
    n = len(value.split()) + 1
    if _spaced_id(name, key, value):
        if name in FIELDS:
            return f"has {n} fields, {name} expects {len(FIELDS[name].split())} ({FIELDS[name]!r})"
        return f"has {n} fields and is neither one path nor a command ending in '|'"
    line = f"{key} {value}"
    for sid in spaced:  # free-text files (text, spk2utt): the id is known from the fixed-field files
        if line == sid or line.startswith(sid + " "):
            return f"starts with {sid!r}, an id with spaces in the other files"
    return None


def _check_rows(path: Path, rows: Rows, what: str, empty_msg: str,
                spaced: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Per-file checks: a byte-order mark, ids with spaces, empty values, duplicate keys, keys not in LC_ALL=C order."""
    problems = []
    if rows and _starts_with_bom(path):
        problems.append(f"{path}:1: {what} id on line 1 starts with a UTF-8 byte-order mark: save the file "
                        f"without BOM (sed -i '1s/^\\xEF\\xBB\\xBF//' {path})")
    seen: dict[str, int] = {}
    previous = None
    for lineno, key, value in rows:
        why = _space_in_id(path.name, key, value, spaced)
        if why:  # the key is only the id's first word: sorting and duplicate hints would mislead
            problems.append(f"{path}:{lineno}: line {lineno} of {path.name} {why}: ids cannot contain spaces; "
                            f"replace them (e.g. by '_') in every file of the data dir")
            continue
        if not value:
            problems.append(f"{path}:{lineno}: {what} {key!r} {empty_msg}")
        if key in seen:
            problems.append(f"{path}:{lineno}: {what} {key!r} is duplicated (first on line {seen[key]}); "
                            f"remove the extra line (utils/fix_data_dir.sh keeps the first)")
        else:
            seen[key] = lineno
        # Python compares str by code point, which is the byte order LC_ALL=C uses on UTF-8.
        if previous is not None and key < previous:
            problems.append(f"{path}:{lineno}: {what} {key!r} comes after {previous!r}, so the file "
                            f"is not sorted; {SORT}")
        previous = key
    return problems


def _parse_segment(value: str) -> Segment:
    """Parse ``rec start end`` from a segments line."""
    fields = value.split()
    if len(fields) != 3:
        raise ValueError(f"expected 'recording start end', got {value!r}")
    return Segment(fields[0], float(fields[1]), float(fields[2]))


def _mismatch(keys: list[str], other: dict, here: Path, there: Path, what: str = "utterance") -> list[str]:
    """Report keys of ``here`` that ``there`` lacks."""
    return [f"{there}: {what} {k!r} is in {here.name} but missing from {there.name}; {FIX}"
            for k in keys if k not in other]


def _check_segments(d: Path, rows: Rows, wav: dict[str, str]) -> tuple[dict[str, Segment], list[str]]:
    """Parse the segments file, checking times and that each recording is in wav.scp."""
    segments, problems = {}, []
    path = d / "segments"
    for lineno, utt, value in rows:
        try:
            seg = _parse_segment(value)
        except ValueError as e:
            problems.append(f"{path}:{lineno}: utterance {utt!r}: bad segment line ({e}); fix the segments file")
            continue
        if seg.start < 0:
            problems.append(f"{path}:{lineno}: utterance {utt!r}: segment start {seg.start} is negative; "
                            f"fix the segments file")
        elif seg.end != -1 and seg.end <= seg.start:
            problems.append(f"{path}:{lineno}: utterance {utt!r}: segment end {seg.end} is not after its start "
                            f"{seg.start}; fix the line or remove the utterance, then {FIX}")
        if seg.recording not in wav:
            problems.append(f"{path}:{lineno}: utterance {utt!r}: recording {seg.recording!r} is not in "
                            f"{d / 'wav.scp'}; add it or remove the utterance, then {FIX}")
        segments.setdefault(utt, seg)
    return segments, problems


def _check_audio(d: Path, utts: list[str], wav: dict[str, str], segments: dict[str, Segment] | None) -> list[str]:
    """Decode every recording once and check each utterance (or segment) against it."""
    from tqdm import tqdm

    problems = []
    wav_path, seg_path = str(d / "wav.scp"), str(d / "segments")
    by_recording: dict[str, list[str]] = defaultdict(list)
    for utt in utts:
        if segments is None:
            by_recording[utt].append(utt)
        elif utt in segments and segments[utt].recording in wav:
            by_recording[segments[utt].recording].append(utt)
    for rec in tqdm(sorted(by_recording), desc=f"checking audio in {d}", unit="rec", disable=None, file=sys.stderr):
        users = by_recording[rec]
        try:
            wave, rate = read_audio(wav[rec], users[0] if segments is None else None, wav_path)
        except DataError as e:
            msg = str(e)
            if segments is not None:
                msg = f"recording {rec!r} (used by utterance(s) {', '.join(map(repr, users))}): {msg}"
            problems.append(msg)
            continue
        for utt in users if segments is not None else []:
            try:
                cut_segment(wave, rate, segments[utt], utt, seg_path)
            except DataError as e:
                problems.append(str(e))
    return problems


def _check_feats(d: Path, rows: Rows) -> list[str]:
    """Check that each feats.scp entry can be read."""
    import kaldiio

    problems = []
    for lineno, utt, value in rows:
        try:
            mat = kaldiio.load_mat(value)
            if mat.size == 0:
                raise ValueError("empty matrix")
            if not np.isfinite(mat).all():
                raise ValueError("it holds NaN or inf values")
        except Exception as e:  # kaldiio raises many types for a bad offset or a missing ark
            problems.append(f"{d / 'feats.scp'}:{lineno}: utterance {utt!r}: cannot read features {value!r} "
                            f"({e}); relative paths are resolved from the current directory, "
                            f"else recompute the features")
    return problems


def validate(data_dir: str | Path, check_audio: bool = True, check_text: bool = True) -> list[str]:
    """Return every problem found in a Kaldi data dir (empty list = OK).

    ``check_audio=False`` skips decoding the audio; ``check_text=False`` ignores ``text`` entirely
    (unlabeled data), like Kaldi's ``--no-text``.
    """
    d = Path(data_dir)
    if not d.is_dir():
        return [f"{d}: not a directory; give the path of a Kaldi data dir (with wav.scp, text, utt2spk, spk2utt)"]
    names = ["wav.scp", "segments", "feats.scp", "text", "utt2spk", "spk2utt"]
    rows = {n: _read_rows(d / n) for n in names if (d / n).is_file() and (n != "text" or check_text)}
    problems = []
    if "wav.scp" not in rows and "feats.scp" not in rows:
        problems.append(f"{d}: neither wav.scp nor feats.scp exists; create wav.scp (utterance-id audio-path)")
    if "segments" in rows and "wav.scp" not in rows:
        problems.append(f"{d}: segments exists but wav.scp does not; add wav.scp with the recordings")
    if check_text and "text" not in rows:
        problems.append(f"{d / 'text'}: missing; add the transcripts (or pass --no-text for unlabeled data)")
    for n, hint in (("utt2spk", "create it (use 'utt utt' lines if speakers are unknown)"),
                    ("spk2utt", "create it from utt2spk with utils/utt2spk_to_spk2utt.py")):
        if n not in rows:
            problems.append(f"{d / n}: missing; {hint}")
    empty = {"text": ("utterance", "has an empty transcript; give it one, or run utils/fix_data_dir.sh "
                      "to drop the utterance"),
             "wav.scp": ("recording" if "segments" in rows else "utterance", "has no audio path or command; "
                         f"fix the line or remove it, then {FIX}"),
             "segments": ("utterance", "has no recording/start/end; fix the line"),
             "feats.scp": ("utterance", "has no feature path; recompute the features"),
             "utt2spk": ("utterance", "has no speaker; give it one (its own id if unknown)"),
             "spk2utt": ("speaker", "has no utterances; regenerate spk2utt from utt2spk")}
    spaced = _spaced_ids(rows)
    for n, r in rows.items():
        problems += _check_rows(d / n, r, *empty[n], spaced)
    if problems and not any(n in rows for n in ("wav.scp", "feats.scp")):
        return problems

    wav = {k: v for _, k, v in rows.get("wav.scp", [])}
    segments = None
    if "segments" in rows:
        segments, seg_problems = _check_segments(d, rows["segments"], wav)
        problems += seg_problems
        main = "segments"
    else:
        main = "wav.scp" if "wav.scp" in rows else "feats.scp"
    utts = list(dict.fromkeys(k for _, k, _ in rows[main]))
    utt_set = set(utts)
    main_path = d / main

    if "feats.scp" in rows and main != "feats.scp":
        feats = {k for _, k, _ in rows["feats.scp"]}
        problems += _mismatch(utts, feats, main_path, d / "feats.scp")
        problems += _mismatch([k for _, k, _ in rows["feats.scp"]], utt_set, d / "feats.scp", main_path)
    for n in ("text", "utt2spk"):
        if n in rows:
            other = {k: v for _, k, v in rows[n]}
            problems += _mismatch(utts, other, main_path, d / n)
            problems += _mismatch(list(other), utt_set, d / n, main_path)

    if "utt2spk" in rows and "spk2utt" in rows:
        problems += _check_spk2utt(d, rows["utt2spk"], rows["spk2utt"])

    if check_audio:
        if "wav.scp" in rows:
            problems += _check_audio(d, utts, wav, segments)
        elif "feats.scp" in rows:
            problems += _check_feats(d, rows["feats.scp"])
    return problems


def _check_spk2utt(d: Path, utt2spk_rows: Rows, spk2utt_rows: Rows) -> list[str]:
    """spk2utt must be exactly the inverse of utt2spk."""
    problems = []
    hint = "regenerate it from utt2spk with utils/utt2spk_to_spk2utt.py (or run utils/fix_data_dir.sh)"
    utt2spk = {u: s for _, u, s in utt2spk_rows}
    listed: dict[str, str] = {}
    for lineno, spk, value in spk2utt_rows:
        for utt in value.split():
            where = f"{d / 'spk2utt'}:{lineno}: utterance {utt!r}"
            if utt in listed:
                problems.append(f"{where} is listed under speaker {listed[utt]!r} and again under {spk!r}; {hint}")
            elif utt2spk.get(utt) != spk:
                has = f"speaker {utt2spk[utt]!r}" if utt in utt2spk else "no line"
                problems.append(f"{where} is listed under speaker {spk!r} but utt2spk gives it {has}; {hint}")
            listed.setdefault(utt, spk)
    for utt, spk in utt2spk.items():
        if utt not in listed:
            problems.append(f"{d / 'spk2utt'}: utterance {utt!r} (speaker {spk!r} in utt2spk) is missing; {hint}")
    return problems


@dataclass
class DataDir:
    """A loaded Kaldi data dir; ``wav`` is keyed by recording when ``segments`` exists, else by utterance."""

    path: Path
    utt_ids: list[str]
    wav: dict[str, str]
    utt2spk: dict[str, str]
    spk2utt: dict[str, list[str]]
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    _recording: tuple[str, tuple[np.ndarray, int]] | None = field(default=None, repr=False)

    def wav_key(self, utt_id: str) -> str:
        """The wav.scp key holding this utterance's audio."""
        return self.segments[utt_id].recording if self.segments is not None else utt_id

    def load_audio(self, utt_id: str, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
        """Float32 mono audio of one utterance at ``sample_rate`` (the last recording read is cached)."""
        key = self.wav_key(utt_id)
        segment = self.segments[utt_id] if self.segments is not None else None
        recording = None
        if segment is not None:
            if self._recording is None or self._recording[0] != key:
                self._recording = None  # drop the old one before decoding the next
                self._recording = (key, read_audio(self.wav[key], utt_id, str(self.path / "wav.scp")))
            recording = self._recording[1]
        return load_utterance(utt_id, self.wav[key], segment, sample_rate, str(self.path / "wav.scp"),
                              recording, str(self.path / "segments"))


def load_data_dir(data_dir: str | Path, require_text: bool = False) -> DataDir:
    """Load a data dir after checking its files agree (audio is not decoded); raise DataError listing problems."""
    d = Path(data_dir)
    # an optional text must still agree with the other files when it is there
    problems = validate(d, check_audio=False, check_text=require_text or (d / "text").is_file())
    if not problems and not (d / "wav.scp").is_file():
        problems.append(f"{d / 'wav.scp'}: missing; this step needs audio (utt-id path or 'cmd |' lines)")
    if problems:
        raise DataError(f"data dir {d} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    wav = dict((k, v) for _, k, v in _read_rows(d / "wav.scp"))
    segments = None
    if (d / "segments").is_file():
        segments = {u: _parse_segment(v) for _, u, v in _read_rows(d / "segments")}
        utt_ids = list(segments)
    else:
        utt_ids = list(wav)
    text = dict((k, v) for _, k, v in _read_rows(d / "text")) if (d / "text").is_file() else None
    utt2spk = dict((k, v) for _, k, v in _read_rows(d / "utt2spk"))
    spk2utt = {k: v.split() for _, k, v in _read_rows(d / "spk2utt")}
    return DataDir(d, utt_ids, wav, utt2spk, spk2utt, text, segments)
