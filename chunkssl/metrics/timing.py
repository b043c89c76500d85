"""Streaming ASR timing: real-time factor, first-token latency and token emission delay.

Clocks. Every partial result of a streamer carries two times, both in seconds from the moment the
first audio sample of the utterance was fed: ``audio_s``, how much audio had been fed when the
partial was produced, and ``wall_s``, when it became available. With audio arriving in real time
and a decoder that keeps up, ``wall_s`` is ``audio_s`` plus the compute lag; for a decoder run
faster than real time on a file, :func:`simulated_wall_clock` (or :class:`LiveClock`, one chunk
at a time) reconstructs ``wall_s`` from the per-chunk compute times as if audio had arrived in real time.

Emission. A final-hypothesis token ``k`` (1-based) is *emitted* at the first partial from which every
later partial, and the final result itself, starts with the same first ``k`` tokens as the final
hypothesis. Tokens shown and later withdrawn therefore do not count; the final result (at
finalisation time) is the last "partial", so every final token has an emission time.

Delay. Token k's emission delay is its emission time minus the end of its audio, where the audio end
is ``(last frame aligned to k + 1) * frame_shift_s`` in a CTC forced alignment of the offline model
(:func:`token_end_times`). First-token latency is the emission time of the first final token.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import mean, median

import numpy as np
import torch


def real_time_factor(compute_s: float, audio_s: float) -> float:
    """Compute time divided by audio duration (below 1 means faster than real time)."""
    if audio_s <= 0:
        raise ValueError(f"audio duration must be positive to compute a real-time factor, got {audio_s}")
    return compute_s / audio_s


class LiveClock:
    """The simulated live clock one chunk at a time: ``ready = max(arrival, previous ready) + compute``."""

    def __init__(self) -> None:
        self.ready = float("-inf")

    def tick(self, arrival_s: float, compute_s: float) -> float:
        """When a chunk arriving at ``arrival_s`` and taking ``compute_s`` is done."""
        self.ready = max(arrival_s, self.ready) + compute_s
        return self.ready


def simulated_wall_clock(arrival_s: Sequence[float], compute_s: Sequence[float]) -> list[float]:
    """When each chunk's result is ready if chunk i arrives at ``arrival_s[i]`` and takes ``compute_s[i]``.

    Chunks are processed one at a time in order, so a chunk starts at the later of its arrival and
    the previous chunk's finish: ``ready_i = max(arrival_i, ready_{i-1}) + compute_i``.
    """
    if len(arrival_s) != len(compute_s):
        raise ValueError(f"{len(arrival_s)} arrival times but {len(compute_s)} compute times")
    clock = LiveClock()
    return [clock.tick(a, c) for a, c in zip(arrival_s, compute_s)]


def _viterbi_ctc(log_probs: np.ndarray, tokens: Sequence[int], blank: int) -> np.ndarray:
    """Frame labels of the best CTC path through ``tokens`` (fallback when torchaudio lacks forced_align)."""
    T = log_probs.shape[0]
    ext = [blank]
    for tok in tokens:
        ext += [tok, blank]
    S = len(ext)
    neg = -np.inf
    score = np.full(S, neg)
    score[0] = log_probs[0, ext[0]]
    if S > 1:
        score[1] = log_probs[0, ext[1]]
    back = np.zeros((T, S), dtype=np.int64)
    # A state may come from itself, the previous state, or skip a blank between two different tokens.
    can_skip = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(S)])
    for t in range(1, T):
        stay = score
        step = np.concatenate([[neg], score[:-1]])
        skip = np.where(can_skip, np.concatenate([[neg, neg], score[:-2]]), neg)
        cand = np.stack([stay, step, skip])
        best = cand.argmax(axis=0)
        back[t] = np.arange(S) - best
        score = cand[best, np.arange(S)] + log_probs[t, ext]
    s = S - 1 if score[S - 1] >= score[S - 2] else S - 2  # end in the final blank or the last token
    path = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = ext[s]
        s = back[t, s]
    return path


def _frame_labels(log_probs: torch.Tensor, tokens: list[int], blank: int) -> np.ndarray:
    try:
        from torchaudio.functional import forced_align
    except ImportError:
        forced_align = None
    if forced_align is None:
        return _viterbi_ctc(log_probs.double().numpy(), tokens, blank)
    labels, _ = forced_align(log_probs.float().unsqueeze(0), torch.tensor([tokens], dtype=torch.int32), blank=blank)
    return labels[0].numpy()


def token_end_times(log_probs: torch.Tensor | np.ndarray, token_ids: Sequence[int], frame_shift_s: float,
                    blank: int = 0) -> list[float]:
    """End time (s) of each token in the CTC forced alignment of ``token_ids`` to ``log_probs[T, V]``.

    ``log_probs`` are the offline model's CTC log-posteriors of one utterance and ``frame_shift_s``
    the duration of one of its frames (10 ms times the encoder's subsampling). Token k ends at
    ``(last frame aligned to k + 1) * frame_shift_s``. Raises ValueError when the tokens cannot fit
    in T frames (CTC needs one frame per token plus one per pair of equal neighbours).
    """
    lp = torch.as_tensor(log_probs).detach().cpu()
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be [T, V], got shape {tuple(lp.shape)}")
    tokens = [int(t) for t in token_ids]
    if not tokens:
        return []
    T, V = lp.shape
    bad = [t for t in tokens if t == blank or not 0 <= t < V]
    if bad:
        raise ValueError(f"token ids {bad[:5]} are the blank ({blank}) or outside the vocabulary [0, {V})")
    need = len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:]))
    if T < need:
        raise ValueError(f"{len(tokens)} tokens need at least {need} CTC frames but the utterance has {T}")
    labels = _frame_labels(lp, tokens, blank)
    ends: list[float] = []
    prev = blank
    for t, lab in enumerate(labels):
        lab = int(lab)
        if lab != blank and lab == prev:
            ends[-1] = (t + 1) * frame_shift_s  # same token continues
        elif lab != blank:
            ends.append((t + 1) * frame_shift_s)
        prev = lab
    if len(ends) != len(tokens):
        raise RuntimeError(f"forced alignment produced {len(ends)} token spans for {len(tokens)} tokens")
    return ends


@dataclass(frozen=True)
class Partial:
    """A (partial or final) hypothesis with the audio fed and wall time when it was produced, in seconds."""

    tokens: tuple[Hashable, ...]
    audio_s: float
    wall_s: float


class EmissionClock:
    """Emission times of one hypothesis stream, computed as its results come (no result is kept).

    ``since[k]`` is the time of the earliest result from which every result so far starts with the
    latest one's first ``k + 1`` tokens; once the final result is known these are the emission times.
    State and cost per result: the hypothesis length. For a segmented stream run one clock per
    segment (a committed segment is fixed, so its tokens' emission depends on its own results only).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the stream (start a new one)."""
        self._tokens: tuple[Hashable, ...] = ()
        self._since: list[float] = []
        self._last = float("-inf")

    def update(self, tokens: Sequence[Hashable], time_s: float) -> None:
        """A partial result ``tokens`` produced at ``time_s`` (results must come in time order)."""
        if time_s < self._last:
            raise ValueError("partial results must be in time order (final last)")
        tokens = tuple(tokens)
        kept = 0
        for a, b in zip(self._tokens, tokens):
            if a != b:
                break
            kept += 1
        # tokens after the first disagreement become stable (at the earliest) with this result
        self._since = self._since[:kept] + [time_s] * (len(tokens) - kept)
        self._tokens, self._last = tokens, time_s

    def finish(self, tokens: Sequence[Hashable], time_s: float) -> list[float]:
        """The final result: emission time of each of its tokens; the clock starts a new stream."""
        self.update(tokens, time_s)
        out = self._since
        self.reset()
        return out


def emission_times(partials: Sequence[Partial], final: Partial, clock: str = "wall") -> list[float]:
    """Emission time of each final token (see the module docstring), on the ``wall`` or ``audio`` clock."""
    if clock not in ("wall", "audio"):
        raise ValueError(f"clock must be 'wall' or 'audio', got {clock!r}")
    emission = EmissionClock()
    try:
        for p in partials:
            emission.update(p.tokens, p.wall_s if clock == "wall" else p.audio_s)
        return emission.finish(final.tokens, final.wall_s if clock == "wall" else final.audio_s)
    except ValueError as exc:
        raise ValueError(f"{exc} on the {clock} clock") from None


def emission_delays(emitted_s: Sequence[float], token_end_s: Sequence[float]) -> list[float]:
    """Per-token delay: emission time minus the end of the token's audio."""
    if len(emitted_s) != len(token_end_s):
        raise ValueError(f"{len(emitted_s)} emission times but {len(token_end_s)} token end times; both must "
                         f"describe the final hypothesis's tokens")
    return [e - a for e, a in zip(emitted_s, token_end_s)]


def first_token_latency(partials: Sequence[Partial], final: Partial, clock: str = "wall") -> float | None:
    """Emission time of the first final token (seconds from stream start); None for an empty final result."""
    times = emission_times(partials, final, clock)
    return times[0] if times else None


def summarize(values: Sequence[float]) -> dict:
    """Count, mean, median and 90th percentile of a list of times (None entries when empty)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    return {"count": len(values), "mean": mean(values), "median": median(values),
            "p90": float(np.percentile(np.asarray(values, dtype=np.float64), 90))}
