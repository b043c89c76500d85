"""Tokenization throughput of the FSQ presets and BEST-RQ on CPU, measured in the same run.

    python bench/fsq.py [--threads 2] [--utts 16] [--seconds 10] [--batch-size 8] [--repeats 3]

Each tokenizer is built from its config in conf/fsq/ (FSQ weights are random: speed does not depend
on training) and tokenizes the same in-memory fbank batches (no file I/O). Reports input fbank
frames (10 ms) per second and the real-time factor (compute seconds per second of audio; lower is
faster), best of ``--repeats`` round-robin passes after a warm-up pass. "weights" counts parameters and buffers
(BEST-RQ's frozen projection and codebooks are buffers).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chunkssl.fsq.bestrq import BestRQTokenizer  # noqa: E402
from chunkssl.fsq.tokenizer import FSQTokenizer  # noqa: E402

PRESETS = ("1k", "64k", "6m", "791m")


def build(name: str) -> torch.nn.Module:
    """Tokenizer of conf/fsq/<name>.yaml."""
    conf = yaml.safe_load((REPO / "conf" / "fsq" / f"{name}.yaml").read_text())
    if name == "bestrq":
        return BestRQTokenizer(**conf["bestrq_conf"]).eval()
    return FSQTokenizer(**conf["model_conf"]).eval()


def one_pass(tok: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Wall time of tokenizing every batch once."""
    start = time.perf_counter()
    for feats, lengths in batches:
        tok.tokenize(feats, lengths)
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print a markdown table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--utts", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each utterance")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tokenizers", nargs="+", default=[*PRESETS, "bestrq"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    frames = int(args.seconds * 100)
    # lengths vary by up to 20% so batches carry some padding, as in real use
    lengths = [int(frames * (0.8 + 0.2 * i / max(1, args.utts - 1))) for i in range(args.utts)]
    batches = []
    for s in range(0, args.utts, args.batch_size):
        lens = torch.tensor(lengths[s:s + args.batch_size])
        batches.append((torch.randn(len(lens), int(lens.max()), 80) * 3 + 10, lens))
    total_frames = sum(lengths)
    audio_s = total_frames / 100
    print(f"# FSQ tokenization throughput: {args.utts} utts x ~{args.seconds:g} s ({audio_s:.0f} s of audio), "
          f"batch {args.batch_size}, {args.threads} threads, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}\n")
    print("| tokenizer | vocab | code channels | weights | fbank frames/s | tokens/s | RTF |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    toks = {name: build(name) for name in args.tokenizers}
    for tok in toks.values():
        one_pass(tok, batches)  # warm-up
    best = {name: float("inf") for name in toks}
    # Round robin, so a burst of load from other processes hits every tokenizer alike; keep the best.
    for _ in range(args.repeats):
        for name, tok in toks.items():
            best[name] = min(best[name], one_pass(tok, batches))
    for name, tok in toks.items():
        vocab = 1
        for lv in tok.code_levels:
            vocab *= lv
        weights = sum(t.numel() for t in [*tok.parameters(), *tok.buffers()])
        secs = best[name]
        print(f"| {name} | {vocab:,} | {len(tok.code_levels)} | {weights / 1e6:.2f}M | {total_frames / secs:,.0f} "
              f"| {total_frames / tok.stack / secs:,.0f} | {secs / audio_s:.4f} |", flush=True)


if __name__ == "__main__":
    main()
