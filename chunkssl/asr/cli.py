"""What the ASR decoding entry points share: model/search options and the decode-dir writer."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from chunkssl.fileio import atomic_open, write_kv
from chunkssl.metrics.timing import real_time_factor


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Options of every decoder: the trained model, the search, threads and the output dir."""
    p.add_argument("--asr_train_config", "--asr-train-config", required=True)
    p.add_argument("--asr_model_file", "--asr-model-file", required=True)
    p.add_argument("--left-chunks", "--left_chunks", type=int, default=-1)
    p.add_argument("--beam-size", "--beam_size", type=int, default=10)
    p.add_argument("--ctc-weight", "--ctc_weight", type=float, default=0.3)
    p.add_argument("--length-bonus", "--length_bonus", type=float, default=0.0, help="rescore: bonus per token")
    p.add_argument("--num-threads", "--num_threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--output-dir", "--output_dir", required=True)


def parse_decode_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse a decoder's command line, then set up logging and the torch thread count (``--num-threads``)."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    return args


class DecodeResults:
    """Per-utterance results of one decoded set, written as ``text``, ``token_int`` and ``timing.json``,
    each atomically (a streaming decoder writes its events to ``stream.jsonl`` itself, as they come).

    An utterance that cannot be decoded (unreadable, empty or non-finite audio) is recorded with
    :meth:`fail` and the set goes on; ``failed`` lists them with the reason, and :meth:`write`
    returns 1 so that the decoder exits non-zero and the stage is not taken as done.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.token_ints: list[str] = []
        self.per_utt: dict[str, dict] = {}
        self.failed: list[tuple[str, str]] = []
        self.compute_s = self.audio_s = 0.0

    def add(self, utt: str, text: str, ids, audio_s: float, compute_s: float, **info) -> dict:
        """Record one utterance; returns its timing entry (``info`` is added to it)."""
        self.compute_s += compute_s
        self.audio_s += audio_s
        self.texts.append(f"{utt} {text}".rstrip() + "\n")
        self.token_ints.append(f"{utt} {' '.join(map(str, ids))}".rstrip() + "\n")
        entry = {"audio_s": audio_s, "compute_s": compute_s,
                 "rtf": real_time_factor(compute_s, audio_s) if audio_s > 0 else None, **info}
        self.per_utt[utt] = entry
        return entry

    def fail(self, utt: str, error: Exception) -> None:
        """Record an utterance that could not be decoded, with the reason."""
        reason = " ".join(str(error).split())  # one line per utterance in ``failed``
        logging.error("%s: not decoded: %s", utt, reason)
        self.failed.append((utt, reason))

    def write(self, out_dir: str | Path, head: dict, tail: dict | None = None) -> int:
        """Write the files; ``timing.json`` = ``head``, the set's totals, ``tail``, then the utterances.

        Returns the exit status: 1 when some utterance failed (listed in ``failed``), else 0.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "text", "w") as f:
            f.writelines(self.texts)
        with atomic_open(out / "token_int", "w") as f:
            f.writelines(self.token_ints)
        timing = {**head, "num_utts": len(self.per_utt), "num_failed": len(self.failed), "audio_s": self.audio_s, "compute_s": self.compute_s,
                  "rtf": real_time_factor(self.compute_s, self.audio_s) if self.audio_s > 0 else None,
                  **(tail or {}), "utterances": self.per_utt}
        with atomic_open(out / "timing.json", "w") as f:
            json.dump(timing, f, indent=1)
        if not self.failed:
            (out / "failed").unlink(missing_ok=True)  # an older run's failures are gone
            return 0
        write_kv(out / "failed", self.failed)
        logging.error("%d of %d utterance(s) failed; see %s", len(self.failed),
                      len(self.failed) + len(self.per_utt), out / "failed")
        return 1
