"""Simultaneous ST decoding: python -m chunkssl.bin.st_simultaneous --config C --model M --feats-scp S --out-dir D.

The source is fed ``--chunk-ms`` at a time; at each chunk boundary the new chunk is encoded by the
cached streaming encoder (``--reencode``: the whole received prefix again, with the chunk mask; same
frames, cost growing with the prefix) and target tokens are committed by the ``--policy``:

- ``la`` (default): local agreement, the longest common prefix of the last two hypotheses;
- ``waitk``: nothing for the first ``--wait-k`` chunks, then ``--token-rate`` target tokens per
  second of source, i.e. ``rate * chunk_ms / 1000`` per chunk (the search only extends the
  committed tokens that far).

Both commit the full hypothesis at the end (see docs/metrics.md). ``--chunk-ms 0`` decodes once at
the end with full context (the offline latency reference). Writes, atomically:

- ``D/text``: the final detokenised translation (Kaldi text);
- ``D/latency.jsonl``: per utterance ``{"id", "source_length", "delays", "elapsed"}`` in ms, one
  delay per output word (source consumed when the word was completely committed) and
  ``elapsed`` = delay + compute spent on the utterance so far, for ``score_st --latency-log``;
- ``D/events.jsonl``: per utterance the commit events ``[source_ms, committed token ids, final]`` and
  ``partials``, the committed translation as text at each of those times (``[source_ms, text]``): what a
  listener would have seen, when.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from chunkssl.chunking import chunk_frames, parse_chunk_ms
from chunkssl.fileio import DataError, atomic_open, run_cli
from chunkssl.st.cli import add_model_args, read_feats
from chunkssl.st.policy import WaitK
from chunkssl.st.translate import detokenize, load_speech2text, set_chunking, translate_simultaneous

PROG = "st_simultaneous"
OFFLINE_CHUNK = 10 ** 9  # one decoding step at the end of the input


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    add_model_args(p)
    p.add_argument("--policy", choices=("la", "waitk"), default="la", help="commit policy (see above)")
    p.add_argument("--wait-k", type=int, default=2, help="waitk: chunks read before the first token")
    p.add_argument("--token-rate", type=float, default=3.0,
                   help="waitk: target tokens committed per second of source after the first k chunks")
    p.add_argument("--reencode", action="store_true",
                   help="re-encode the whole prefix at every chunk instead of the cached streaming encoder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        wait_k = None
        if args.policy == "waitk" and args.chunk_ms > 0:  # offline: one step at the end, nothing to wait for
            wait_k = WaitK(args.wait_k, args.token_rate * args.chunk_ms / 1000.0)
        s2t = load_speech2text(args.config, args.model, args.beam_size, args.maxlenratio, device=args.device)
        chunk = chunk_frames(parse_chunk_ms(args.chunk_ms))
        set_chunking(s2t, chunk, args.left_chunks)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        n = 0
        with atomic_open(out / "text", "w", encoding="utf-8") as ft, \
                atomic_open(out / "latency.jsonl", "w", encoding="utf-8") as fl, \
                atomic_open(out / "events.jsonl", "w", encoding="utf-8") as fe:
            for utt, feats in tqdm(read_feats(args.feats_scp), desc=PROG, disable=None):
                res = translate_simultaneous(s2t, feats, chunk if chunk is not None else OFFLINE_CHUNK, wait_k,
                                             cached=False if args.reencode else None)
                ft.write(f"{utt} {res.text}\n")
                fl.write(json.dumps(res.latency_record(utt)) + "\n")
                partials = [[ms, detokenize(s2t, ids)] for ms, ids, _ in res.events]
                fe.write(json.dumps({"id": utt, "events": res.events, "partials": partials}, ensure_ascii=False)
                         + "\n")
                n += 1
    except ValueError as e:  # a chunk size or model the decoder cannot use: reported as bad input
        if isinstance(e, DataError):
            raise
        raise DataError(str(e)) from e
    print(f"{PROG}: {n} utterances in {time.perf_counter() - start:.1f} s -> {out / 'text'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
