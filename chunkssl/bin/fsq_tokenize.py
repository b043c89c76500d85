"""Tokenize fbank with a trained FSQ tokenizer (or BEST-RQ) into per-utterance integer codes.

Examples::

    python -m chunkssl.bin.fsq_tokenize --model exp/fsq_6m/valid.loss.best.pth \\
        --feats-scp dump/fbank/train/feats.scp --out-dir dump/fsq_6m/train --nj 4 --batch-size 16
    python -m chunkssl.bin.fsq_tokenize --quantizer bestrq --bestrq-config conf/fsq/bestrq.yaml \\
        --cmvn-stats dump/fbank/train/cmvn_stats.npz --feats-scp dump/fbank/train/feats.scp \\
        --out-dir dump/bestrq/train

``--audio-scp dump/raw/train/audio.scp`` (training on raw audio) takes the place of ``--feats-scp``: the
fbank of each utterance is computed here, as compute_fbank would dump it, and never written.

Output (see chunkssl.fsq.io): ``codes.scp`` (written last), ``codes.<job>.ark``, ``code_info.yaml``,
``utt2num_frames`` (token frames), ``skipped`` (with ``--short-utt skip``), ``log/tokenize.<job>.log``.
``--nj N`` splits feats.scp into N contiguous parts, each tokenized by one job of this script run
through ``--cmd`` (the recipe's ``$train_cmd``: ``run.pl`` by default, or ``slurm.pl``) as
``<cmd> JOB=1:N log/tokenize.JOB.log python -m chunkssl.bin.fsq_tokenize ... --job JOB``; the parts
are merged in the input order. Everything is written under a temp dir and moved in place only when
every job succeeded.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

import kaldiio
import numpy as np
import torch
from tqdm import tqdm

from chunkssl.audio_scp import AudioScp
from chunkssl.features import FbankOptions, TooShortError, fbank
from chunkssl.fileio import (DataError, atomic_open, job_launcher, job_log_tail, read_kv, run_cli, run_job_array,
                             write_kv)
from chunkssl.fsq.io import (CODES_SCP, codes_dtype, load_bestrq_tokenizer, load_fsq_tokenizer,
                             make_code_info, read_bestrq_config, write_code_info)


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quantizer", choices=["fsq", "bestrq"], default="fsq")
    p.add_argument("--model", help="FSQ: trained checkpoint, e.g. exp/fsq_6m/valid.loss.best.pth")
    p.add_argument("--config", help="FSQ: the ESPnet config.yaml of the model (default: beside --model)")
    p.add_argument("--bestrq-config", help="BEST-RQ: config with a bestrq_conf mapping (conf/fsq/bestrq.yaml)")
    p.add_argument("--cmvn-stats", help="BEST-RQ: cmvn_stats.npz of the training fbank")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--feats-scp", help="fbank feats.scp (float32 [T, 80] per utterance)")
    src.add_argument("--audio-scp", help="audio.scp of compute_fbank --raw: fbank computed on the fly")
    p.add_argument("--sample-rate", type=int, default=16000, help="with --audio-scp: the fbank's sample rate")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--nj", type=int, default=1, help="parallel jobs (through --cmd)")
    p.add_argument("--cmd", default=None,
                   help="job launcher, e.g. 'slurm.pl --mem 8G' (default: run.pl from utils/)")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per forward pass")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads per job (0: cores / nj)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["auto", "int16", "int32", "float32"], default="auto",
                   help="storage type; float32 writes plain Kaldi matrices that ESPnet's kaldi_ark reader "
                        "loads (ints are exact below 2**24)")
    p.add_argument("--short-utt", choices=["error", "skip"], default="error",
                   help="utterances shorter than one token (stack frames): stop with an error, or skip "
                        "them and list them in <out-dir>/skipped")
    p.add_argument("--job", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--tmp-dir", help=argparse.SUPPRESS)
    return p


def build_tokenizer(args: argparse.Namespace):
    """The tokenizer the options describe, and the provenance recorded in code_info.yaml."""
    if args.quantizer == "fsq":
        if not args.model:
            raise DataError("--model is required with --quantizer fsq (e.g. exp/fsq_6m/valid.loss.best.pth)")
        config = Path(args.config) if args.config else Path(args.model).parent / "config.yaml"
        tok = load_fsq_tokenizer(args.model, config, args.device)
        source = dict(model_file=str(Path(args.model).resolve()), config_file=str(config.resolve()))
    else:
        if not args.bestrq_config or not args.cmvn_stats:
            raise DataError("--quantizer bestrq needs --bestrq-config and --cmvn-stats")
        tok = load_bestrq_tokenizer(args.bestrq_config, args.cmvn_stats, args.device)
        source = dict(bestrq_conf=read_bestrq_config(args.bestrq_config),
                      cmvn_stats=str(Path(args.cmvn_stats).resolve()))
    return tok, source


class _FbankOfAudio:
    """``{utt: fbank}`` over an audio.scp, computed when read (``--audio-scp``); too short: 0 frames."""

    def __init__(self, path: str, sample_rate: int):
        self.audio, self.sample_rate = AudioScp(path, sample_rate), sample_rate

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return fbank(self.audio[key], self.sample_rate).numpy()
        except TooShortError:
            return np.zeros((0, FbankOptions().num_mel_bins), np.float32)


def fbank_source(args: argparse.Namespace):
    """The fbank of each utterance: the dumped archive, or computed from the audio."""
    if args.feats_scp:
        return kaldiio.load_scp(args.feats_scp)
    return _FbankOfAudio(args.audio_scp, args.sample_rate)


def split_contiguous(items: Sequence, parts: int) -> list[list]:
    """Split into ``parts`` contiguous, nearly equal slices (the first ones one longer)."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def run_job(args: argparse.Namespace, keys: list[str], tmp: Path) -> None:
    """Tokenize ``keys`` into ``tmp/codes.<job>.{ark,scp}``, ``tmp/lengths.<job>``, ``tmp/skipped.<job>``."""
    tok, _ = build_tokenizer(args)
    dtype = codes_dtype(tok.code_levels, args.dtype)
    feats = fbank_source(args)
    job = args.job
    lengths, skipped = [], []
    write_function = None if dtype.kind == "f" else "numpy"
    spec = f"ark,scp:{tmp}/codes.{job}.ark,{tmp}/codes.{job}.scp"
    with kaldiio.WriteHelper(spec, write_function=write_function) as writer, \
            tqdm(total=len(keys), desc=f"tokenize job {job}/{args.nj}", unit="utt", mininterval=5) as bar:
        for start in range(0, len(keys), args.batch_size):
            batch_keys, arrays = [], []
            for key in keys[start:start + args.batch_size]:
                mat = np.array(feats[key], dtype=np.float32)  # a writable copy for torch
                if mat.ndim != 2 or mat.shape[1] != tok.input_dim:
                    raise DataError(f"{args.feats_scp or args.audio_scp}: utterance {key!r} has shape {mat.shape}, the tokenizer "
                                    f"expects [frames, {tok.input_dim}]; recompute fbank with "
                                    f"{tok.input_dim} mel bins")
                if mat.shape[0] < tok.stack and args.short_utt == "skip":
                    skipped.append(key)
                    continue
                batch_keys.append(key)
                arrays.append(mat)
            bar.update(len(keys[start:start + args.batch_size]))
            if not arrays:
                continue
            lens = torch.tensor([a.shape[0] for a in arrays])
            padded = torch.zeros(len(arrays), int(lens.max()), tok.input_dim)
            for i, a in enumerate(arrays):
                padded[i, : a.shape[0]] = torch.from_numpy(a)
            codes, out_lens = tok.tokenize(padded.to(args.device), lens.to(args.device), keys=batch_keys)
            codes = codes.cpu().numpy()
            for i, key in enumerate(batch_keys):
                n = int(out_lens[i])
                writer(key, np.ascontiguousarray(codes[i, :n].astype(dtype)))
                lengths.append((key, str(n)))
    write_kv(tmp / f"lengths.{job}", lengths)
    with atomic_open(tmp / f"skipped.{job}", "w", encoding="utf-8") as f:
        f.writelines(f"{k}\n" for k in skipped)


def merge_jobs(out_dir: Path, tmp: Path, nj: int, info: dict) -> None:
    """Move the jobs' arks into ``out_dir`` and write the lists; ``codes.scp`` goes last."""
    scp_lines, lengths, skipped = [], [], []
    (out_dir / CODES_SCP).unlink(missing_ok=True)  # a stale scp must never point into replaced arks
    for job in range(1, nj + 1):
        final_ark = out_dir / f"codes.{job}.ark"
        os.replace(tmp / f"codes.{job}.ark", final_ark)
        for key, loc in read_kv(tmp / f"codes.{job}.scp"):
            offset = loc.rsplit(":", 1)[1]
            scp_lines.append((key, f"{final_ark}:{offset}"))
        lengths += read_kv(tmp / f"lengths.{job}")
        skipped += (tmp / f"skipped.{job}").read_text(encoding="utf-8").split()
    for stale in out_dir.glob("codes.*.ark"):
        suffix = stale.name[len("codes."):-len(".ark")]
        if not suffix.isdigit() or int(suffix) > nj:
            stale.unlink()
    info.update(num_utts=len(scp_lines), num_frames=sum(int(n) for _, n in lengths), num_skipped=len(skipped))
    write_kv(out_dir / "utt2num_frames", lengths)
    with atomic_open(out_dir / "skipped", "w", encoding="utf-8") as f:
        f.writelines(f"{k}\n" for k in skipped)
    write_code_info(out_dir, info)
    write_kv(out_dir / CODES_SCP, scp_lines)


def worker_args(args: argparse.Namespace) -> list[str]:
    """The options a job needs to tokenize its part (everything but the launcher and the job number)."""
    source = ["--feats-scp", args.feats_scp] if args.feats_scp else ["--audio-scp", args.audio_scp,
                                                                    "--sample-rate", str(args.sample_rate)]
    out = ["--quantizer", args.quantizer, *source, "--out-dir", args.out_dir,
           "--batch-size", str(args.batch_size), "--device", args.device, "--dtype", args.dtype,
           "--short-utt", args.short_utt]
    for flag, value in (("--model", args.model), ("--config", args.config),
                        ("--bestrq-config", args.bestrq_config), ("--cmvn-stats", args.cmvn_stats)):
        if value:
            out += [flag, value]
    return out


def run_jobs(args: argparse.Namespace, out_dir: Path, tmp: Path, nj: int, threads: int) -> None:
    """Tokenize the ``nj`` parts as one job array through ``--cmd`` (run.pl/slurm.pl); DataError if any failed."""
    log = out_dir / "log" / "tokenize.JOB.log"
    job = [sys.executable, "-m", "chunkssl.bin.fsq_tokenize", *worker_args(args), "--nj", str(nj),
           "--job", "JOB", "--tmp-dir", str(tmp), "--num-threads", str(threads)]
    status = run_job_array(job_launcher(args.cmd), nj, log, job)
    failed = [j for j in range(1, nj + 1) if not (tmp / f"skipped.{j}").is_file()]  # written last by a job
    if status != 0 or failed:
        tails = "\n".join(f"--- job {j}: " + "\n".join(job_log_tail(log, j, 5) or ["(no log)"]) for j in failed)
        raise DataError(f"fsq_tokenize jobs {failed or 'some'} failed (exit status {status}; logs in "
                        f"{out_dir}/log):\n{tails}")


def main(cmd: Sequence[str] | None = None) -> None:
    """Tokenize a feats.scp (see module docstring)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fsq_tokenize: %(message)s")
    args = get_parser().parse_args(cmd)
    if args.nj < 1 or args.batch_size < 1:
        raise SystemExit("--nj and --batch-size must be >= 1")
    threads = args.num_threads or max(1, (os.cpu_count() or 1) // args.nj)
    torch.set_num_threads(threads)
    keys = [k for k, _ in read_kv(args.feats_scp or args.audio_scp)]
    if args.job:  # a worker started by the parent below
        run_job(args, split_contiguous(keys, args.nj)[args.job - 1], Path(args.tmp_dir))
        return
    if not keys:
        raise DataError(f"{args.feats_scp or args.audio_scp}: no utterances")
    tok, source = build_tokenizer(args)  # fails early on a bad model/config, before any job starts
    info = make_code_info(tok, source, codes_dtype(tok.code_levels, args.dtype))
    info["feats_scp" if args.feats_scp else "audio_scp"] = str(Path(args.feats_scp or args.audio_scp).resolve())
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "log").mkdir(exist_ok=True)
    tmp = out_dir / f".tmp.fsq_tokenize.{os.getpid()}"
    tmp.mkdir()
    try:
        nj = min(args.nj, len(keys))
        if nj == 1:
            args.job, args.nj = 1, 1
            run_job(args, keys, tmp)
        else:
            run_jobs(args, out_dir, tmp, nj, threads)
        merge_jobs(out_dir, tmp, nj, info)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logging.info("wrote %d utterances (%d skipped) to %s", info["num_utts"], info["num_skipped"], out_dir)


if __name__ == "__main__":
    sys.exit(run_cli("fsq_tokenize", main))
