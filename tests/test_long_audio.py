"""Long audio in bounded memory: events of one segment, stream.jsonl written as it runs, flat RSS.

The 60-minute acceptance run is ``bench/long_audio.py`` (tables in bench/README.md); here a 3-minute
recording made from the real corpora in ../shared/data goes through the streaming CLI in a child
process with the README's long-stream flags.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, shared_corpus
from tiny_asr import SR

LONG_FLAGS = ["--chunk-ms", "640", "--left-chunks", "4", "--endpoint-ms", "800", "--max-segment-s", "30"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def asr(tiny_asr):
    from chunkssl.asr.model import load_asr

    return load_asr(tiny_asr["config"], tiny_asr["model"])


def _words(tiny_asr, n: int) -> np.ndarray:
    """``n`` tone-word utterances of the training data with 1 s pauses: a stream of many segments."""
    pause = np.zeros(SR, dtype=np.float32)
    waves = [sf.read(tiny_asr["data"] / "wav" / f"utt{i:03d}.wav", dtype="float32")[0] for i in range(n)]
    return np.concatenate([x for w in waves for x in (w, pause)])


def test_events_hold_one_segment_and_timing_is_that_of_the_whole_stream(tiny_asr, asr):
    from chunkssl.streaming.decode_set import UtteranceTiming, stream_utterance
    from chunkssl.metrics.timing import Partial, emission_times
    from chunkssl.streaming.streamer import Streamer

    streamer = Streamer(asr, 320, 2, beam_size=5, endpoint_ms=480, max_segment_s=3.0)
    events, timing = [], UtteranceTiming(keep_times=True)

    def sink(event):
        events.append(event)
        timing.add(event)

    stream_utterance(streamer, _words(tiny_asr, 12), 640, False, sink)
    final = events[-1]
    segments = [e for e in events if e.type == "segment"]
    assert final.type == "final" and len(segments) >= 8
    assert [e.segment for e in segments] == list(range(len(segments)))
    # partials hold their own segment only: never longer than the longest committed segment
    longest = max(len(e.tokens) for e in segments)
    assert all(len(e.tokens) <= longest + 2 for e in events if e.type == "partial")
    # the committed segments and the last one make the final result
    tail = final.tokens[sum(len(e.tokens) for e in segments):]
    assert sum((e.tokens for e in segments), ()) + tail == final.tokens
    assert final.text == " ".join(t for t in [*(e.text for e in segments), asr.text(tail)] if t)
    # emission times as if every partial held the whole hypothesis so far (what the CLI used to keep)
    whole, done = [], ()
    for e in events[:-1]:
        if e.type == "segment":
            done += e.tokens
        else:
            whole.append(Partial(done + e.tokens, e.audio_s, e.wall_s))
    expected = emission_times(whole, Partial(final.tokens, final.audio_s, final.wall_s))
    assert timing.times == expected and timing.first_token_s == expected[0]
    assert timing.num_partials == len(whole)


def test_streaming_cli_writes_events_as_it_runs_and_one_segment_per_line(tiny_asr, tmp_path):
    from chunkssl.bin import asr_inference_streaming

    wav = tmp_path / "long.wav"
    sf.write(wav, _words(tiny_asr, 10), SR)
    (tmp_path / "wav.scp").write_text(f"long {wav}\n")
    rc = asr_inference_streaming.main(["--asr_train_config", str(tiny_asr["config"]), "--asr_model_file",
                                       str(tiny_asr["model"]), "--wav-scp", str(tmp_path / "wav.scp"),
                                       "--chunk-ms", "320", "--left-chunks", "2", "--endpoint-ms", "480",
                                       "--output-dir", str(tmp_path / "out")])
    assert rc == 0
    events = [json.loads(line) for line in (tmp_path / "out" / "stream.jsonl").read_text().splitlines()]
    segments = [e for e in events if e["type"] == "segment"]
    final = events[-1]
    assert final["type"] == "final" and len(segments) >= 5
    assert (tmp_path / "out" / "text").read_text() == f"long {final['text']}\n"
    assert " ".join(e["text"] for e in segments if e["text"]) in final["text"]
    committed = sum(len(e["tokens"]) for e in segments)
    assert max(len(e["tokens"]) for e in events if e["type"] == "partial") < committed / 2
    assert not list((tmp_path / "out").glob(".stream.jsonl.*"))  # the temporary file was renamed


@pytest.mark.slow
def test_streaming_cli_three_minutes_of_real_speech_in_flat_memory(tiny_asr, tmp_path):
    """Minute 1 to the end of a 3-minute stream: RSS does not grow (the 60-minute run is the bench's)."""
    from long_wav import write_long_wav
    from rss_watch import chunk_times, run_watched

    shared = shared_corpus("libritrans").parent
    shared_corpus("fsdd")
    wav = write_long_wav(tmp_path / "long.wav", 180, shared)
    (tmp_path / "wav.scp").write_text(f"long {wav}\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    out = tmp_path / "out"
    run = run_watched([sys.executable, "-m", "chunkssl.bin.asr_inference_streaming", "--asr_train_config",
                       str(tiny_asr["config"]), "--asr_model_file", str(tiny_asr["model"]), "--wav-scp",
                       str(tmp_path / "wav.scp"), *LONG_FLAGS, "--num-threads", "1", "--output-dir", str(out)],
                      out, env, timeout=600)
    assert run["rc"] == 0, run["stderr"]
    rss = run["rss_mb"]
    assert {1, 2} <= set(rss), f"stream.jsonl was not written as the stream ran: RSS seen at minutes {rss}"
    # after minute 1 nothing may grow with the stream (a few MB of allocator noise)
    assert run["stream_peak_mb"] < rss[1] + 16, run
    first, last, end = chunk_times(out / "stream.jsonl")
    assert end == pytest.approx(180, abs=0.7) and len(first) >= 14 and len(last) >= 14
    events = [json.loads(line) for line in (out / "stream.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "segment" for e in events) >= 6  # max 30 s segments at least
    timing = json.loads((out / "timing.json").read_text())["utterances"]["long"]
    assert timing["aligned"] is False and timing["first_token_latency_s"] is not None
