"""Simultaneous-translation latency: Average Lagging (AL) and Length-Adaptive AL (LAAL) as SimulEval scores them.

For one utterance with source duration ``|X|`` (milliseconds) and target-token delays ``d_1..d_n``
(``d_i`` = milliseconds of source consumed when token i was emitted):

    lag(d, |X|, L) = d_1                                     if d_1 > |X|
                   = (1/tau) * sum_{i=1..tau} (d_i - (i-1) * |X| / L)   otherwise,
    tau = the first i with d_i >= |X| (or n if none).

AL uses ``L = |Y*|`` (the reference length) when a reference is given, else ``L = n`` (the
hypothesis length): SimulEval's default (``use_ref_len=True``). LAAL uses ``L = max(n, |Y*|)`` so that
over-long hypotheses are not rewarded. Corpus values are the plain mean over utterances with at
least one emitted token (others are skipped and counted). Computation-aware (CA) variants feed
``elapsed`` instead of ``delays``: ``elapsed_i = d_i + c_i`` where ``c_i`` is the wall-clock
compute time (ms) spent on this utterance from its first source chunk until token i was emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import Sequence


def _lagging(delays: Sequence[float], source_length: float, target_length: float) -> float:
    """The AL sum with the oracle rate ``target_length / source_length``."""
    if not delays:
        raise ValueError("no emitted tokens: lagging is undefined for an empty hypothesis")
    if source_length <= 0:
        raise ValueError(f"source length must be positive, got {source_length}")
    if target_length <= 0:
        raise ValueError(f"target length must be positive, got {target_length}")
    if delays[0] > source_length:
        return float(delays[0])
    step = source_length / target_length  # source time per target token of the ideal policy
    total, tau = 0.0, 0
    for i, d in enumerate(delays):
        total += d - i * step
        tau = i + 1
        if d >= source_length:
            break
    return total / tau


def average_lagging(delays: Sequence[float], source_length: float,
                    reference_length: int | None = None) -> float:
    """AL; the oracle rate uses the reference length when given (and non-zero), else the hypothesis length."""
    target = reference_length if reference_length else len(delays)
    return _lagging(delays, source_length, target)


def length_adaptive_average_lagging(delays: Sequence[float], source_length: float,
                                    reference_length: int | None = None) -> float:
    """LAAL: like AL with the oracle rate from ``max(hypothesis length, reference length)``."""
    return _lagging(delays, source_length, max(len(delays), reference_length or 0))


def computation_aware_delays(delays: Sequence[float], compute_elapsed: Sequence[float]) -> list[float]:
    """SimulEval's ``elapsed``: each delay plus the compute time spent up to that token's emission."""
    if len(delays) != len(compute_elapsed):
        raise ValueError(f"{len(delays)} delays but {len(compute_elapsed)} compute times; need one per token")
    return [d + c for d, c in zip(delays, compute_elapsed)]


def reference_length(text: str, unit: str = "word") -> int:
    """Reference length in latency units: whitespace-separated words, or non-space characters."""
    if unit == "word":
        return len(text.split())
    if unit == "char":
        return sum(1 for ch in text if not ch.isspace())
    raise ValueError(f"unknown latency unit {unit!r}; use 'word' or 'char'")


@dataclass(frozen=True)
class SimulInstance:
    """Latency record of one utterance: delays (and optionally elapsed) in ms, one per hypothesis token."""

    utt_id: str
    source_length: float
    delays: tuple[float, ...]
    elapsed: tuple[float, ...] | None = None
    reference_length: int | None = None

    def __post_init__(self) -> None:
        if self.elapsed is not None and len(self.elapsed) != len(self.delays):
            raise ValueError(f"utterance {self.utt_id!r}: {len(self.delays)} delays but {len(self.elapsed)} "
                             f"elapsed values; need one of each per emitted token")
        if any(b < a for a, b in zip(self.delays, self.delays[1:])):
            raise ValueError(f"utterance {self.utt_id!r}: delays decrease; they must be non-decreasing "
                             f"(source consumed never shrinks)")


def corpus_latency(instances: Sequence[SimulInstance]) -> dict:
    """Mean AL and LAAL (and AL_CA, LAAL_CA when every scored instance has ``elapsed``), in ms.

    Returns ``{"AL", "LAAL", ["AL_CA", "LAAL_CA"], "num_scored", "skipped_empty": [ids]}``;
    a metric is None when no instance could be scored.
    """
    scored = [i for i in instances if i.delays]
    out: dict = {"num_scored": len(scored), "skipped_empty": [i.utt_id for i in instances if not i.delays]}
    variants = [("", lambda i: i.delays)]
    if scored and all(i.elapsed is not None for i in scored):
        variants.append(("_CA", lambda i: i.elapsed))
    for suffix, get in variants:
        out["AL" + suffix] = mean(average_lagging(get(i), i.source_length, i.reference_length)
                                  for i in scored) if scored else None
        out["LAAL" + suffix] = mean(length_adaptive_average_lagging(get(i), i.source_length, i.reference_length)
                                    for i in scored) if scored else None
    return out
