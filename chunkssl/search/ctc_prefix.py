"""Incremental CTC prefix beam search: feed log-probs chunk by chunk, read the best prefix any time.

The search keeps, per surviving prefix, the log-probability of all paths that produce it and end in
a blank (``pb``) or in its last token (``pnb``), and advances them frame by frame. Feeding frames in
any split therefore gives the same beam as feeding them all at once. Prefixes are nodes of a trie
(parent pointer + last token), so extending or comparing one costs O(1) whatever the length of the
history: the cost per frame is ``O(beam * candidates)``. Children are held by weak references, so a
pruned branch is freed; memory is the live beam plus the tokens of its prefixes.

Per frame the candidate tokens are the ``beam`` most likely non-blank ones, further limited to those
within ``token_prune`` (log) of that frame's best token and above ``min_token_logp``. On the mostly
blank frames of a trained CTC model that leaves few or no extensions, which is most of the speed.
Both decoders (streaming and offline) share this code, so this pruning never makes them differ.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch

NEG_INF = float("-inf")


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


class _Prefix:
    """A trie node: a token sequence given by its parent and last token."""

    __slots__ = ("parent", "token", "length", "children", "__weakref__")

    def __init__(self, parent: "_Prefix | None", token: int):
        self.parent = parent
        self.token = token
        self.length = 0 if parent is None else parent.length + 1
        self.children: weakref.WeakValueDictionary | None = None

    def child(self, token: int) -> "_Prefix":
        """The unique node for this prefix + ``token`` (reused while it is alive)."""
        if self.children is None:
            self.children = weakref.WeakValueDictionary()
        node = self.children.get(token)
        if node is None:
            node = _Prefix(self, token)
            self.children[token] = node
        return node

    def tokens(self) -> list[int]:
        """The token ids from the root to this node."""
        out, node = [], self
        while node is not None and node.parent is not None:
            out.append(node.token)
            node = node.parent
        return out[::-1]


@dataclass(frozen=True)
class Hypothesis:
    """An n-best entry: token ids and its CTC log-probability (prefix score)."""

    tokens: tuple[int, ...]
    score: float


class CTCPrefixBeamSearch:
    """Frame-synchronous CTC prefix beam search that can be fed frames in pieces.

    Args:
        beam_size: prefixes kept after each frame.
        blank: blank token id.
        token_prune: candidate tokens per frame are within this many nats of the frame's best token.
        min_token_logp: and have at least this log-probability (-inf: no floor; exact search).
    """

    def __init__(self, beam_size: int = 10, blank: int = 0, token_prune: float = 20.0,
                 min_token_logp: float = math.log(1e-4)):
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.beam_size = beam_size
        self.blank = blank
        self.token_prune = token_prune
        self.min_token_logp = min_token_logp
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self._root = _Prefix(None, -1)
        # prefix -> (pb, pnb); the empty prefix has probability 1 of ending in a blank
        self._beam: dict[_Prefix, tuple[float, float]] = {self._root: (0.0, NEG_INF)}
        self.num_frames = 0

    def accept(self, log_probs: torch.Tensor) -> None:
        """Advance the beam by CTC log-posteriors ``[n, V]`` of the next ``n`` frames."""
        if log_probs.ndim != 2:
            raise ValueError(f"log_probs must be [frames, vocab], got shape {tuple(log_probs.shape)}")
        if log_probs.shape[0] == 0:
            return
        lp = log_probs.detach().float().cpu()
        k = min(self.beam_size, lp.shape[1] - 1)
        masked = lp.clone()
        masked[:, self.blank] = NEG_INF
        top_val, top_idx = masked.topk(k, dim=-1)
        blank_lp = lp[:, self.blank].tolist()
        top_val, top_idx = top_val.tolist(), top_idx.tolist()
        rows = lp.tolist() if lp.shape[1] <= 4 * k else None
        for t in range(lp.shape[0]):
            floor = max(top_val[t][0] - self.token_prune, self.min_token_logp)
            cands = [(c, v) for c, v in zip(top_idx[t], top_val[t]) if v >= floor]
            self._step(blank_lp[t], cands, rows[t] if rows is not None else lp[t])
            self.num_frames += 1

    def _step(self, blank_lp: float, cands: list[tuple[int, float]], row) -> None:
        nxt: dict[_Prefix, list[float]] = {}

        def add(node: _Prefix, b: float, nb: float) -> None:
            cur = nxt.get(node)
            if cur is None:
                nxt[node] = [b, nb]
            else:
                cur[0] = _logadd(cur[0], b)
                cur[1] = _logadd(cur[1], nb)

        for node, (pb, pnb) in self._beam.items():
            total = _logadd(pb, pnb)
            add(node, total + blank_lp, NEG_INF)
            if node.parent is not None:
                # repeating the last token without a blank in between stays on the same prefix
                add(node, NEG_INF, pnb + float(row[node.token]))
            for c, v in cands:
                child = node.child(c)
                if c == node.token and node.parent is not None:
                    add(child, NEG_INF, pb + v)  # a repeat needs a blank in between
                else:
                    add(child, NEG_INF, total + v)
        scored = [(node, bnb, _logadd(bnb[0], bnb[1])) for node, bnb in nxt.items()]
        # impossible prefixes (probability 0) never enter the beam
        ranked = sorted((x for x in scored if x[2] > NEG_INF), key=lambda x: (-x[2], x[0].length))
        self._beam = {node: (b, nb) for node, (b, nb), _ in ranked[: self.beam_size]}

    def nbest(self, n: int | None = None) -> list[Hypothesis]:
        """The current hypotheses, best first (CTC prefix log-probability)."""
        items = sorted(((node, _logadd(b, nb)) for node, (b, nb) in self._beam.items()),
                       key=lambda kv: (-kv[1], kv[0].length))
        return [Hypothesis(tuple(node.tokens()), score) for node, score in items[:n]]

    def best(self) -> tuple[int, ...]:
        """Token ids of the current best prefix (the partial result)."""
        if not self._beam:
            return ()
        node = max(self._beam.items(), key=lambda kv: (_logadd(*kv[1]), -kv[0].length))[0]
        return tuple(node.tokens())
