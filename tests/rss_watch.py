"""Run a streaming decoder in a child process and watch its memory as its stream.jsonl grows.

The streaming CLI writes its events as the stream runs (into a temporary file renamed at the end), so
the latest event's ``audio_s`` says how far into the audio the decoder is. The child's resident set
size is read from /proc every ``interval`` seconds and filed under the minute of audio reached; the
peak is the kernel's high-water mark of the child (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path


def _status_mb(pid: int, field: str) -> float | None:
    """A memory line of /proc/PID/status (``VmRSS``, ``VmHWM``) in MB; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _audio_reached(out_dir: Path) -> float | None:
    """``audio_s`` of the last complete event in the stream.jsonl being written under ``out_dir`` (0 before
    the first); None when no stream.jsonl is being written (before the model is loaded, or after the end)."""
    for path in out_dir.glob(".stream.jsonl.*.tmp"):
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.path.getsize(path) - 65536))
                lines = f.read().split(b"\n")[:-1]  # the last piece may be cut
        except OSError:
            return None
        for line in reversed(lines):
            try:
                return float(json.loads(line)["audio_s"])
            except (ValueError, KeyError):
                continue
        return 0.0
    return None


def run_watched(cmd: list[str], out_dir: Path, env: dict | None = None, interval: float = 0.1,
                timeout: float = 3600.0) -> dict:
    """Run ``cmd`` (a streaming decoder writing into ``out_dir``) and watch it.

    Returns ``rc``, ``stderr`` (its tail), ``rss_mb`` (minute of audio reached -> RSS in MB when the
    decoder first got there; minute 0 = from the model loaded to the first event), ``peak_mb`` (the
    child's ``ru_maxrss``: its whole life, interpreter exit included, where torch's teardown adds about
    125 MB), ``stream_peak_mb`` (its high-water mark ``VmHWM`` last seen while stream.jsonl was being
    written: start-up and streaming, not the exit) and ``wall_s``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    err = out_dir.parent / f"{out_dir.name}.stderr"
    start = time.monotonic()
    rss: dict[int, float] = {}
    stream_peak = 0.0
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # its own rusage: ru_maxrss is its peak
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - start > timeout:
                proc.kill()
            audio = _audio_reached(out_dir)
            now, hwm = _status_mb(proc.pid, "VmRSS"), _status_mb(proc.pid, "VmHWM")
            if audio is not None and now is not None:
                rss.setdefault(int(audio // 60), now)
                stream_peak = max(stream_peak, hwm or 0.0)
            time.sleep(interval)
    return {"rc": proc.returncode, "stderr": err.read_text(errors="replace")[-3000:], "rss_mb": rss,
            "peak_mb": usage.ru_maxrss / 1024, "stream_peak_mb": stream_peak, "wall_s": time.monotonic() - start}


def chunk_times(stream_jsonl: Path, first_s: float = 10.0,
                head_at: float = 0.0) -> tuple[list[float], list[float], float]:
    """Compute seconds of the chunks in ``first_s`` of audio from ``head_at`` and in the last ``first_s``,
    and the audio length.

    With the simulated live clock and a decoder faster than real time, a partial's ``wall_s`` minus
    its ``audio_s`` is the compute time of the call that encoded its chunk. Read line by line.
    """
    times = []
    with open(stream_jsonl, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            if event["type"] == "partial":
                times.append((event["audio_s"], event["wall_s"] - event["audio_s"]))
    end = max(a for a, _ in times)
    first = [c for a, c in times if head_at < a <= head_at + first_s]
    last = [c for a, c in times if a > end - first_s]
    return first, last, end
