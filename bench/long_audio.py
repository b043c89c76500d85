"""Benchmark the streaming CLI on one long recording: memory and per-chunk time from minute 1 to the end.

The recording (default 60 min) is made from the real speech in ../shared/data (Libri-Trans readings
and runs of FSDD digits with pauses; ``tests/long_wav.py``), its last 30 s a copy of its first 30 s.
The model is the tests' tiny tone-word ASR model (``tests/tiny_asr.py``), trained here in about 30 s:
its per-chunk cost is small, so what grows with the stream would show.

1. ``python -m chunkssl.bin.asr_inference_streaming`` with the README's long-stream flags
   (``--endpoint-ms 800 --max-segment-s 30 --left-chunks 4``, 640 ms chunks, 40 ms pieces) in a child
   process: RSS when the stream reaches each minute (the CLI writes stream.jsonl as it runs), the
   high-water mark while it streamed, and ``ru_maxrss`` (whole life, torch's exit included); per-chunk
   compute of the last 10 s and of the same audio at its start (20-30 s) from its stream.jsonl
   (``wall_s - audio_s`` of a partial on the simulated clock).
2. Side by side, as ``bench/streaming.py`` does (this VM's speed moves by up to 2x within minutes):
   the CLI's own per-utterance loop (``stream_utterance`` with a stream.jsonl sink) in this process on
   the same recording; during its last 30 s every chunk is followed by one chunk of a fresh streamer
   replaying the first 30 s (the same audio: the recording ends with a copy of its start), and the
   ratio of their median chunk times is the growth.

Run: ``nice -n 19 .venv/bin/python bench/long_audio.py [--minutes 60] [--readme]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from long_wav import SR, write_long_wav  # noqa: E402
from readme_block import write_block  # noqa: E402
from rss_watch import chunk_times, run_watched  # noqa: E402

SHARED = Path(os.environ.get("CHUNKSSL_SHARED_DATA", REPO.parent / "shared" / "data"))
FLAGS = {"chunk_ms": 640, "left_chunks": 4, "endpoint_ms": 800, "max_segment_s": 30.0}
PIECE = int(0.04 * SR)
WINDOW_S = 10.0  # first and last 10 s of the CLI run
SIDE_S = 30.0    # the side-by-side window: more chunks, as the host is noisy (the recording ends with a copy)


def cli_run(model: dict, wav_scp: Path, out: Path) -> dict:
    """The streaming CLI in a child process, watched (see ``tests/rss_watch.py``)."""
    cmd = [sys.executable, "-m", "chunkssl.bin.asr_inference_streaming", "--asr_train_config", str(model["config"]),
           "--asr_model_file", str(model["model"]), "--wav-scp", str(wav_scp), "--chunk-ms", str(FLAGS["chunk_ms"]),
           "--left-chunks", str(FLAGS["left_chunks"]), "--endpoint-ms", str(FLAGS["endpoint_ms"]),
           "--max-segment-s", f"{FLAGS['max_segment_s']:g}", "--piece-ms", "40", "--num-threads", "1",
           "--output-dir", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    run = run_watched(cmd, out, env, interval=0.1, timeout=4 * 3600)
    if run["rc"] != 0:
        raise SystemExit(f"streaming CLI failed ({run['rc']}):\n{run['stderr']}")
    # the recording ends with a copy of its first SIDE_S: its last 10 s are the same audio as these
    first, last, end = chunk_times(out / "stream.jsonl", WINDOW_S, head_at=SIDE_S - WINDOW_S)
    utt = json.loads((out / "timing.json").read_text())["utterances"]["long"]
    return {**run, "first_ms": statistics.median(first) * 1e3, "last_ms": statistics.median(last) * 1e3,
            "audio_s": end, "rtf": utt["rtf"], "chars": len((out / "text").read_text().split(maxsplit=1)[-1])}


def side_by_side(model: dict, wav: Path, jsonl: Path) -> dict:
    """The CLI's loop on the whole recording; in its last 10 s, one reference chunk after each of its chunks."""
    from chunkssl.streaming.decode_set import UtteranceTiming, stream_utterance
    from chunkssl.streaming.streamer import Streamer

    def streamer() -> Streamer:
        return Streamer.from_files(str(model["config"]), str(model["model"]), FLAGS["chunk_ms"],
                                   FLAGS["left_chunks"], beam_size=10, ctc_weight=0.3,
                                   endpoint_ms=FLAGS["endpoint_ms"], max_segment_s=FLAGS["max_segment_s"])

    wave, _ = sf.read(wav, dtype="float32")
    head = wave[: int(SIDE_S * SR)]
    long, ref = streamer(), streamer()
    window_from = (len(wave) - len(head)) / SR
    timing, long_ms, ref_ms, fed = UtteranceTiming(keep_times=False), [], [], [0]

    def ref_chunk() -> None:
        """Feed the reference pieces until it encodes a chunk (restart at the end of the head)."""
        while True:
            if fed[0] >= len(head):
                ref.finalize()
                fed[0] = 0
            start = time.perf_counter()
            events = ref.accept(head[fed[0]:fed[0] + PIECE], SR)
            took = time.perf_counter() - start
            fed[0] += PIECE
            if events:
                ref_ms.append(took * 1e3)
                return

    with open(jsonl, "w", encoding="utf-8") as out:
        def sink(event) -> None:
            out.write(json.dumps({"utt": "long", **event.as_dict()}, ensure_ascii=False) + "\n")
            timing.add(event)
            if event.type == "partial" and event.audio_s > window_from:
                long_ms.append((event.wall_s - event.audio_s) * 1e3)  # its compute (simulated clock)
                ref_chunk()

        stream_utterance(long, wave, PIECE, False, sink)
    return {"long_ms": statistics.median(long_ms), "ref_ms": statistics.median(ref_ms),
            "ratio": statistics.median(long_ms) / statistics.median(ref_ms), "n": (len(long_ms), len(ref_ms))}


def report(args, cli: dict, side: dict, load: float) -> str:
    """The markdown block for bench/README.md."""
    rss = cli["rss_mb"]
    marks = [m for m in (1, 10, 30, 60) if m in rss] + ([max(rss)] if max(rss) not in (1, 10, 30, 60) else [])
    at = " / ".join(f"{rss[m]:.0f}" for m in marks)
    return "\n".join([
        f"Command: `nice -n 19 .venv/bin/python bench/long_audio.py --minutes {args.minutes:g}`; machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"1 thread; load average at start {load:.2f}.", "",
        f"Streaming CLI, {cli['audio_s'] / 60:.1f} min recording, flags `--chunk-ms 640 --left-chunks 4 "
        f"--endpoint-ms 800 --max-segment-s 30 --piece-ms 40`, tiny tone-word model (tests/tiny_asr.py).", "",
        "| RTF | RSS MB at minute " + " / ".join(map(str, marks)) + " | high-water while streaming | ru_maxrss "
        "(exit included) | peak / minute 1 | per-chunk ms 20-30 s | last 10 s (same audio) | plain ratio | side-by-side "
        "last 30 s / fresh replay | ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
        f"| {cli['rtf']:.4f} | {at} | {cli['stream_peak_mb']:.0f} | {cli['peak_mb']:.0f} | "
        f"{cli['stream_peak_mb'] / rss[1]:.3f} ({cli['peak_mb'] / rss[1]:.3f}) | {cli['first_ms']:.2f} | "
        f"{cli['last_ms']:.2f} | {cli['last_ms'] / cli['first_ms']:.2f} | {side['long_ms']:.2f} / "
        f"{side['ref_ms']:.2f} ms ({side['n'][0]} / {side['n'][1]} chunks) | {side['ratio']:.2f} |"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--model-dir", type=Path, default=None, help="reuse a tiny model trained here before")
    p.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = p.parse_args()
    load = os.getloadavg()[0]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from tiny_asr import train_tiny_asr

        root = args.model_dir or tmp / "model"
        model = {"config": root / "exp" / "config.yaml", "model": root / "exp" / "valid.loss.best.pth"}
        if not model["model"].exists():
            train_tiny_asr(root)
        wav = write_long_wav(tmp / "long.wav", args.minutes * 60, SHARED, repeat_head_s=SIDE_S)
        (tmp / "wav.scp").write_text(f"long {wav}\n")
        cli = cli_run(model, tmp / "wav.scp", tmp / "cli")
        print(f"CLI: RSS by minute {cli['rss_mb']}, high-water {cli['stream_peak_mb']:.0f} MB, ru_maxrss "
              f"{cli['peak_mb']:.0f} MB, per-chunk {cli['first_ms']:.2f} -> {cli['last_ms']:.2f} ms", flush=True)
        side = side_by_side(model, wav, tmp / "side.jsonl")
        print(f"side by side: {side}", flush=True)
    block = report(args, cli, side, load)
    print(block)
    if args.readme:
        write_block("long_audio", "## Long recordings through the streaming CLI (`bench/long_audio.py`)", block)


if __name__ == "__main__":
    main()
