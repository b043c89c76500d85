"""Stream every utterance of a wav.scp through a :class:`~chunkssl.streaming.streamer.Streamer` and write
its results: the set loop shared by the fbank and the codec streaming entry points
(``chunkssl.bin.asr_inference_streaming``, ``chunkssl.codec.asr_inference_streaming``).

Writes ``text``, ``token_int``, ``stream.jsonl`` (one JSON object per event, as they come) and
``timing.json`` (RTF, first-token latency, token emission delays; :mod:`chunkssl.metrics.timing`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from chunkssl.asr.cli import DecodeResults, add_model_args
from chunkssl.asr.io import SAMPLE_RATE, iter_audio
from chunkssl.chunking import FRAME_MS
from chunkssl.fileio import atomic_open
from chunkssl.metrics.timing import EmissionClock, LiveClock, emission_delays, summarize, token_end_times
from chunkssl.streaming.streamer import Streamer, StreamEvent

FRAME_SHIFT_S = FRAME_MS / 1000


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_stream_args(p: argparse.ArgumentParser) -> None:
    """Options of every streaming decoder (model, search, audio, pacing, segmentation, output)."""
    add_model_args(p)
    p.add_argument("--wav-scp", "--wav_scp", required=True)
    p.add_argument("--segments", default=None)
    p.add_argument("--chunk-ms", "--chunk_ms", type=int, default=640)
    p.add_argument("--piece-ms", "--piece_ms", type=float, default=40.0, help="audio piece fed per call")
    p.add_argument("--realtime", type=_bool, default=False, help="pace the audio in real time")
    p.add_argument("--no-rescore", "--no_rescore", action="store_true", help="final = best CTC prefix")
    p.add_argument("--endpoint-ms", "--endpoint_ms", type=int, default=None,
                   help="end a segment after this much trailing blank (long audio; default: one segment)")
    p.add_argument("--max-segment-s", "--max_segment_s", type=float, default=None,
                   help="end a segment after this many seconds even without a pause")
    p.add_argument("--align-max-s", "--align_max_s", type=float, default=60.0,
                   help="emission delays (a full-context pass) only for utterances up to this long")


class UtteranceTiming:
    """First-token latency and token emission times of one utterance, from its events as they come.

    Emission is tracked one segment at a time (:class:`~chunkssl.metrics.timing.EmissionClock`): a
    committed segment never changes, so its tokens' emission depends on the events of that segment
    only, and what is held is the current segment's hypothesis; this gives the same times as
    :func:`~chunkssl.metrics.timing.emission_times` over the whole utterance. The emission time of
    every token is kept only when ``keep_times`` (for the emission delays of an aligned utterance).
    """

    def __init__(self, keep_times: bool):
        self.clock = EmissionClock()
        self.times: list[float] | None = [] if keep_times else None
        self.first_token_s: float | None = None
        self.committed = self.num_partials = 0
        self.final: StreamEvent | None = None

    def _emitted(self, times: list[float]) -> None:
        if times and self.first_token_s is None:
            self.first_token_s = times[0]
        if self.times is not None:
            self.times += times

    def add(self, event: StreamEvent) -> None:
        """Take the next event of the utterance (the final one last)."""
        if event.type == "partial":
            self.clock.update(event.tokens, event.wall_s)
            self.num_partials += 1
        elif event.type == "segment":
            self._emitted(self.clock.finish(event.tokens, event.wall_s))
            self.committed += len(event.tokens)
        else:  # the final event holds every segment: the ones not seen as segment events come last
            self._emitted(self.clock.finish(event.tokens[self.committed:], event.wall_s))
            self.final = event


def stream_utterance(streamer: Streamer, wave: np.ndarray, piece: int, realtime: bool,
                     sink: Callable[[StreamEvent], None]) -> float:
    """Feed one utterance in pieces, handing each event to ``sink`` as it comes (the final one last), with
    the wall clock real or simulated; returns the total compute seconds."""
    live, total = LiveClock(), 0.0
    t0 = time.perf_counter()

    def step(call: Callable[[], list[StreamEvent]], arrival: float) -> None:
        nonlocal total
        tic = time.perf_counter()
        events = call()
        compute = time.perf_counter() - tic
        total += compute
        ready = live.tick(arrival, compute)
        for event in events:
            sink(event if realtime else event.at(ready))

    for start in range(0, len(wave), piece):
        chunk = wave[start:start + piece]
        arrival = (start + len(chunk)) / SAMPLE_RATE
        if realtime:
            time.sleep(max(0.0, arrival - (time.perf_counter() - t0)))
        step(partial(streamer.accept, chunk, SAMPLE_RATE), arrival)
    step(lambda: [streamer.finalize()], len(wave) / SAMPLE_RATE)
    return total


def decode_stream_set(streamer: Streamer, args: argparse.Namespace,
                      offline_log_probs: Callable[[np.ndarray], torch.Tensor | None], head: dict) -> int:
    """Stream every utterance of ``args.wav_scp``; write text, token_int, stream.jsonl and timing.json.

    ``stream.jsonl`` is written as the events come (renamed into place at the end), so nothing grows
    with the number of events. ``offline_log_probs(wave)`` gives the model's full-context CTC
    posteriors of an utterance (None when it is too short): the forced alignment that dates each
    token's audio end. An utterance whose audio cannot be used goes into ``failed`` and the set goes
    on; returns the exit status (1 if any failed).
    """
    if args.piece_ms <= 0:
        raise SystemExit(f"--piece-ms must be positive, got {args.piece_ms}")
    piece = max(1, int(round(args.piece_ms * SAMPLE_RATE / 1000)))
    results = DecodeResults()
    all_delays, first_latencies = [], []
    with atomic_open(Path(args.output_dir) / "stream.jsonl", "w", encoding="utf-8") as jsonl:
        for utt, wave in iter_audio(args.wav_scp, args.segments, on_error=results.fail):
            # the full-context pass of a long recording would need memory growing with its square
            aligned = len(wave) <= args.align_max_s * SAMPLE_RATE
            timing = UtteranceTiming(keep_times=aligned)

            def sink(event: StreamEvent, utt: str = utt, timing: UtteranceTiming = timing) -> None:
                jsonl.write(json.dumps({"utt": utt, **event.as_dict()}, ensure_ascii=False) + "\n")
                timing.add(event)

            compute = stream_utterance(streamer, wave, piece, args.realtime, sink)
            final = timing.final
            info = results.add(utt, final.text, final.tokens, len(wave) / SAMPLE_RATE, compute,
                               num_partials=timing.num_partials, first_token_latency_s=timing.first_token_s,
                               mean_emission_delay_s=None)
            if final.tokens:
                first_latencies.append(timing.first_token_s)
                info["aligned"] = aligned
                lp = offline_log_probs(wave) if aligned else None
                if lp is not None:
                    try:
                        ends = token_end_times(lp, final.tokens, FRAME_SHIFT_S, blank=streamer.asr.model.blank_id)
                    except ValueError as exc:  # too many tokens for the frames: no delay for this utterance
                        logging.warning("%s: no forced alignment (%s)", utt, exc)
                    else:
                        delays = emission_delays(timing.times, ends)
                        all_delays += delays
                        info["mean_emission_delay_s"] = sum(delays) / len(delays)
            logging.info("%s: %s", utt, final.text)
    head = {**head, "chunk_ms": args.chunk_ms, "left_chunks": args.left_chunks, "piece_ms": args.piece_ms,
            "clock": "realtime" if args.realtime else "simulated"}
    return results.write(args.output_dir, head, {"first_token_latency_s": summarize(first_latencies),
                                                 "token_emission_delay_s": summarize(all_delays)})
