"""Benchmark true streaming ASR: our Streamer against ESPnet's Speech2TextStreaming, same audio, one run.

Both models have the size of ``conf/asr/chunk_conformer_30m.yaml`` (12-layer 256-dim conformer encoder,
6-layer transformer decoder, 5,000 tokens) with random weights, *paced* to emit what a trained model
would (see ``bench/streaming_setup.py``).

- ours: ``chunk_conformer`` + :class:`~chunkssl.streaming.streamer.Streamer` (incremental fbank, cached
  chunk encoder, incremental CTC prefix beam search, attention rescoring per segment), 640 ms chunks,
  left limit 4 chunks, audio fed in 40 ms pieces; float32, bfloat16, and int8 weights (dynamic quantization).
- ours on onnxruntime: the same model exported (``chunkssl.bin.export_onnx --chunk-ms 640 --left-chunks 4
  --int8``: encoder step and attention decoder) in :class:`~chunkssl.deploy.onnx_streamer.OnnxStreamer`,
  float32 and int8 (``bench/streaming_onnx.py``; ``--threads`` onnxruntime threads).
- peer: ESPnet ``contextual_block_conformer`` (block 32 frames, hop 16 = 640 ms, no look-ahead) with
  ``Speech2TextStreaming`` (joint CTC/attention online beam search), fed 640 ms pieces (its hop).

Audio: synthesised sentences (espeak-ng) separated by 0.4-1.2 s pauses, repeated to length.
Measured: RTF (compute seconds per audio second, ``finalize`` included) on a 60 s stream fed to all
systems in lockstep, 640 ms of audio to each in turn (same moments, so host load hits them alike), with
median per-chunk compute time over the first and the last 10 s; and for ours, in each number format,
a long stream (default 60 min) with RSS every minute and per-chunk growth measured side by side (see
:func:`run_long`).

Run: ``python bench/streaming.py [--threads 2] [--minutes 60] [--readme]`` (``--quick``: short smoke run).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from streaming_setup import (BEAM, FRAME_S, SR, Pacer, TimedStreamer, build_ours, build_peer, make_audio,
                             pace_ours, pace_peer, params)
from streaming_onnx import PacedOnnxStreamer, export_bench_model
from readme_block import write_block
from chunkssl.asr.model import LoadedASR
from chunkssl.asr.precision import NUMBER_FORMATS
from chunkssl.streaming.streamer import Streamer

CHUNK_MS = 640


# ---------------------------------------------------------------- runs
PEER = "ESPnet Speech2TextStreaming (float32)"
DTYPES = {name: NUMBER_FORMATS[name] for name in ("float32", "bfloat16", "int8")}
ONNX = {"float32": False, "int8": True}  # onnxruntime rows: int8 or not
GOAL_RTF = {"onnx-float32": 0.035, "onnx-int8": 0.02}  # issue 18's goals for the onnxruntime rows
PIECE = int(0.04 * SR)  # our streamer is fed 40 ms pieces
FIRST_S = 10.0          # per-chunk times are compared over the first and the last 10 s


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PacedStreamer(TimedStreamer):
    """Our Streamer on its own paced copy of the model (each copy keeps its own CTC frame counter)."""

    def __init__(self, asr: LoadedASR, speech: np.ndarray, dtype: torch.dtype, warmup: np.ndarray):
        self.asr = copy.deepcopy(asr)
        # the streamer casts or quantizes the model's layers first; pacing hooks go on the final modules
        self.streamer = Streamer(self.asr, CHUNK_MS, left_chunks=4, beam_size=BEAM, ctc_weight=0.3, dtype=dtype,
                                 endpoint_ms=800, max_segment_s=30)
        self.pacer = Pacer(speech)
        self.state, _ = pace_ours(self.asr.model, self.pacer)
        self.streamer.accept(warmup)
        self.streamer.finalize()
        self.restart()


def system_name(kind: str) -> str:
    """Row name of a system kind: float32/bfloat16/int8 (PyTorch) or onnx-float32/onnx-int8."""
    if kind.startswith("onnx-"):
        return f"chunkssl OnnxStreamer ({kind[5:]})"
    return f"chunkssl Streamer ({kind})"


def make_system(kind: str, asr: LoadedASR, speech: np.ndarray, warmup: np.ndarray, onnx_dir: Path | None,
                threads: int):
    """A paced streamer of one kind (see :func:`system_name`)."""
    if kind.startswith("onnx-"):
        return PacedOnnxStreamer(asr, onnx_dir, ONNX[kind[5:]], threads, speech, warmup)
    return PacedStreamer(asr, speech, DTYPES[kind], warmup)


def _result() -> dict:
    return {"total": 0.0, "times": [], "ends": []}


def run_side_by_side(asr: LoadedASR, peer, wave: np.ndarray, speech: np.ndarray, kinds: list[str],
                     onnx_dir: Path | None, threads: int) -> dict[str, dict]:
    """``wave`` through ours (each kind) and the peer in lockstep, 640 ms of audio at a time.

    Interleaving puts all of them at the same moments, so a change in host load hits them alike.
    """
    ours = {system_name(k): make_system(k, asr, speech, wave[:SR], onnx_dir, threads) for k in kinds}
    results = {name: _result() for name in ours}
    if peer is not None:
        model, s2t = peer
        pace_peer(model, Pacer(speech))
        s2t(wave[:SR].copy(), is_final=True)  # warm-up
        results[PEER] = _result()
    block = int(CHUNK_MS / 1000 * SR)
    for b0 in range(0, len(wave), block):
        for name, paced in ours.items():
            res = results[name]
            for i in range(b0, min(b0 + block, len(wave)), PIECE):
                dt, chunk = paced.feed(wave[i:i + PIECE])
                res["total"] += dt
                if chunk:
                    res["times"].append(dt)
                    res["ends"].append(min(i + PIECE, len(wave)) / SR)
        if peer is not None:
            final = b0 + block >= len(wave)
            t0 = time.perf_counter()
            out = s2t(wave[b0:b0 + block].copy(), is_final=final)
            dt, res = time.perf_counter() - t0, results[PEER]
            res["total"] += dt
            if final:
                res["tokens"] = len(out[0][2]) if out else 0
            else:
                res["times"].append(dt)
                res["ends"].append((b0 + block) / SR)
    for name, paced in ours.items():
        dt, results[name]["tokens"] = paced.finish()
        results[name]["total"] += dt
    seconds, due = len(wave) / SR, Pacer(speech).tokens_due(len(speech))
    for res in results.values():
        res.update(rtf=res["total"] / seconds, due=due, times=np.array(res["times"]), ends=np.array(res["ends"]))
    return results


def run_long(asr: LoadedASR, wave: np.ndarray, speech: np.ndarray, kind: str, onnx_dir: Path | None,
             threads: int) -> dict:
    """A long stream through ours, with RSS every minute and two side-by-side windows.

    In the last 10 s before minute 10 and before the end, every piece fed to the long stream is
    followed by one piece fed to a fresh streamer replaying the stream's first 10 s: the ratio of
    their median chunk times is growth over the stream measured at the same moments (host load
    on this shared VM moves by up to 2x within minutes, which a first-then-last comparison would
    mistake for growth).
    """
    first = int(FIRST_S * SR)
    long = make_system(kind, asr, speech, wave[:SR], onnx_dir, threads)
    ref = make_system(kind, asr, speech[: first // int(FRAME_S * SR)], wave[:SR], onnx_dir, threads)
    minutes = len(wave) / SR / 60
    windows = {m: (int(m * 60 * SR) - first, int(m * 60 * SR)) for m in sorted({min(10.0, minutes), minutes})}
    compare = {m: ([], []) for m in windows}
    res, rss, ref_at = _result(), {}, 0
    minute = 60 * SR
    for i in range(0, len(wave), PIECE):
        dt, chunk = long.feed(wave[i:i + PIECE])
        res["total"] += dt
        if chunk:
            res["times"].append(dt)
            res["ends"].append(min(i + PIECE, len(wave)) / SR)
        for m, (lo, hi) in windows.items():
            if lo <= i < hi:
                if i == lo:
                    ref.restart()
                    ref_at = 0
                ref_dt, ref_chunk = ref.feed(wave[ref_at:ref_at + PIECE])
                ref_at += PIECE
                if chunk:
                    compare[m][0].append(dt)
                if ref_chunk:
                    compare[m][1].append(ref_dt)
        if (i + PIECE) // minute > i // minute:
            rss[(i + PIECE) // minute] = rss_mb()
    segments = long.streamer.num_segments + 1
    dt, tokens = long.finish()
    res["total"] += dt
    res.update(rtf=res["total"] / (len(wave) / SR), times=np.array(res["times"]), ends=np.array(res["ends"]),
               tokens=tokens, due=long.pacer.tokens_due(len(speech)), rss=rss, segments=segments,
               minutes=minutes, side={m: float(np.median(a) / np.median(b)) for m, (a, b) in compare.items()})
    return res


def window_ms(res: dict, lo: float, hi: float) -> float:
    """Median per-chunk compute (ms) of the chunks ending in [lo, hi) seconds of audio."""
    sel = res["times"][(res["ends"] >= lo) & (res["ends"] < hi)]
    return float(np.median(sel) * 1000) if sel.size else float("nan")


# ---------------------------------------------------------------- report
def report(args, ours_p: float, peer_p: float, short: dict, longs: dict[str, dict]) -> str:
    n = args.short_s
    lines = [f"Command: `.venv/bin/python bench/streaming.py --threads {args.threads} --minutes {args.minutes:g}"
             f"{' --quick' if args.quick else ''}`; machine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads; load average at start "
             f"{args.load:.2f}.", "",
             f"Models: ours {ours_p:.1f}M parameters, peer {peer_p:.1f}M. {n:g} s stream fed to all systems in "
             f"lockstep (640 ms of audio to each in turn), chunk/hop 640 ms, beam {BEAM}.",
             "", "| system | RTF | per-chunk ms, first 10 s | per-chunk ms, last 10 s | last / first | tokens (paced) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, res in short.items():
        first, last = window_ms(res, 0, FIRST_S), window_ms(res, n - FIRST_S, n + 1)
        lines.append(f"| {name} | {res['rtf']:.4f} | {first:.1f} | {last:.1f} | {last / first:.2f} | "
                     f"{res['tokens']} ({res['due']}) |")
    if PEER in short:
        lines += [""] + [f"Speed-up over the peer on the {n:g} s stream, {name}: "
                         f"{short[PEER]['rtf'] / short[name]['rtf']:.1f}x." for name in short if name != PEER]
    torch_f32 = short.get(system_name("float32"))
    for kind, goal in GOAL_RTF.items():
        res = short.get(system_name(kind))
        if res is not None:
            vs = f", {torch_f32['rtf'] / res['rtf']:.2f}x faster than PyTorch float32" if torch_f32 else ""
            lines.append(f"{system_name(kind)}: RTF {res['rtf']:.4f} (goal <= {goal}: "
                         f"{'met' if res['rtf'] <= goal else 'missed'}){vs}.")
    if longs:
        lines += ["", "Long streams (ours; endpoint 800 ms, segments of at most 30 s). Side-by-side: the chunks "
                  "of the last 10 s against a fresh streamer replaying the first 10 s at the same moments "
                  "(see `run_long`); plain: last 10 s against the stream's own first 10 s.", "",
                  "| system | minutes | RTF | per-chunk ms, first 10 s | last 10 s of min 10 | ratio side-by-side "
                  "(plain) | last 10 s | ratio side-by-side (plain) | RSS MB at min 1 / 10 / 30 / 60, max | "
                  "segments | tokens (paced) |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
        for name, res in longs.items():
            m = res["minutes"]
            first, tenth = window_ms(res, 0, FIRST_S), window_ms(res, 600 - FIRST_S, 600)
            end = window_ms(res, m * 60 - FIRST_S, m * 60 + 1)
            at10 = res["side"].get(min(10.0, m), float("nan"))
            rss = " / ".join(f"{res['rss'][k]:.0f}" if k in res["rss"] else "-" for k in (1, 10, 30, 60))
            lines.append(f"| {name} | {m:g} | {res['rtf']:.4f} | {first:.1f} | {tenth:.1f} | {at10:.2f} "
                         f"({tenth / first:.2f}) | {end:.1f} | {res['side'][m]:.2f} ({end / first:.2f}) | {rss}, "
                         f"{max(res['rss'].values()):.0f} | {res['segments']} | {res['tokens']} ({res['due']}) |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--minutes", type=float, default=60.0, help="length of the long stream (ours only)")
    p.add_argument("--short-s", type=float, default=60.0, help="stream length for the side-by-side RTF")
    p.add_argument("--kinds", default="float32,bfloat16,int8,onnx-float32,onnx-int8",
                   help="our systems: PyTorch number formats, onnx-float32, onnx-int8 (onnxruntime)")
    p.add_argument("--long-kinds", default="float32,bfloat16,int8,onnx-float32,onnx-int8",
                   help="systems run on the long stream")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 20 s and 2 min streams")
    p.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = p.parse_args()
    if args.quick:
        args.short_s, args.minutes = 20.0, 2.0
    args.load = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        asr = build_ours(tmp)
        kinds = args.kinds.split(",")
        for kind in kinds + args.long_kinds.split(","):
            if kind not in DTYPES and kind.removeprefix("onnx-") not in ONNX:
                p.error(f"unknown kind {kind!r}")
        onnx_dir = None
        if any(k.startswith("onnx-") for k in kinds + args.long_kinds.split(",")):
            onnx_dir = export_bench_model(asr, tmp / "onnx")
        peer_model, s2t = (None, None) if args.skip_peer else build_peer(tmp)
        wave, speech = make_audio(max(args.short_s, args.minutes * 60))
        n = int(args.short_s * SR)
        short_wave, short_speech = wave[:n], speech[: n // int(FRAME_S * SR)]
        short = run_side_by_side(asr, None if s2t is None else (peer_model, s2t), short_wave, short_speech, kinds,
                                 onnx_dir, args.threads)
        for name, res in short.items():
            print(f"{name}: RTF {res['rtf']:.4f}, {res['tokens']} tokens", flush=True)
        longs = {}
        for name in (args.long_kinds.split(",") if args.minutes > 0 else []):
            longs[name] = res = run_long(asr, wave, speech, name, onnx_dir, args.threads)
            print(f"long {name}: RTF {res['rtf']:.4f}, side-by-side ratios {res['side']}", flush=True)
        table = report(args, params(asr.model), params(peer_model) if peer_model is not None else float("nan"),
                       short, longs)
    print(table)
    if args.readme:
        write_block("streaming", "## Streaming ASR vs ESPnet Speech2TextStreaming (`bench/streaming.py`)", table)


if __name__ == "__main__":
    main()
