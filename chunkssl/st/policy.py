"""Pure pieces of the simultaneous policies: chunk schedule, local agreement, wait-k, word delays.

Times are in milliseconds of source audio. Features are Kaldi fbank (25 ms window, 10 ms shift,
``snip_edges``), and the conv2d subsampling reads fbank frames ``4t .. 4t+6`` for encoder frame
``t``, so the first ``n`` encoder frames need ``4n + 3`` fbank frames, i.e. ``40 n + 45`` ms of audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

FRAME_SHIFT_MS = 10.0
WINDOW_MS = 25.0
SUBSAMPLING = 4
RECEPTIVE = 7  # fbank frames spanned by one encoder frame


def fbank_frames_needed(num_encoder_frames: int) -> int:
    """Fbank frames whose prefix yields exactly ``num_encoder_frames`` encoder frames."""
    if num_encoder_frames <= 0:
        raise ValueError(f"need at least one encoder frame, got {num_encoder_frames}")
    return SUBSAMPLING * (num_encoder_frames - 1) + RECEPTIVE


def encoder_frames_from(num_fbank: int) -> int:
    """Encoder frames made from ``num_fbank`` fbank frames (ESPnet's Conv2dSubsampling)."""
    return ((num_fbank - 1) // 2 - 1) // 2 if num_fbank >= RECEPTIVE else 0


def fbank_source_ms(num_fbank: int) -> float:
    """Audio (ms) that ``num_fbank`` fbank frames cover: the end of the last window."""
    return (num_fbank - 1) * FRAME_SHIFT_MS + WINDOW_MS if num_fbank > 0 else 0.0


@dataclass(frozen=True)
class Step:
    """One decoding point: the first ``encoder_frames`` are known; ``fbank_frames`` were read."""

    encoder_frames: int
    fbank_frames: int
    source_ms: float
    final: bool


def chunk_schedule(num_fbank: int, chunk_size: int) -> list[Step]:
    """Decoding points of an utterance of ``num_fbank`` frames with chunks of ``chunk_size`` encoder frames.

    One point per complete chunk, then the final point at the end of the input (which also covers
    the shorter last chunk). The final point reads every fbank frame.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk size must be positive (encoder frames), got {chunk_size}")
    total = encoder_frames_from(num_fbank)
    if total == 0:
        raise ValueError(f"{num_fbank} fbank frames are too few for one encoder frame (need {RECEPTIVE})")
    steps = []
    for n in range(chunk_size, total, chunk_size):
        f = fbank_frames_needed(n)
        steps.append(Step(n, f, fbank_source_ms(f), False))
    steps.append(Step(total, num_fbank, fbank_source_ms(num_fbank), True))
    return steps


def common_prefix(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Longest common prefix of two token sequences."""
    out = []
    for x, y in zip(a, b):
        if x != y:
            break
        out.append(x)
    return out


def local_agreement(committed: Sequence[int], previous: Sequence[int] | None,
                    current: Sequence[int]) -> list[int]:
    """Committed tokens after a new hypothesis: extend by the agreement of the last two hypotheses.

    The new commitment is the longest common prefix of ``previous`` and ``current`` when it extends
    ``committed``; otherwise (no previous hypothesis, or disagreement inside the committed part)
    nothing changes. Committed tokens are never retracted.
    """
    committed = list(committed)
    if previous is None:
        return committed
    agreed = common_prefix(previous, current)
    if len(agreed) > len(committed) and agreed[:len(committed)] == committed:
        return agreed
    return committed


@dataclass(frozen=True)
class WaitK:
    """Wait-k on encoder chunks: nothing before ``k`` chunks, then ``tokens_per_chunk`` tokens per chunk."""

    k: int
    tokens_per_chunk: float = 1.0

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"wait-k needs k >= 1 chunks, got {self.k}")
        if self.tokens_per_chunk <= 0:
            raise ValueError(f"wait-k needs a positive number of tokens per chunk, got {self.tokens_per_chunk}")

    def allowed(self, chunks: int) -> int:
        """Target tokens that may be committed once ``chunks`` whole chunks have been received."""
        if chunks < self.k:
            return 0
        # the small epsilon keeps e.g. 3 * (1/3 * 3) from flooring to 2 on rounding error
        return int((chunks - self.k + 1) * self.tokens_per_chunk + 1e-9)


def word_delays(tokens: Sequence[int], token_times: Sequence[float],
                detok: Callable[[Sequence[int]], str]) -> list[float]:
    """Delay of each word of ``detok(tokens)``: the commit time of the token that completes it.

    Word j is complete at the first token prefix whose detokenised words start with the final
    words ``0..j`` (so a word split into pieces waits for its last piece).
    """
    if len(tokens) != len(token_times):
        raise ValueError(f"{len(tokens)} tokens but {len(token_times)} commit times")
    words = detok(tokens).split()
    delays: list[float] = []
    k = 0
    for j in range(len(words)):
        while k < len(tokens) and detok(tokens[:k]).split()[:j + 1] != words[:j + 1]:
            k += 1
        # k == len(tokens) always matches, since the full sequence gives ``words``
        delays.append(float(token_times[k - 1]) if k > 0 else float(token_times[0]))
    return delays
