"""Compute 80-dim Kaldi fbank features and global CMVN stats for a data dir, optionally in parallel.

    python -m chunkssl.bin.compute_fbank --data-dir data/train --out-dir dump/fbank/train [--nj 4]

--out-dir receives feats.ark (nj=1) or feats.JOB.ark (one per job), feats.scp (sorted),
utt2num_frames, cmvn_stats.npz (ESPnet GlobalMVN stats_file), cmvn.ark (Kaldi stats, key
"global"), feat_dim, and text/utt2spk/spk2utt restricted to the utterances kept, so it is a data
dir itself (no wav.scp/segments: features are per utterance). Paths inside feats.scp are written
as given on the command line (relative paths are relative to the current directory, as in Kaldi).

--raw (training on raw audio, ``--feats-type raw``) computes the same fbank for the statistics but
writes no archive: audio.scp (chunkssl.audio_scp: utterance, segment times, wav.scp entry) takes the
place of feats.scp, with utt2num_samples (at --sample-rate) beside utt2num_frames; the disk used is
that of the manifests.

With --nj N > 1 the utterance list is split with utils/split_scp.py into OUT/splitN/JOB/utts.scp
and `run.pl JOB=1:N OUT/log/fbank.JOB.log python -m chunkssl.bin.compute_fbank --job-list ...`
computes each part; the results are then merged. With --nj 1 everything runs in this process.

Crash safety and reruns: every ark and side file is written under a temp name and renamed when
complete; a run first deletes feats.scp and the `.done` stamp, and writes feats.scp last and then
`.done` (a fingerprint of the input files and options). A rerun whose stamp matches is a no-op;
any other rerun (killed run, changed inputs or options, --force) redoes everything exactly.
Changes inside audio files are not detected: use --force after editing audio in place.

Bad utterances (missing/corrupt/empty/truncated audio, NaN or inf samples, failing pipe) stop the run with an error naming the
utterance and file, unless --skip-bad, which logs a warning and leaves them out. Utterances shorter
than one 25 ms frame are always skipped with a warning. Skipped utterances are listed, with the
reason, in OUT/skipped_utts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chunkssl import audio_scp
from chunkssl.audio import DEFAULT_SAMPLE_RATE
from chunkssl.datadir import DataDir, load_data_dir
from chunkssl.features import CmvnStats, FbankOptions, TooShortError, fbank
from chunkssl.fileio import (DataError, atomic_open, find_tool, job_launcher, job_log_tail, read_kv, run_cli,
                             run_job_array, write_kv)

PROG = "compute_fbank"


@dataclass
class JobResult:
    """What one job produced: scp entries, frame counts, CMVN sums and skipped utterances."""

    stats: CmvnStats
    scp: list[tuple[str, str]] = field(default_factory=list)
    frames: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    samples: list[tuple[str, str]] = field(default_factory=list)


def _warn(msg: str) -> None:
    print(f"{PROG}: warning: {msg}", file=sys.stderr, flush=True)


def compute_job(data: DataDir, utt_ids: list[str], ark: Path | None, sample_rate: int, opts: FbankOptions,
                skip_bad: bool = False) -> JobResult:
    """Compute features of ``utt_ids`` into ``ark`` (renamed into place only when all are written).

    ``ark`` None (``--raw``): the features only feed the statistics; the result lists audio.scp lines.
    """
    import kaldiio
    from tqdm import tqdm

    result = JobResult(CmvnStats(opts.num_mel_bins))
    wav_scp = data.path / "wav.scp"
    segments = data.segments or {}
    with (atomic_open(ark, "wb") if ark is not None else open(os.devnull, "wb")) as f:
        desc = f"fbank {ark.name}" if ark is not None else f"fbank stats {data.path}"
        for utt in tqdm(utt_ids, desc=desc, unit="utt", disable=None, file=sys.stderr):
            try:
                wave = data.load_audio(utt, sample_rate)
                feats = fbank(wave, sample_rate, opts).numpy()
            except TooShortError as e:
                where = f"{wav_scp}: utterance {utt!r} ({data.wav[data.wav_key(utt)]})"
                _warn(f"skipping {where}: {e}")
                result.skipped.append((utt, f"too short: {e}"))
                continue
            except DataError as e:
                if not skip_bad:
                    raise DataError(f"{e}\n(or rerun {PROG} with --skip-bad to leave bad utterances out)") from e
                _warn(f"skipping bad utterance: {e}")
                result.skipped.append((utt, str(e).replace("\n", " ")))
                continue
            if ark is None:
                line = audio_scp.format_line(utt, data.wav[data.wav_key(utt)], segments.get(utt))
                result.scp.append((utt, line.split(" ", 1)[1]))
                result.samples.append((utt, str(len(wave))))
            else:
                f.write(f"{utt} ".encode("utf-8"))
                result.scp.append((utt, f"{ark}:{f.tell()}"))
                kaldiio.save_mat(f, np.ascontiguousarray(feats, dtype=np.float32))
            result.frames.append((utt, str(feats.shape[0])))
            result.stats.add(feats)
    return result


def save_job_result(result: JobResult, job_dir: Path) -> None:
    """Write a job's side outputs; its feats.scp goes last and marks the job complete."""
    write_kv(job_dir / "utt2num_frames", result.frames)
    write_kv(job_dir / "utt2num_samples", result.samples)
    write_kv(job_dir / "skipped_utts", result.skipped)
    result.stats.save_npz(job_dir / "cmvn_stats.npz")
    write_kv(job_dir / "feats.scp", result.scp)


def load_job_result(job_dir: Path) -> JobResult:
    """Read back what :func:`save_job_result` wrote."""
    def kv(name: str) -> list[tuple[str, str]]:
        path = job_dir / name
        return read_kv(path) if path.stat().st_size else []

    return JobResult(CmvnStats.load_npz(job_dir / "cmvn_stats.npz"), kv("feats.scp"), kv("utt2num_frames"),
                     kv("skipped_utts"), kv("utt2num_samples"))


def fingerprint(data_dir: Path, sample_rate: int, opts: FbankOptions, nj: int, skip_bad: bool,
                raw: bool = False) -> str:
    """Digest of the data dir's files and the options: equal digests mean a rerun would redo the same work."""
    h = hashlib.sha256()
    for name in ("wav.scp", "segments", "text", "utt2spk", "spk2utt"):
        path = data_dir / name
        h.update(f"{name}\0".encode())
        h.update(path.read_bytes() if path.is_file() else b"<absent>")
    options = {"sample_rate": sample_rate, "fbank": opts.as_dict(), "nj": nj, "skip_bad": skip_bad,
               "data_dir": str(data_dir.resolve()), "raw": raw}
    return json.dumps({"inputs_sha256": h.hexdigest(), **options}, sort_keys=True)


def run_parallel(args: argparse.Namespace, data: DataDir, out: Path, nj: int) -> list[JobResult]:
    """Split the utterances, run one job per part through run.pl, and read the results back."""
    cmd = job_launcher(args.cmd)
    split_dir = out / f"split{nj}"
    shutil.rmtree(split_dir, ignore_errors=True)  # stale job results must never be merged
    split_dir.mkdir(parents=True)
    write_kv(split_dir / "utts.scp", [(u, data.wav_key(u)) for u in data.utt_ids])
    parts = [split_dir / str(j) / "utts.scp" for j in range(1, nj + 1)]
    for p in parts:
        p.parent.mkdir()
    split = subprocess.run([sys.executable, find_tool("split_scp.py", cmd[0]), str(split_dir / "utts.scp"),
                            *map(str, parts)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if split.returncode != 0:
        raise RuntimeError(f"split_scp.py failed splitting {split_dir / 'utts.scp'}: {split.stderr.strip()}")

    job = [sys.executable, "-m", "chunkssl.bin.compute_fbank", "--data-dir", str(args.data_dir),
           "--out-dir", str(out), "--job-list", str(split_dir / "JOB" / "utts.scp"),
           "--ark", str(out / "feats.JOB.ark"), "--sample-rate", str(args.sample_rate), "--dither", str(args.dither)]
    if args.skip_bad:
        job.append("--skip-bad")
    if args.raw:
        job.append("--raw")
    log = out / "log" / "fbank.JOB.log"
    status = run_job_array(cmd, nj, log, job)
    failed = [j for j in range(1, nj + 1) if not (split_dir / str(j) / "feats.scp").is_file()]
    if status != 0 or failed:
        # run.pl's header and footer lines start with '#'; the job's own error is what matters
        details = [f"job {j} ({str(log).replace('JOB', str(j))}):\n    "
                   + "\n    ".join(job_log_tail(log, j) or ["(no log)"]) for j in failed]
        raise DataError(f"{len(failed) or 'some'} of {nj} feature jobs failed (run.pl exit status "
                        f"{status}):\n  " + "\n  ".join(details))
    return [load_job_result(p.parent) for p in parts]


def finish(out: Path, data: DataDir, results: list[JobResult], opts: FbankOptions,
           raw: bool = False) -> tuple[int, int, int]:
    """Merge job results into out-dir; feats.scp (audio.scp with ``raw``) is written last.

    Returns (utts, frames, skipped).
    """
    stats = CmvnStats(opts.num_mel_bins)
    scp, frames, skipped, samples = [], [], [], []
    for r in results:
        stats.merge(r.stats)
        scp += r.scp
        frames += r.frames
        skipped += r.skipped
        samples += r.samples
    if not scp:
        raise DataError(f"no features were computed for {data.path} (all {len(skipped)} utterances were "
                        f"skipped; see the warnings above)")
    kept = {u for u, _ in scp}
    write_kv(out / "utt2num_frames", sorted(frames))
    stats.save_npz(out / "cmvn_stats.npz")
    stats.save_kaldi(out / "cmvn.ark")
    _write_text(out / "feat_dim", f"{stats.dim}\n")
    if data.text is not None:
        write_kv(out / "text", [(u, t) for u, t in data.text.items() if u in kept])
    else:
        (out / "text").unlink(missing_ok=True)  # unlabeled data: no stale transcripts from an older run
    write_kv(out / "utt2spk", [(u, s) for u, s in data.utt2spk.items() if u in kept])
    spk2utt = [(s, " ".join(u for u in us if u in kept)) for s, us in data.spk2utt.items()]
    write_kv(out / "spk2utt", [(s, us) for s, us in spk2utt if us])
    if skipped:
        write_kv(out / "skipped_utts", sorted(skipped))
    else:
        (out / "skipped_utts").unlink(missing_ok=True)
    if raw:
        write_kv(out / "utt2num_samples", sorted(samples))
        audio_scp.write_audio_scp(out / "audio.scp", [f"{u} {v}" for u, v in scp])
    else:
        write_kv(out / "feats.scp", sorted(scp))
    return len(scp), stats.count, len(skipped)


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def run_job_mode(args: argparse.Namespace, opts: FbankOptions) -> None:
    """Hidden single-job mode used by run.pl: features for the utterances in --job-list."""
    import torch

    torch.set_num_threads(1)  # nj jobs already share the CPUs, as Kaldi's single-threaded jobs do
    data = load_data_dir(args.data_dir)
    job_list = Path(args.job_list)
    utts = [line.split()[0] for line in job_list.read_text(encoding="utf-8").splitlines() if line.strip()]
    unknown = [u for u in utts if u not in data.wav and (data.segments is None or u not in data.segments)]
    if unknown:
        raise DataError(f"{job_list}: utterance(s) {', '.join(map(repr, unknown[:5]))} are not in {data.path}; "
                        f"rerun {PROG} without --job-list to redo the split")
    result = compute_job(data, utts, None if args.raw else Path(args.ark), args.sample_rate, opts, args.skip_bad)
    save_job_result(result, job_list.parent)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=f"python -m chunkssl.bin.{PROG}", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, type=Path, help="Kaldi data dir with wav.scp")
    p.add_argument("--out-dir", required=True, type=Path, help="where features and stats go")
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs (through --cmd)")
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help="resample audio to this rate")
    p.add_argument("--cmd", default=None, help="job launcher, e.g. 'utils/run.pl' (default: run.pl from utils/)")
    p.add_argument("--dither", type=float, default=0.0, help="Kaldi dither (0 = deterministic features)")
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable utterances with a warning")
    p.add_argument("--force", action="store_true", help="recompute even if a matching completed run exists")
    p.add_argument("--raw", action="store_true",
                   help="write audio.scp and the statistics, no feature archive (training on raw audio)")
    p.add_argument("--job-list", help=argparse.SUPPRESS)
    p.add_argument("--ark", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.nj < 1:
        p.error("--nj must be at least 1")
    opts = FbankOptions(dither=args.dither)
    try:
        if args.job_list:
            if not args.ark and not args.raw:
                p.error("--job-list needs --ark")
            run_job_mode(args, opts)
            return 0
        out = args.out_dir
        if out.resolve() == args.data_dir.resolve():
            raise DataError(f"--out-dir {out} is the data dir itself; choose another directory (e.g. dump/fbank/...)")
        data = load_data_dir(args.data_dir)
        nj = min(args.nj, len(data.utt_ids))
        if nj < args.nj:
            _warn(f"only {nj} utterances in {args.data_dir}; using --nj {nj}")
        stamp = fingerprint(args.data_dir, args.sample_rate, opts, nj, args.skip_bad, args.raw)
        done = out / ".done"
        listing = out / ("audio.scp" if args.raw else "feats.scp")
        if not args.force and done.is_file() and listing.is_file() and done.read_text() == stamp:
            print(f"{PROG}: {out} is already complete for these inputs; nothing to do (--force redoes it)")
            return 0
        out.mkdir(parents=True, exist_ok=True)
        # Invalidate the old result before any ark it points into is replaced.
        done.unlink(missing_ok=True)
        (out / "feats.scp").unlink(missing_ok=True)
        (out / "audio.scp").unlink(missing_ok=True)
        # Old arks go too, and temp files a killed run left behind (atomic_open names them .NAME.*.tmp).
        for old in [*out.glob("feats*.ark"), *out.glob(".*.tmp")]:
            old.unlink()
        if nj == 1:
            ark = None if args.raw else out / "feats.ark"
            results = [compute_job(data, data.utt_ids, ark, args.sample_rate, opts, args.skip_bad)]
        else:
            results = run_parallel(args, data, out, nj)
        n_utts, n_frames, n_skipped = finish(out, data, results, opts, args.raw)
        _write_text(done, stamp)
    except RuntimeError as e:  # a failed job: reported as bad input, in one line
        raise DataError(str(e)) from e
    print(f"{PROG}: wrote {n_utts} utterance(s) ({n_frames} frames, dim {opts.num_mel_bins}) to {out}"
          + (f"; skipped {n_skipped} (see {out / 'skipped_utts'})" if n_skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
