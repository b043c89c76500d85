"""Train a sentencepiece model on a Kaldi text file: python -m chunkssl.st.bpe --text T --model-prefix P.

Writes ``P.model`` and ``P.vocab`` (atomically: trained under a temporary prefix, then renamed).
The token list for ESPnet is then made with ``python -m espnet2.bin.tokenize_text`` (st.sh stage 3).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from chunkssl.fileio import DataError, run_cli

PROG = "chunkssl.st.bpe"


def train_bpe(text: str | os.PathLike, model_prefix: str | os.PathLike, vocab_size: int,
              model_type: str = "unigram", character_coverage: float = 1.0) -> Path:
    """Train sentencepiece on the transcripts of a Kaldi ``text`` file; returns ``<prefix>.model``."""
    import sentencepiece as spm

    lines = []
    with open(text, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(maxsplit=1)
            if len(parts) < 2 or not parts[1].strip():
                raise DataError(f"{text}:{lineno}: expected '<utt-id> <text>'; fix or drop this line")
            lines.append(parts[1])
    if not lines:
        raise DataError(f"{text} is empty; nothing to train sentencepiece on")
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=prefix.parent) as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp_prefix = Path(tmp) / prefix.name
        # hard_vocab_limit=false: a small corpus may not support the requested size; take what fits
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_prefix),
                                       vocab_size=vocab_size, model_type=model_type,
                                       character_coverage=character_coverage, hard_vocab_limit=False,
                                       input_sentence_size=100000000, minloglevel=2)
        for ext in (".vocab", ".model"):
            os.replace(f"{tmp_prefix}{ext}", f"{prefix}{ext}")
    return Path(f"{prefix}.model")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--text", required=True, help="Kaldi text file (utt-id then text)")
    p.add_argument("--model-prefix", required=True, help="output prefix: writes PREFIX.model and PREFIX.vocab")
    p.add_argument("--vocab-size", type=int, default=500)
    p.add_argument("--model-type", default="unigram", choices=("unigram", "bpe", "char", "word"))
    p.add_argument("--character-coverage", type=float, default=1.0)
    args = p.parse_args(argv)
    out = train_bpe(args.text, args.model_prefix, args.vocab_size, args.model_type, args.character_coverage)
    print(f"{PROG}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
