"""GPU check: Chunk SSL and ASR training steps, streaming decoding, each checked against CPU.

On ``--device`` (``cuda`` on a GPU machine; ``cpu`` to test this script without one):

1. Chunk SSL pre-training steps (:class:`~chunkssl.ssl.model.ChunkSSLModel`, CADA, bf16 autocast,
   AdamW, gradient clipping) at the size of ``conf/ssl/chunk_conformer_<size>.yaml``;
2. ASR fine-tuning steps (ESPnet's ``ESPnetASRModel`` with the chunk conformer, built by ESPnet's
   ``ASRTask`` from ``conf/asr/chunk_conformer_<size>.yaml``);
3. true streaming decoding of a few utterances with :class:`~chunkssl.streaming.streamer.Streamer`;
4. Chunk SSL on raw audio with online fbank and targets vs dumped inputs (``gpu_check_online.py``).

Each is compared with CPU on the same weights and input: float32 loss and gradient norm of one
forward/backward (eval mode, so no dropout; TF32 off), the bf16-autocast loss, and the streaming
encoder outputs and decoded texts. Throughput is hours of audio per device-hour over timed steps
after warm-up (``torch.cuda.synchronize`` around them), with the peak GPU memory.

Input is synthetic (random fbank, random FSQ codes and token ids; a harmonic "voiced" waveform for
streaming) and the weights random: speed and CPU/GPU agreement do not depend on training, and
nothing is downloaded. A line ``RESULT: PASS`` or ``RESULT: FAIL`` ends the output; exit status 1
on failure. ``bench/gpu_check.sh`` runs it on a GPU machine; see bench/README.md.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

try:
    import distutils.util  # noqa: F401  (ESPnet imports it; Python 3.12 has none of its own)
except ModuleNotFoundError:  # setuptools' shim, normally installed by its .pth file, provides it
    import setuptools  # noqa: F401

import chunkssl.espnet_glue  # noqa: E402,F401  (registers chunk_conformer in ESPnet's ASR task)
from chunkssl.asr.decode import set_chunk_mask  # noqa: E402
from chunkssl.chunking import chunk_frames  # noqa: E402
from chunkssl.encoder import ChunkConformerEncoder  # noqa: E402
from chunkssl.features import CmvnStats, fbank  # noqa: E402
from chunkssl.ssl.model import ChunkSSLModel  # noqa: E402
from chunkssl.ssl.task import loss_groups  # noqa: E402
from gpu_check_online import online_part  # noqa: E402  (beside this file)
from gpu_check_stream import CHUNK_MS, SR, check_streaming, voiced_wave  # noqa: E402

FBANK_S = 0.01          # fbank frame shift: audio seconds per input frame
LEVELS_6M = [7] * 8     # the 6m FSQ preset of the base configs
TOKENS_PER_S = 3.0      # about what 5000 BPE units give on read English
LOSS_RTOL, GRAD_RTOL, BF16_RTOL = 1e-3, 1e-2, 5e-2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="device to check against CPU (cuda, cuda:1, cpu)")
    p.add_argument("--size", default="base", choices=["tiny", "base", "large"],
                   help="model sizes from conf/{ssl,asr}/chunk_conformer_<size>.yaml")
    p.add_argument("--small", action="store_true",
                   help="tiny models, vocabulary and batches: a CPU test of the script in seconds")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps before them")
    p.add_argument("--batch-seconds", type=float, default=400.0, help="audio per training batch")
    p.add_argument("--utt-seconds", type=float, nargs=2, default=(8.0, 16.0), metavar=("MIN", "MAX"),
                   help="range of utterance durations in training batches")
    p.add_argument("--vocab", type=int, default=5000, help="ASR output units")
    p.add_argument("--stream-utts", type=int, default=3, help="utterances decoded in streaming")
    p.add_argument("--beam", type=int, default=10, help="streaming beam size")
    p.add_argument("--no-amp", action="store_true", help="train in float32 instead of bf16 autocast")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the figures and checks to this file")
    args = p.parse_args(argv)
    if args.small:
        args.size, args.batch_seconds, args.utt_seconds = "tiny", 6.0, (2.0, 3.5)
        args.vocab, args.stream_utts, args.beam = 40, 2, 4
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    return args


class Report:
    """Prints result lines as they come and collects figures and pass/fail checks."""

    def __init__(self):
        self.figures: dict[str, dict] = {}
        self.checks: list[dict] = []

    def line(self, section: str, text: str) -> None:
        print(f"[{section}] {text}", flush=True)

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record and print one comparison."""
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        self.line("compare", f"{name}: {detail}: {'PASS' if ok else 'FAIL'}")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def durations(total_s: float, lo: float, hi: float, gen: torch.Generator) -> list[float]:
    """Utterance durations in [lo, hi] seconds adding up to at least ``total_s``."""
    out: list[float] = []
    while sum(out) < total_s:
        out.append(lo + (hi - lo) * float(torch.rand((), generator=gen)))
    return out


class Fbank:
    """Random fbank ``[B, T, 80]`` with the per-bin mean and std of real fbank (of the synthetic waves)."""

    def __init__(self, stats: CmvnStats):
        mean, std = stats.mean_std()
        self.mean, self.std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def batch(self, seconds: list[float], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Fbank padded with zeros, and frame counts."""
        lengths = torch.tensor([round(s / FBANK_S) for s in seconds])
        speech = self.mean + self.std * torch.randn(len(seconds), int(lengths.max()), 80, generator=gen)
        speech *= (torch.arange(speech.size(1))[None, :] < lengths[:, None]).unsqueeze(-1)
        return speech, lengths

    def ssl(self, seconds: list[float], gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(speech, speech_lengths, codes, codes_lengths) with random 6m-preset codes at 40 ms."""
        speech, lengths = self.batch(seconds, gen)
        codes_lengths = lengths // 4
        codes = torch.stack([torch.randint(0, lv, (len(seconds), int(codes_lengths.max())), generator=gen)
                             for lv in LEVELS_6M], -1)
        return speech, lengths, codes, codes_lengths

    def asr(self, seconds: list[float], gen: torch.Generator, vocab: int) -> tuple[torch.Tensor, ...]:
        """(speech, speech_lengths, text, text_lengths): random token ids, -1 padded (ESPnet's ignore id)."""
        speech, lengths = self.batch(seconds, gen)
        text_lengths = torch.tensor([max(1, round(s * TOKENS_PER_S)) for s in seconds])
        text = torch.full((len(seconds), int(text_lengths.max())), -1, dtype=torch.long)
        for i, n in enumerate(text_lengths.tolist()):
            text[i, :n] = torch.randint(1, vocab - 1, (n,), generator=gen)  # neither blank nor <sos/eos>
        return speech, lengths, text, text_lengths


def build_ssl(size: str, seed: int, stats_file: Path) -> tuple[ChunkSSLModel, dict]:
    """The Chunk SSL model at the encoder sizes and masking options of ``conf/ssl/chunk_conformer_<size>.yaml``."""
    from espnet2.layers.global_mvn import GlobalMVN

    conf = yaml.safe_load((REPO / f"conf/ssl/chunk_conformer_{size}.yaml").read_text())
    mconf = conf["model_conf"]
    torch.manual_seed(seed)
    encoder = ChunkConformerEncoder(80, **conf["encoder_conf"])
    groups = loss_groups(len(LEVELS_6M), mconf["group_channels"])
    model = ChunkSSLModel(encoder, normalize=GlobalMVN(str(stats_file)), levels=LEVELS_6M, group_sizes=groups,
                          cada=True, mask_prob=mconf["mask_prob"], mask_length=mconf["mask_length"],
                          dynamic_chunk=mconf["dynamic_chunk"], eval_chunk_ms=CHUNK_MS, seed=seed)
    return model, conf["encoder_conf"]


def build_asr(size: str, vocab: int, seed: int, stats_file: Path) -> tuple[torch.nn.Module, list[str]]:
    """ESPnet's ASR model built by ``ASRTask`` from ``conf/asr/chunk_conformer_<size>.yaml`` (global MVN)."""
    from espnet2.tasks.asr import ASRTask

    token_list = ["<blank>", "<unk>", *[f"u{i}" for i in range(vocab - 3)], "<sos/eos>"]
    tokens = stats_file.parent / "tokens.txt"
    tokens.write_text("\n".join(token_list) + "\n")
    args = ASRTask.get_parser().parse_args(["--config", str(REPO / f"conf/asr/chunk_conformer_{size}.yaml"),
                                            "--token_list", str(tokens), "--input_size", "80",
                                            "--normalize_conf", f"stats_file={stats_file}"])
    torch.manual_seed(seed)
    return ASRTask.build_model(args), token_list


def count_params(model: torch.nn.Module) -> float:
    """Parameters in millions."""
    return sum(p.numel() for p in model.parameters()) / 1e6


def loss_and_grad(model: torch.nn.Module, batch: tuple[torch.Tensor, ...], device: torch.device,
                  amp: bool = False) -> tuple[float, float]:
    """Loss and gradient norm of one forward/backward in eval mode (no dropout, fixed chunking)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        # copies: ESPnet's GlobalMVN normalises its input in place
        loss = model(*[t.to(device, copy=True) for t in batch])[0]
    loss.backward()
    grad = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters() if p.grad is not None))
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), grad


def compare_losses(report: Report, name: str, cpu_model: torch.nn.Module, dev_model: torch.nn.Module,
                   batch: tuple[torch.Tensor, ...], device: torch.device) -> None:
    """float32 loss and gradient norm on CPU vs the device (TF32 off), and bf16 autocast on the device."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ref_loss, ref_grad = loss_and_grad(cpu_model, batch, torch.device("cpu"))
        loss, grad = loss_and_grad(dev_model, batch, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    bf16_loss, _ = loss_and_grad(dev_model, batch, device, amp=True)
    dev = device.type
    for what, a, b, tol in (("loss float32", ref_loss, loss, LOSS_RTOL),
                            ("grad norm float32", ref_grad, grad, GRAD_RTOL),
                            (f"loss bf16 autocast on {dev} vs float32 cpu", ref_loss, bf16_loss, BF16_RTOL)):
        d = abs(a - b) / max(abs(a), 1e-12)
        ok = math.isfinite(b) and d <= tol
        report.check(f"{name} {what}", ok, f"cpu {a:.6g} vs {dev} {b:.6g} (rel diff {d:.2e}, tol {tol:.0e})")


def train_steps(model: torch.nn.Module, batches: list[tuple[torch.Tensor, ...]], device: torch.device,
                warmup: int, steps: int, amp: bool) -> dict:
    """Warm-up then timed optimizer steps cycling through ``batches`` (already on the device)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    losses: list[float] = []

    def step(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(*[t.clone() for t in batch])[0]  # GlobalMVN works in place
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.detach()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup):
        losses.append(float(step(batches[i % len(batches)])))
    sync(device)
    start = time.perf_counter()
    timed = [step(batches[i % len(batches)]) for i in range(steps)]
    sync(device)
    elapsed = time.perf_counter() - start
    losses += [float(x) for x in timed]
    audio_s = sum(float(batches[i % len(batches)][1].sum()) * FBANK_S for i in range(steps))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"elapsed_s": elapsed, "audio_s": audio_s, "ms_per_step": 1000 * elapsed / steps,
            "hours_per_device_hour": audio_s / elapsed, "peak_gib": peak, "losses": losses}


def fitted_training(report: Report, name: str, model: torch.nn.Module, make_batch, args, device: torch.device,
                    gen: torch.Generator) -> dict:
    """Timed training; on out-of-memory the batch is halved and the run retried. Prints the figures."""
    seconds = durations(args.batch_seconds, *args.utt_seconds, gen)
    while True:
        batches = [tuple(t.to(device) for t in make_batch(seconds, gen)) for _ in range(2)]
        try:
            fig = train_steps(model, batches, device, args.warmup, args.steps, not args.no_amp)
            break
        except torch.OutOfMemoryError:
            if len(seconds) == 1:
                raise
        # outside the handler, so the traceback's references to the failed step's tensors are gone
        del batches
        model.zero_grad(set_to_none=True)
        gc.collect()
        torch.cuda.empty_cache()
        report.line(name, f"out of memory with {len(seconds)} utterances ({sum(seconds):.0f} s): halving the batch")
        seconds = seconds[: len(seconds) // 2]
    fig |= {"utterances": len(seconds), "batch_audio_s": sum(seconds)}
    losses, unit = fig["losses"], "GPU" if device.type == "cuda" else "CPU"
    report.line(name, f"batch: {len(seconds)} utterances, {sum(seconds):.1f} s of audio; "
                      f"{'float32' if args.no_amp else 'bf16 autocast'}")
    report.line(name, f"throughput: {fig['hours_per_device_hour']:.1f} h of audio per {unit}-hour "
                      f"({args.steps} timed steps after {args.warmup} warm-up, {fig['ms_per_step']:.1f} ms/step; "
                      f"loss {losses[0]:.4g} -> {losses[-1]:.4g})")
    report.line(name, "peak GPU memory: " + ("n/a on cpu" if fig["peak_gib"] is None else f"{fig['peak_gib']:.2f} GiB"))
    report.check(f"{name} training losses finite", all(math.isfinite(x) for x in losses),
                 f"{len(losses)} steps on {device.type}")
    report.figures[name] = fig
    return fig


def environment(device: torch.device) -> dict:
    """The device's name and the versions that matter."""
    import espnet

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"device": str(device), "name": name, "torch": torch.__version__, "espnet": espnet.__version__,
            "python": platform.python_version(), "cpu_threads": torch.get_num_threads()}


def run_section(report: Report, name: str, fn, *args):
    """Run one part; an exception is a failed check (with its traceback) and the other parts still run."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001  (one part's error must not hide the others' results)
        traceback.print_exc()
        report.check(f"{name} ran", False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None


def ssl_part(report: Report, args, device: torch.device, data: Fbank, stats_file: Path,
             gen: torch.Generator) -> None:
    """Chunk SSL: CPU comparison, then timed training steps on the device."""
    ssl, enc_conf = build_ssl(args.size, args.seed, stats_file)
    report.line("ssl", f"model: {enc_conf['num_blocks']} x {enc_conf['output_size']} chunk conformer, "
                       f"{count_params(ssl):.1f}M parameters, CADA, FSQ 6m targets (2 x 2401 classes)")
    dev_ssl = copy.deepcopy(ssl).to(device)
    compare_losses(report, "ssl", ssl, dev_ssl, data.ssl(compare_seconds(args), gen), device)
    fitted_training(report, "ssl", dev_ssl, data.ssl, args, device, gen)


def asr_part(report: Report, args, device: torch.device, data: Fbank, stats_file: Path,
             gen: torch.Generator) -> tuple[torch.nn.Module, torch.nn.Module, list[str]]:
    """ASR: CPU comparison, timed training steps; returns (CPU model, an untrained copy, token list)."""
    asr, token_list = build_asr(args.size, args.vocab, args.seed, stats_file)
    report.line("asr", f"model: ESPnetASRModel with {type(asr.encoder).__name__}, {count_params(asr):.1f}M "
                       f"parameters, {args.vocab} units, CTC + attention decoder")
    # copies before any forward pass: one to train, one (still untrained) to stream on the device
    stream_copy = copy.deepcopy(asr)
    dev_asr = copy.deepcopy(asr).to(device)
    for model in (asr, dev_asr):
        set_chunk_mask(model.encoder, chunk_frames(CHUNK_MS), None)  # eval forward: 640 ms chunks
    compare_losses(report, "asr", asr, dev_asr, data.asr(compare_seconds(args), gen, args.vocab), device)
    fitted_training(report, "asr", dev_asr, lambda s, g: data.asr(s, g, args.vocab), args, device, gen)
    return asr, stream_copy, token_list


def compare_seconds(args) -> list[float]:
    """Durations of the padded two-utterance batch of the CPU comparisons."""
    return [args.utt_seconds[1], 0.75 * args.utt_seconds[1]]


def main(argv: list[str] | None = None) -> int:
    """Run the checks; returns the exit status (0 = every check passed)."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here (use --device cpu to test the script)", file=sys.stderr)
        return 2
    report = Report()
    t0 = time.perf_counter()
    env = environment(device)
    report.line("env", ", ".join(f"{k} {v}" for k, v in env.items()))
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    waves = [voiced_wave(float(rng.uniform(4.0, 7.0)), rng) for _ in range(max(args.stream_utts, 2))]
    stats = CmvnStats(80)
    for wave in waves:
        stats.add(fbank(wave, SR))
    data = Fbank(stats)
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "cmvn_stats.npz"
        stats.save_npz(stats_file)  # global MVN as in the recipes; read when the models are built
        run_section(report, "ssl", ssl_part, report, args, device, data, stats_file, gen)
        run_section(report, "online", online_part, report, args, device, build_ssl, stats_file, gen, sync)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        asr = run_section(report, "asr", asr_part, report, args, device, data, stats_file, gen)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if asr is not None:
        cpu_asr, stream_copy, token_list = asr
        report.figures["stream"] = run_section(report, "stream", check_streaming, report, cpu_asr, stream_copy,
                                               token_list, waves[: args.stream_utts], args, device)
    passed = sum(c["ok"] for c in report.checks)
    ok = passed == len(report.checks) and asr is not None
    print(f"RESULT: {'PASS' if ok else 'FAIL'} ({passed}/{len(report.checks)} checks, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"env": env, "args": vars(args) | {"json": str(args.json)},
                                         "figures": report.figures, "checks": report.checks, "pass": ok},
                                        indent=1, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
