"""True streaming decoding of a set: audio fed in pieces to :class:`~chunkssl.streaming.streamer.Streamer`.

    python -m chunkssl.bin.asr_inference_streaming --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.acc.best.pth --wav-scp data/test/wav.scp [--segments data/test/segments] \\
        --chunk-ms 640 [--left-chunks -1] --piece-ms 40 [--beam-size 10 --ctc-weight 0.3 --length-bonus 0] \\
        [--dtype float32|bfloat16] [--realtime false] [--no-rescore] --output-dir DIR

Writes (atomically):

- ``DIR/text``: final hypotheses (Kaldi format); ``DIR/token_int``: their token ids.
- ``DIR/stream.jsonl``: one JSON object per event,
  ``{"utt", "type": "partial"|"final", "audio_s", "wall_s", "text", "tokens"}`` (token ids).
- ``DIR/timing.json``: RTF (total and per utterance), first-token latency and token emission delay
  summaries (:mod:`chunkssl.metrics.timing`, definitions in docs/metrics.md). Token audio ends come
  from a CTC forced alignment of the final tokens to the offline (full-context) CTC posteriors of the
  same model; that pass is not counted in the compute time.

Clock: with ``--realtime true`` each piece is fed when it would arrive live (the decoder sleeps) and
``wall_s`` is measured. With ``--realtime false`` (default) the audio is fed as fast as possible and
``wall_s`` is the simulated live clock: a piece arriving at its audio end time is processed after the
previous one, ``ready = max(arrival, previous ready) + compute`` (``simulated_wall_clock``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from chunkssl.asr.decode import ctc_log_probs, encode
from chunkssl.asr.io import SAMPLE_RATE, iter_audio
from chunkssl.features import fbank
from chunkssl.fileio import atomic_open
from chunkssl.metrics.timing import (Partial, emission_delays, emission_times, real_time_factor,
                                     simulated_wall_clock, summarize, token_end_times)
from chunkssl.streaming.encoder import encoder_frames_for
from chunkssl.streaming.streamer import Streamer, StreamEvent

FRAME_SHIFT_S = 0.04


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr_train_config", "--asr-train-config", required=True)
    p.add_argument("--asr_model_file", "--asr-model-file", required=True)
    p.add_argument("--wav-scp", "--wav_scp", required=True)
    p.add_argument("--segments", default=None)
    p.add_argument("--chunk-ms", "--chunk_ms", type=int, default=640)
    p.add_argument("--left-chunks", "--left_chunks", type=int, default=-1)
    p.add_argument("--piece-ms", "--piece_ms", type=float, default=40.0, help="audio piece fed per call")
    p.add_argument("--beam-size", "--beam_size", type=int, default=10)
    p.add_argument("--ctc-weight", "--ctc_weight", type=float, default=0.3)
    p.add_argument("--length-bonus", "--length_bonus", type=float, default=0.0)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--realtime", type=_bool, default=False, help="pace the audio in real time")
    p.add_argument("--no-rescore", "--no_rescore", action="store_true", help="final = best CTC prefix")
    p.add_argument("--endpoint-ms", "--endpoint_ms", type=int, default=None,
                   help="end a segment after this much trailing blank (long audio; default: one segment)")
    p.add_argument("--max-segment-s", "--max_segment_s", type=float, default=None,
                   help="end a segment after this many seconds even without a pause")
    p.add_argument("--num-threads", "--num_threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--output-dir", "--output_dir", required=True)
    return p


def stream_utterance(streamer: Streamer, wave, piece: int, realtime: bool) -> tuple[list[StreamEvent], float]:
    """Feed one utterance; returns its events (wall clock real or simulated) and total compute seconds."""
    events: list[tuple[StreamEvent, int]] = []  # event and the index of the call that produced it
    arrivals, computes = [], []
    t0 = time.perf_counter()
    for call, start in enumerate(range(0, len(wave), piece)):
        chunk = wave[start:start + piece]
        arrival = (start + len(chunk)) / SAMPLE_RATE
        if realtime:
            time.sleep(max(0.0, arrival - (time.perf_counter() - t0)))
        tic = time.perf_counter()
        events += [(e, call) for e in streamer.accept(chunk, SAMPLE_RATE)]
        computes.append(time.perf_counter() - tic)
        arrivals.append(arrival)
    tic = time.perf_counter()
    final = streamer.finalize()
    computes.append(time.perf_counter() - tic)
    arrivals.append(len(wave) / SAMPLE_RATE)
    events.append((final, len(computes) - 1))
    if realtime:
        return [e for e, _ in events], sum(computes)
    ready = simulated_wall_clock(arrivals, computes)
    return [StreamEvent(e.type, e.audio_s, ready[i], e.text, e.tokens, e.token_strs) for e, i in events], sum(computes)


def main(argv: list[str] | None = None) -> None:
    """Stream every utterance and write text, token_int, stream.jsonl and timing.json."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    if args.piece_ms <= 0:
        raise SystemExit(f"--piece-ms must be positive, got {args.piece_ms}")
    streamer = Streamer.from_files(args.asr_train_config, args.asr_model_file, args.chunk_ms, args.left_chunks,
                                   args.beam_size, args.ctc_weight, dtype=args.dtype,
                                   length_bonus=args.length_bonus, rescore=not args.no_rescore,
                                   endpoint_ms=args.endpoint_ms, max_segment_s=args.max_segment_s)
    piece = max(1, int(round(args.piece_ms * SAMPLE_RATE / 1000)))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts, token_ints, lines, per_utt = [], [], [], {}
    all_delays, first_latencies = [], []
    total_compute = total_audio = 0.0
    for utt, wave in iter_audio(args.wav_scp, args.segments):
        events, compute = stream_utterance(streamer, wave, piece, args.realtime)
        final = events[-1]
        audio_s = len(wave) / SAMPLE_RATE
        total_compute += compute
        total_audio += audio_s
        for e in events:
            lines.append(json.dumps({"utt": utt, **e.as_dict()}, ensure_ascii=False) + "\n")
        texts.append(f"{utt} {final.text}".rstrip() + "\n")
        token_ints.append(f"{utt} {' '.join(map(str, final.tokens))}".rstrip() + "\n")
        info = {"audio_s": audio_s, "compute_s": compute,
                "rtf": real_time_factor(compute, audio_s) if audio_s > 0 else None,
                "num_partials": len(events) - 1, "first_token_latency_s": None, "mean_emission_delay_s": None}
        if final.tokens:
            partials = [Partial(e.tokens, e.audio_s, e.wall_s) for e in events[:-1]]
            last = Partial(final.tokens, final.audio_s, final.wall_s)
            emitted = emission_times(partials, last)
            info["first_token_latency_s"] = emitted[0]
            first_latencies.append(emitted[0])
            feats = fbank(wave, SAMPLE_RATE)
            if encoder_frames_for(feats.shape[0]) > 0:
                lp = ctc_log_probs(streamer.asr, encode(streamer.asr, feats, None, None))
                try:
                    ends = token_end_times(lp, final.tokens, FRAME_SHIFT_S, blank=streamer.asr.model.blank_id)
                except ValueError as exc:  # too many tokens for the frames: no delay for this utterance
                    logging.warning("%s: no forced alignment (%s)", utt, exc)
                else:
                    delays = emission_delays(emitted, ends)
                    all_delays += delays
                    info["mean_emission_delay_s"] = sum(delays) / len(delays)
        per_utt[utt] = info
        logging.info("%s: %s", utt, final.text)
    with atomic_open(out / "text", "w") as f:
        f.writelines(texts)
    with atomic_open(out / "token_int", "w") as f:
        f.writelines(token_ints)
    with atomic_open(out / "stream.jsonl", "w") as f:
        f.writelines(lines)
    timing = {"chunk_ms": args.chunk_ms, "left_chunks": args.left_chunks, "piece_ms": args.piece_ms,
              "dtype": args.dtype, "clock": "realtime" if args.realtime else "simulated",
              "num_utts": len(per_utt), "audio_s": total_audio, "compute_s": total_compute,
              "rtf": real_time_factor(total_compute, total_audio) if total_audio > 0 else None,
              "first_token_latency_s": summarize(first_latencies),
              "token_emission_delay_s": summarize(all_delays), "utterances": per_utt}
    with atomic_open(out / "timing.json", "w") as f:
        json.dump(timing, f, indent=1)


if __name__ == "__main__":
    main()
