"""Chunk SSL inputs, raw audio + online fbank/targets vs dumped fbank + codes: disk, step time, loader speed.

    .venv/bin/python bench/ssl_data.py [--num-utts 200] [--repeats 5] [--warmup 1] [--threads 2]
        [--config conf/ssl/chunk_conformer_base.yaml conf/ssl/chunk_conformer_tiny.yaml] [--out JSON]

Real speech: the first ``--num-utts`` Libri-Trans FLAC recordings of ../shared/data (sorted by name, 16 kHz,
one utterance per file), made into a Kaldi data dir, then the toolkit's own entry points:
``compute_fbank`` (dumped fbank) and ``compute_fbank --raw`` (audio.scp + utt2num_* + CMVN stats),
``fsq_train --config conf/fsq/6m.yaml`` for one step (``--num_iters_per_epoch 1``: size and speed do not
depend on training) and ``fsq_tokenize`` with it (dumped codes).

1. Disk per hour of audio of each form and its extrapolation to 60,000 h (decimal TB).
2. One training step (forward + backward + grad clip 5 + AdamW step) of ChunkSSLModel per ``--config``:
   A = raw audio batch, ``--frontend kaldi_fbank --target_tokenizer <6m checkpoint>`` (fbank and codes
   made in the model); B = dumped fbank + dumped codes. Both models are built from the same seed (same
   weights, checked; same chunk and mask draws) and get the same utterances, each batch collated once
   by ESPnet's ESPnetDataset + the task's collate_fn (no I/O inside the timing). The frontend alone
   (F) and the tokenizer alone on its fbank (T) are timed too. Each repetition runs A, B, F, T in a
   rotated order (A B F T, B F T A, ...) so that load drift from other jobs hits all alike; the
   ratio A/B is taken per repetition and its median, min and max reported.
3. Loader throughput, hours of audio per second: torch DataLoader over ESPnetDataset + collate_fn with
   1, 2, 4 workers (persistent; one warm-up pass, then ``--loader-repeats`` timed passes alternating the
   two inputs), raw audio.scp (FLAC decode only: the fbank runs in the model) vs dumped fbank + codes.
   Files are in the page cache after the first pass: this measures decode/parse cost, not storage.

Prints a markdown table and writes every figure to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import chunkssl.espnet_glue  # noqa: E402,F401  (audio_<rate> and kaldiio_ark data types)
from chunkssl.ssl.task import ChunkSSLTask  # noqa: E402

SHARED = Path(os.environ.get("CHUNKSSL_SHARED_DATA", REPO.parent / "shared" / "data"))
FSQ_CONF = REPO / "conf" / "fsq" / "6m.yaml"
HOURS_PLAN = 60_000
TB = 1e12


def log(msg: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[ssl_data {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args: str, threads: int) -> float:
    """Run ``python -m <args>`` from the repo root; its wall time. Raises with its stderr on failure."""
    log(" ".join(args[:1]))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def make_data(work: Path, num_utts: int) -> tuple[Path, list[Path], float]:
    """A Kaldi data dir of the first ``num_utts`` Libri-Trans recordings; (dir, files, hours)."""
    src = SHARED / "libritrans" / "audio_files"
    files = sorted(src.glob("*.flac"))[:num_utts]
    if not files:
        raise SystemExit(f"no Libri-Trans FLAC files under {src} (set CHUNKSSL_SHARED_DATA)")
    data = work / "data"
    data.mkdir(parents=True)
    utts = [(f.stem, f) for f in files]
    (data / "wav.scp").write_text("".join(f"{u} {f}\n" for u, f in utts))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u, _ in utts))
    spk: dict[str, list[str]] = {}
    for u, _ in utts:
        spk.setdefault(u.split("-")[0], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk.items())))
    hours = sum(sf.info(str(f)).duration for f in files) / 3600
    return data, files, hours


def dump_all(work: Path, data: Path, threads: int) -> dict:
    """fbank, raw manifests, a 1-step 6m FSQ tokenizer and its codes; wall seconds of each."""
    times = {}
    times["compute_fbank"] = sh("chunkssl.bin.compute_fbank", "--data-dir", str(data), "--out-dir",
                                str(work / "fbank"), threads=threads)
    times["compute_fbank_raw"] = sh("chunkssl.bin.compute_fbank", "--data-dir", str(data), "--out-dir",
                                    str(work / "raw"), "--raw", threads=threads)
    fb = work / "fbank"
    small, small_shape = work / "fsq_valid.scp", work / "fsq_valid_shape"  # validation on 2 utterances only
    small.write_text("".join((fb / "feats.scp").read_text().splitlines(keepends=True)[:2]))
    small_shape.write_text("".join((fb / "utt2num_frames").read_text().splitlines(keepends=True)[:2]))
    times["fsq_train_1step"] = sh(
        "chunkssl.bin.fsq_train", "--config", str(FSQ_CONF), "--output_dir", str(work / "fsq"), "--ngpu", "0",
        "--cmvn_stats", str(fb / "cmvn_stats.npz"), "--max_epoch", "1", "--num_iters_per_epoch", "1",
        "--num_workers", "0", "--train_data_path_and_name_and_type", f"{fb / 'feats.scp'},speech,kaldi_ark",
        "--train_shape_file", str(fb / "utt2num_frames"),
        "--valid_data_path_and_name_and_type", f"{small},speech,kaldi_ark",
        "--valid_shape_file", str(small_shape), threads=threads)
    times["fsq_tokenize"] = sh("chunkssl.bin.fsq_tokenize", "--model", str(work / "fsq" / "valid.loss.best.pth"),
                               "--feats-scp", str(fb / "feats.scp"), "--out-dir", str(work / "codes"),
                               "--num-threads", str(threads), threads=threads)
    return times


def disk(work: Path, files: list[Path], hours: float) -> dict:
    """Bytes, bytes per hour of audio and TB for 60,000 h of each form."""
    import yaml

    def size(paths) -> int:
        return sum(p.stat().st_size for p in paths)

    fb, raw, codes = work / "fbank", work / "raw", work / "codes"
    info = yaml.safe_load((codes / "code_info.yaml").read_text())
    forms = {
        "audio (FLAC as given)": (size(files), "the recordings' files"),
        "fbank (dumped)": (size([*fb.glob("feats*.ark"), fb / "feats.scp"]), "feats.ark + feats.scp, float32 x 80 per 10 ms"),
        "codes (dumped, FSQ 6m)": (size([*codes.glob("codes*.ark"), codes / "codes.scp"]),
                                   f"codes.*.ark + codes.scp, {info.get('dtype', '?')} x {len(info['levels'])} per 40 ms"),
        "raw manifests": (size([raw / "audio.scp", raw / "utt2num_frames", raw / "utt2num_samples"]),
                          "audio.scp + utt2num_frames + utt2num_samples"),
    }
    out = {name: dict(bytes=b, bytes_per_hour=b / hours, tb_60k=b / hours * HOURS_PLAN / TB, what=what)
           for name, (b, what) in forms.items()}
    out["codes (dumped, FSQ 6m)"].update(dtype=info.get("dtype"), channels=len(info["levels"]), levels=info["levels"])
    return out


def build(config: Path, work: Path, online: bool, seed: int = 3):
    """The SSL model of ``config``, online (raw audio, frozen 6m tokenizer) or dumped; and its args."""
    if online:
        argv = ["--normalize_conf", f"stats_file={work / 'raw' / 'cmvn_stats.npz'}", "--frontend", "kaldi_fbank",
                "--target_tokenizer", str(work / "fsq" / "valid.loss.best.pth"),
                "--train_data_path_and_name_and_type", f"{work / 'raw' / 'audio.scp'},speech,audio_16000"]
    else:
        argv = ["--normalize_conf", f"stats_file={work / 'fbank' / 'cmvn_stats.npz'}",
                "--code_info", str(work / "codes" / "code_info.yaml"),
                "--train_data_path_and_name_and_type", f"{work / 'fbank' / 'feats.scp'},speech,kaldi_ark",
                "--train_data_path_and_name_and_type", f"{work / 'codes' / 'codes.scp'},codes,kaldiio_ark"]
    args = ChunkSSLTask.get_parser().parse_args(["--config", str(config), *argv])
    torch.manual_seed(seed)
    return ChunkSSLTask.build_model(args), args


def dataset(args):
    """ESPnet's dataset over the args' training data, and the task's collate_fn."""
    from espnet2.train.dataset import ESPnetDataset

    ds = ESPnetDataset([tuple(spec) for spec in args.train_data_path_and_name_and_type])
    return ds, ChunkSSLTask.build_collate_fn(args, train=True)


def pick_batch(work: Path, keys: list[str], batch_utts: int) -> list[str]:
    """The first ``batch_utts`` utterances (by id) of 4-16 s: a batch of ordinary lengths."""
    frames = dict(line.split() for line in (work / "fbank" / "utt2num_frames").read_text().splitlines())
    ok = [k for k in keys if 400 <= int(frames[k]) <= 1600] or keys
    return ok[:batch_utts]


def times_or(times: dict, name: str, rep: int, warmup: int) -> str:
    return f"{times[name][-1]:.0f} ms" if rep >= warmup else "(warm-up)"


def stats(xs: list[float]) -> dict:
    """Median, min, max and interquartile range of ``xs``."""
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return dict(median=statistics.median(xs), min=min(xs), max=max(xs), q1=q[0], q3=q[2], n=len(xs))


def bench_steps(config: Path, work: Path, batch_utts: int, warmup: int, repeats: int) -> dict:
    """Interleaved training steps, online vs dumped, and the frontend and tokenizer alone (ms)."""
    online, a_args = build(config, work, online=True)
    dumped, b_args = build(config, work, online=False)
    a_state = {k: v for k, v in online.state_dict().items() if not k.startswith("targets.")}
    same = a_state.keys() == dumped.state_dict().keys() and all(
        torch.equal(v, a_state[k]) for k, v in dumped.state_dict().items())
    a_ds, a_collate = dataset(a_args)
    b_ds, b_collate = dataset(b_args)
    keys = pick_batch(work, sorted(b_ds.loader_dict["speech"].keys()), batch_utts)
    _, a_batch = a_collate([a_ds[k] for k in keys])
    _, b_batch = b_collate([b_ds[k] for k in keys])
    seconds = float(a_batch["speech_lengths"].sum()) / 16000
    conf = a_args.optim_conf
    opts = {}
    for name, model in (("online", online), ("dumped", dumped)):
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opts[name] = torch.optim.AdamW(params, lr=conf.get("lr", 1e-3), weight_decay=conf.get("weight_decay", 0.01))
    clip = float(getattr(a_args, "grad_clip", 5.0) or 5.0)
    fb_cached = online.input_fbank(a_batch["speech"], a_batch["speech_lengths"])

    def step(name: str, model, batch: dict, rep: int) -> float:
        torch.manual_seed(rep)  # dropout draws alike in A and B
        loss, _, _ = model(**batch)
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opts[name].step()
        return float(loss.detach())

    def frontend(rep: int) -> None:
        with torch.no_grad():
            online.input_fbank(a_batch["speech"], a_batch["speech_lengths"])

    def tokenizer(rep: int) -> None:
        online.online_codes(*fb_cached)

    runs = {"online": lambda r: step("online", online, a_batch, r), "dumped": lambda r: step("dumped", dumped, b_batch, r),
            "frontend": frontend, "tokenizer": tokenizer}
    order = list(runs)
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}  # this process's CPU time, all its threads
    losses: dict[str, list[float]] = {"online": [], "dumped": []}
    log(f"steps {config.name}: {len(keys)} utts, {seconds:.1f} s; {warmup} warm-up + {repeats} timed")
    for rep in range(warmup + repeats):
        rot = order[rep % len(order):] + order[:rep % len(order)]
        for name in rot:
            w0, c0 = time.perf_counter(), time.process_time()
            loss = runs[name](rep)
            w1, c1 = time.perf_counter(), time.process_time()
            if loss is not None:
                losses[name].append(loss)
            if rep >= warmup:
                wall[name].append((w1 - w0) * 1000)
                cpu[name].append((c1 - c0) * 1000)
        log(f"  rep {rep}: A {times_or(wall, 'online', rep, warmup)} B {times_or(wall, 'dumped', rep, warmup)}")

    def ratio(t: dict, num: str = "online") -> dict:
        top = t[num] if num == "online" else [f + k for f, k in zip(t["frontend"], t["tokenizer"])]
        return stats([a / b for a, b in zip(top, t["dumped"])])

    return dict(
        config=str(config.relative_to(REPO) if config.is_relative_to(REPO) else config),
        params_m=sum(p.numel() for p in dumped.parameters()) / 1e6,
        same_initial_weights=same, batch_utts=len(keys), batch_seconds=seconds, utts=keys,
        warmup=warmup, repeats=repeats, ms={k: stats(v) for k, v in wall.items()},
        cpu_ms={k: stats(v) for k, v in cpu.items()},
        ratio_online_dumped=ratio(wall), ratio_online_dumped_cpu=ratio(cpu),
        ratio_of_medians=statistics.median(wall["online"]) / statistics.median(wall["dumped"]),
        frontend_plus_tokenizer_over_dumped=ratio(wall, "parts"), frontend_plus_tokenizer_over_dumped_cpu=ratio(cpu, "parts"),
        max_abs_loss_diff=max(abs(a - b) for a, b in zip(losses["online"], losses["dumped"])),
    )


def bench_loader(work: Path, workers: list[int], repeats: int, batch: int, threads: int) -> dict:
    """Hours of audio per second through DataLoader(ESPnetDataset, collate_fn), raw vs dumped."""
    from torch.utils.data import DataLoader

    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores: on purpose

    _, a_args = build(REPO / "conf/ssl/chunk_conformer_tiny.yaml", work, online=True)
    _, b_args = build(REPO / "conf/ssl/chunk_conformer_tiny.yaml", work, online=False)
    frames = {k: int(v) for k, v in (line.split() for line in (work / "raw" / "utt2num_samples").read_text().splitlines())}
    keys = sorted(frames, key=lambda k: (frames[k], k))  # length-sorted batches, as ESPnet's samplers make
    batches = [tuple(keys[i:i + batch]) for i in range(0, len(keys), batch)]
    hours = sum(frames.values()) / 16000 / 3600
    out: dict = {"hours_per_pass": hours, "batch_utts": batch, "raw": {}, "dumped": {}, "passes": repeats}
    for w in workers:
        log(f"loader: {w} worker(s)")
        loaders = {}
        for name, args in (("raw", a_args), ("dumped", b_args)):
            ds, collate = dataset(args)
            loaders[name] = DataLoader(ds, batch_sampler=batches, collate_fn=collate, num_workers=w,
                                       persistent_workers=w > 0)
            for _ in loaders[name]:  # warm-up: workers start, files enter the page cache
                pass
        secs: dict[str, list[float]] = {"raw": [], "dumped": []}
        for rep in range(repeats):
            for name in (("raw", "dumped") if rep % 2 == 0 else ("dumped", "raw")):
                start = time.perf_counter()
                for _ in loaders[name]:
                    pass
                secs[name].append(time.perf_counter() - start)
        for name in secs:
            out[name][str(w)] = dict(hours_per_s=hours / statistics.median(secs[name]),
                                     hours_per_s_min=hours / max(secs[name]), hours_per_s_max=hours / min(secs[name]),
                                     median_s=statistics.median(secs[name]))
        del loaders
    torch.set_num_threads(threads)
    return out


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def table(res: dict) -> str:
    """The markdown tables of a result."""
    d = res["data"]
    lines = [f"Data: {d['recordings']} Libri-Trans FLAC recordings ({d['first']} .. {d['last']}), "
             f"{d['hours'] * 60:.1f} min of 16 kHz speech; {res['threads']} torch threads; "
             f"load average {res['load_start'][0]} at start, {res['load_end'][0]} at end.", "",
             f"| form | bytes | MB per hour of audio | TB for {HOURS_PLAN:,} h | what |", "|---|---:|---:|---:|---|"]
    for name, v in res["disk"].items():
        lines.append(f"| {name} | {v['bytes']:,} | {v['bytes_per_hour'] / 1e6:,.2f} | {v['tb_60k']:.3f} | {v['what']} |")
    for s in res["steps"]:
        m, r, p = s["ms"], s["ratio_online_dumped"], s["frontend_plus_tokenizer_over_dumped"]
        lines += ["", f"Training step, `{s['config']}` ({s['params_m']:.1f}M parameters, tokenizer not counted), "
                  f"batch {s['batch_utts']} utts / {s['batch_seconds']:.1f} s, {s['warmup']} warm-up + {s['repeats']} "
                  f"timed, rotated order; same initial weights: {s['same_initial_weights']}, max |loss A - loss B| "
                  f"{s['max_abs_loss_diff']:.2g}.", "",
                  "| part (wall ms, or ratio) | median | min | max | q1-q3 |", "|---|---:|---:|---:|---|"]
        names = {"online": "A: raw audio + online fbank + online codes (step)", "dumped": "B: dumped fbank + codes (step)",
                 "frontend": "F: kaldi_fbank frontend alone", "tokenizer": "T: 6m tokenizer alone (on F's fbank)"}
        for k, label in names.items():
            lines.append(f"| {label} | {m[k]['median']:.1f} | {m[k]['min']:.1f} | {m[k]['max']:.1f} | "
                         f"{m[k]['q1']:.1f}-{m[k]['q3']:.1f} |")
        lines.append(f"| **A / B per repetition, wall** | **{r['median']:.3f}** | {r['min']:.3f} | {r['max']:.3f} | "
                     f"{r['q1']:.3f}-{r['q3']:.3f} |")
        lines.append(f"| (F + T) / B per repetition, wall | {p['median']:.3f} | {p['min']:.3f} | {p['max']:.3f} | "
                     f"{p['q1']:.3f}-{p['q3']:.3f} |")
        for label, r in (("A / B, CPU time", s["ratio_online_dumped_cpu"]),
                         ("(F + T) / B, CPU time", s["frontend_plus_tokenizer_over_dumped_cpu"])):
            lines.append(f"| {label} | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {r['q1']:.3f}-{r['q3']:.3f} |")
    lo = res["loader"]
    lines += ["", f"Loader: DataLoader(ESPnetDataset, collate_fn), {lo['hours_per_pass'] * 60:.1f} min of audio per "
              f"pass, batches of {lo['batch_utts']}, median of {lo['passes']} passes (min-max); hours of audio per second.", "",
              "| workers | raw audio.scp (FLAC decode) | dumped fbank + codes |", "|---:|---:|---:|"]
    for w in lo["raw"]:
        a, b = lo["raw"][w], lo["dumped"][w]
        lines.append(f"| {w} | {a['hours_per_s']:.2f} ({a['hours_per_s_min']:.2f}-{a['hours_per_s_max']:.2f}) | "
                     f"{b['hours_per_s']:.2f} ({b['hours_per_s_min']:.2f}-{b['hours_per_s_max']:.2f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-utts", type=int, default=200, help="Libri-Trans recordings (first N by name)")
    p.add_argument("--repeats", type=int, default=5, help="timed training steps of each kind")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps of each kind first")
    p.add_argument("--threads", type=int, default=2, help="torch threads (this process and the dump jobs)")
    p.add_argument("--config", type=Path, nargs="+", default=[REPO / "conf/ssl/chunk_conformer_base.yaml",
                                                                REPO / "conf/ssl/chunk_conformer_tiny.yaml"])
    p.add_argument("--batch-utts", type=int, default=2, help="utterances in the training batch")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--loader-repeats", type=int, default=5)
    p.add_argument("--loader-batch", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "chunkssl_bench_ssl_data.json")
    p.add_argument("--work-dir", type=Path, help="keep the dumps here (default: a temp dir, removed)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ssl_data_"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict = dict(command=" ".join(["bench/ssl_data.py", *(argv if argv is not None else sys.argv[1:])]),
                     machine=f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                     threads=args.threads, load_start=load_avg())
    t0 = time.perf_counter()
    try:
        data, files, hours = make_data(work, args.num_utts)
        res["data"] = dict(corpus="libritrans", recordings=len(files), hours=hours, first=files[0].name,
                           last=files[-1].name, sample_rate=16000)
        res["dump_seconds"] = dump_all(work, data, args.threads)
        res["disk"] = disk(work, files, hours)
        res["steps"] = [bench_steps(c.resolve(), work, args.batch_utts, args.warmup, args.repeats)
                        for c in args.config]
        res["loader"] = bench_loader(work, args.workers, args.loader_repeats, args.loader_batch, args.threads)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    res["load_end"] = load_avg()
    res["wall_seconds"] = time.perf_counter() - t0
    print(table(res))
    print(f"\nwall {res['wall_seconds']:.0f} s; JSON: {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
