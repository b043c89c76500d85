"""Score speech translation: python -m chunkssl.bin.score_st --ref REF --hyp HYP --out-dir DIR [--latency-log LOG].

REF and HYP are Kaldi text files (``utt-id text...``) of detokenised, case-sensitive text, or, with
--plain, line-aligned plain text files (line N of HYP translates line N of REF). DIR receives
``result.txt`` (BLEU with n-gram precisions, brevity penalty and lengths, chrF, sacrebleu
signatures, and latency if given) and ``result.json`` (the same values, machine-readable).

Simultaneous latency (optional): LOG is JSON lines, one per utterance,
``{"id": UTT, "source_length": MS, "delays": [MS, ...], "elapsed": [MS, ...]}`` with one delay per
hypothesis token in --latency-unit (words by default; ``elapsed`` optional, it adds the
computation-aware AL_CA and LAAL_CA). With --plain the ids are the 1-based line numbers. AL and LAAL
follow SimulEval (see chunkssl/metrics/simul.py and docs/metrics.md); reference lengths come from REF.

Ids: a HYP id not in REF is an error; a REF id without a hypothesis is an error unless
--allow-missing (then it is scored as an empty translation, with a warning).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chunkssl.fileio import DataError, run_cli
from chunkssl.metrics.io import load_lines, load_text, pair_texts
from chunkssl.metrics.simul import SimulInstance, corpus_latency, reference_length
from chunkssl.metrics.st import score_translations, write_results

PROG = "score_st"


def load_latency_log(path: str, pairs: list[tuple[str, str, str]], unit: str) -> list[SimulInstance]:
    """Read the JSON-lines latency log and check it against the scored hypotheses."""
    records: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                utt = str(rec["id"])
                float(rec["source_length"])
                list(rec["delays"])
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f"{path}:{lineno}: expected a JSON object with id, source_length and delays "
                                f"({type(e).__name__}: {e})") from None
            if utt in records:
                raise DataError(f"{path}:{lineno}: utterance {utt!r} appears more than once")
            records[utt] = rec
    out = []
    for utt, ref, hyp in pairs:
        n_hyp = reference_length(hyp, unit)
        rec = records.get(utt)
        if rec is None:
            if n_hyp:
                raise DataError(f"{path}: no latency record for utterance {utt!r}; log every decoded utterance")
            continue
        delays = [float(d) for d in rec["delays"]]
        if len(delays) != n_hyp:
            raise DataError(f"{path}: utterance {utt!r} has {len(delays)} delays but its hypothesis has {n_hyp} "
                            f"{unit}s; log one delay per output {unit} of the final hypothesis")
        elapsed = rec.get("elapsed")
        try:
            out.append(SimulInstance(utt, float(rec["source_length"]), tuple(delays),
                                     None if elapsed is None else tuple(float(e) for e in elapsed),
                                     reference_length(ref, unit)))
        except ValueError as e:
            raise DataError(f"{path}: {e}") from None
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--ref", required=True, help="reference translations (Kaldi text, or plain with --plain)")
    p.add_argument("--hyp", required=True, help="detokenised hypothesis translations, same format as --ref")
    p.add_argument("--out-dir", required=True, help="where result.txt and result.json are written")
    p.add_argument("--plain", action="store_true", help="files are line-aligned plain text (no utterance ids)")
    p.add_argument("--allow-missing", action="store_true",
                   help="score reference segments without a hypothesis as empty translations (with a warning)")
    p.add_argument("--tokenize", default="13a", help="sacrebleu BLEU tokeniser (13a; intl, zh, ja-mecab, ...)")
    p.add_argument("--latency-log", default=None, help="JSON-lines delays per utterance for AL/LAAL")
    p.add_argument("--latency-unit", choices=("word", "char"), default="word",
                   help="what one delay stands for: a word, or a non-space character (for zh/ja targets)")
    p.add_argument("--name", default=None, help="set name in the report (default: the reference's directory name)")
    args = p.parse_args(argv)
    load = load_lines if args.plain else load_text
    refs, hyps = load(args.ref), load(args.hyp)
    pairs, missing = pair_texts(refs, hyps, args.ref, args.hyp, args.allow_missing, PROG)
    if not pairs:
        raise DataError(f"{args.ref} has no segments; nothing to score")
    result = score_translations([r for _, r, _ in pairs], [h for _, _, h in pairs], args.tokenize)
    result["missing_hyp"] = missing
    if args.latency_log:
        result["latency"] = {**corpus_latency(load_latency_log(args.latency_log, pairs, args.latency_unit)),
                             "unit": args.latency_unit}
    name = args.name or Path(args.ref).resolve().parent.name
    txt, _ = write_results(result, args.out_dir, name)
    print(f"{PROG}: {name}: BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f}"
          + (f", AL {result['latency']['AL']:.0f} ms, LAAL {result['latency']['LAAL']:.0f} ms"
             if args.latency_log and result["latency"]["AL"] is not None else "")
          + f"; details in {txt}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
