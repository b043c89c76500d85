"""GPU check, part 4 (issue 17): Chunk SSL on raw audio with online targets vs dumped fbank + codes, on the device.

The model of ``conf/ssl/chunk_conformer_<size>.yaml`` twice with the same weights: *online* holds the
``kaldi_fbank`` frontend and a frozen FSQ 6m tokenizer (random weights: speed and agreement do not depend
on training) and takes waveforms; *dumped* takes the fbank and codes the same frontend and tokenizer made on
the CPU. Checked: the two losses agree (float32 eval, and in bf16 autocast, where the frontend and the
tokenizer still run in float32); timed: training steps of each, interleaved, in bf16 autocast, hours of audio
per GPU-hour, the model FLOPs utilisation (FLOPs of one dumped step counted by torch's FlopCounterMode,
against the device's dense bf16 peak when it is known), and a DataLoader decoding FLAC files with 1, 2 and 4
workers against 3x what one GPU consumes. From these: the projected wall time of one epoch of 57,704 h
(Libri-light small + medium + large) on 32 GPUs.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from chunkssl.frontend import KaldiFbankFrontend
from chunkssl.fsq.tokenizer import FSQTokenizer
from gpu_check_stream import SR, voiced_wave  # noqa: E402  (beside this file)

PLAN_HOURS, PLAN_GPUS = 57_704, 32
# dense bf16 peaks (FLOP/s) of the cards the device tool lends; others print no MFU
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def _batches(waves: list[np.ndarray], front: KaldiFbankFrontend, tok: FSQTokenizer) -> tuple[tuple, tuple]:
    """(online batch: waves and sample counts, dumped batch: fbank, frames, codes, code frames), on the CPU."""
    lens = torch.tensor([len(w) for w in waves])
    audio = torch.zeros(len(waves), int(lens.max()))
    for i, w in enumerate(waves):
        audio[i, : len(w)] = torch.from_numpy(w)
    feats, frames = front(audio, lens)
    codes, code_lens = tok.tokenize(feats, frames)
    return (audio, lens), (feats, frames, codes, code_lens)


def _step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device, amp: bool):
    def step(batch: tuple[torch.Tensor, ...]) -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(*[t.clone() for t in batch])[0]  # GlobalMVN works in place
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return float(loss.detach())
    return step


def _read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def _loader_hours_per_s(files: list[Path], hours: float, workers: int, passes: int = 3) -> float:
    """Hours of audio per second a DataLoader decodes from FLAC files with ``workers`` persistent workers
    (after one untimed pass: worker start-up is paid once per training run, not per batch)."""
    loader = torch.utils.data.DataLoader(files, batch_size=4, num_workers=workers, persistent_workers=True,
                                         collate_fn=lambda paths: [_read(p) for p in paths])
    for _ in loader:
        pass
    start = time.perf_counter()
    for _ in range(passes):
        for _ in loader:
            pass
    return passes * hours / (time.perf_counter() - start)


def online_part(report, args, device: torch.device, build_ssl, stats_file: Path, gen: torch.Generator,
                sync) -> dict:
    """Run the comparison and the timings; figures go to ``report.figures['online']``."""
    rng = np.random.default_rng(args.seed)
    seconds = []
    while sum(seconds) < args.batch_seconds:
        seconds.append(float(rng.uniform(*args.utt_seconds)))
    waves = [voiced_wave(s, rng) for s in seconds]
    dumped_cpu, _ = build_ssl(args.size, args.seed, stats_file)
    front = KaldiFbankFrontend(fs=SR)
    tok = FSQTokenizer(levels="6m", cmvn_stats=str(stats_file)).eval()
    online_in, dumped_in = _batches(waves, front, tok)
    dumped = copy.deepcopy(dumped_cpu).to(device)
    online = copy.deepcopy(dumped_cpu)
    online.frontend, online.targets = front, tok.requires_grad_(False)
    online = online.to(device)
    on_dev = [tuple(t.to(device) for t in b) for b in (online_in, dumped_in)]
    with torch.no_grad():  # the device's own fbank and codes (its FFT is not the CPU's) against the dumped ones
        feats, frames = online.frontend(*on_dev[0])
        codes, code_lens = online.targets.tokenize(feats, frames)
    valid = torch.arange(codes.size(1), device=device)[None] < code_lens[:, None]
    same = float((codes == on_dev[1][2]).all(-1)[valid].float().mean())
    report.check(f"online codes on {device.type} = dumped codes", same >= 0.999, f"{same:.2%} of the frames equal")
    worst = float((feats - on_dev[1][0]).abs().max())
    report.check(f"online fbank on {device.type} = dumped fbank", worst <= 1e-3, f"max abs diff {worst:.1e}")
    for amp, tol in ((False, 1e-3), (True, 5e-2)):
        losses = []
        for model, batch in ((online, on_dev[0]), (dumped, on_dev[1])):
            model.eval()
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                losses.append(float(model(*[t.clone() for t in batch])[0]))
        d = abs(losses[0] - losses[1]) / max(abs(losses[1]), 1e-12)
        report.check(f"online loss = dumped loss ({'bf16 autocast' if amp else 'float32'}) on {device.type}",
                     math.isfinite(losses[0]) and d <= tol, f"{losses[0]:.6g} vs {losses[1]:.6g} (rel {d:.1e})")
    amp = not args.no_amp
    steps = {name: _step_fn(m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4),
                            device, amp) for name, m in (("online", online), ("dumped", dumped))}
    for model in (online, dumped):
        model.train()
    times: dict[str, list[float]] = {"online": [], "dumped": []}
    for i in range(args.warmup + args.steps):
        for name, batch in (("online", on_dev[0]), ("dumped", on_dev[1]))[:: 1 if i % 2 == 0 else -1]:
            sync(device)
            t = time.perf_counter()
            steps[name](batch)
            sync(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t)
    audio_h = sum(seconds) / 3600
    med = {k: float(np.median(v)) for k, v in times.items()}
    hours_per_gpu_hour = audio_h / med["online"] * 3600
    fig = {"batch_audio_s": sum(seconds), "utterances": len(seconds), "step_s": med,
           "ratio_online_dumped": med["online"] / med["dumped"], "hours_per_device_hour": hours_per_gpu_hour}
    report.line("online", f"step: online {med['online'] * 1e3:.1f} ms, dumped {med['dumped'] * 1e3:.1f} ms, ratio "
                          f"{fig['ratio_online_dumped']:.3f} (median of {args.steps}, interleaved; "
                          f"{'bf16 autocast' if amp else 'float32'}); {hours_per_gpu_hour:.1f} h of audio per "
                          f"{'GPU' if device.type == 'cuda' else 'CPU'}-hour")
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        steps["dumped"](on_dev[1])
    flops = counter.get_total_flops()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    fig |= {"flops_per_step": flops, "achieved_tflops": flops / med["dumped"] / 1e12,
            "mfu": flops / med["dumped"] / peak if peak else None}
    report.line("online", f"model FLOPs per step {flops / 1e12:.2f} T, {fig['achieved_tflops']:.1f} TFLOP/s"
                + (f", MFU {fig['mfu']:.1%} of {peak / 1e12:.0f} TFLOP/s bf16" if peak else ", MFU: peak unknown"))
    need = 3 * hours_per_gpu_hour / 3600
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, w in enumerate(waves):
            files.append(Path(tmp) / f"{i}.flac")
            sf.write(str(files[-1]), w, SR)
        loader = {w: _loader_hours_per_s(files, audio_h, w) for w in (1, 2, 4)}
    fig |= {"loader_hours_per_s": loader, "loader_needed_hours_per_s": need,
            "epoch_hours_32_gpus": PLAN_HOURS / (PLAN_GPUS * hours_per_gpu_hour)}
    report.line("online", "loader: " + ", ".join(f"{w} workers {v:.2f} h/s" for w, v in loader.items())
                + f"; 3x one GPU's consumption = {need:.3f} h/s")
    report.line("online", f"projected: one epoch of {PLAN_HOURS:,} h on {PLAN_GPUS} such devices "
                          f"{fig['epoch_hours_32_gpus']:.1f} h")
    report.figures["online"] = fig
    return fig
