"""Train a sentencepiece model on a Kaldi ``text`` file and write ESPnet's token list.

    python -m chunkssl.bin.make_token_list --text data/train/text --out-dir data/token_list/bpe30 \\
        --token-type bpe --vocab-size 30

Writes ``bpe.model`` (token types bpe/unigram; ``char`` needs none) and ``tokens.txt``: ``<blank>``,
``<unk>``, the units, ``<sos/eos>`` last, one per line, as ESPnet's ``--token_list`` expects.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import sentencepiece as spm

from chunkssl.fileio import DataError, atomic_open, read_kv, run_cli


def make_token_list(text: Path, out_dir: Path, token_type: str, vocab_size: int) -> list[str]:
    """Build the unit inventory from transcripts (and the sentencepiece model); return the token list."""
    sentences = [t for _, t in read_kv(text, allow_empty_value=True) if t]
    if not sentences:
        raise DataError(f"{text}: no transcripts to build a token list from")
    out_dir.mkdir(parents=True, exist_ok=True)
    if token_type == "char":
        units = sorted({c if c != " " else "<space>" for s in sentences for c in s})
    else:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "text.txt"
            corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
            spm.SentencePieceTrainer.train(
                input=str(corpus), model_prefix=str(Path(tmp) / "bpe"), vocab_size=vocab_size,
                model_type=token_type, character_coverage=1.0, input_sentence_size=10_000_000,
                shuffle_input_sentence=False, hard_vocab_limit=False, num_threads=1, minloglevel=2,
                unk_id=0, bos_id=-1, eos_id=-1,
            )
            shutil.move(str(Path(tmp) / "bpe.model"), out_dir / "bpe.model")
        sp = spm.SentencePieceProcessor(model_file=str(out_dir / "bpe.model"))
        units = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if i != sp.unk_id()]
    tokens = ["<blank>", "<unk>", *units, "<sos/eos>"]
    with atomic_open(out_dir / "tokens.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return tokens


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, required=True, help="Kaldi text file (utt words...)")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--token-type", choices=["bpe", "unigram", "char"], default="bpe")
    p.add_argument("--vocab-size", type=int, default=100, help="sentencepiece units (bpe/unigram)")
    args = p.parse_args()
    tokens = make_token_list(args.text, args.out_dir, args.token_type, args.vocab_size)
    print(f"make_token_list: {len(tokens)} tokens in {args.out_dir / 'tokens.txt'}")


if __name__ == "__main__":
    sys.exit(run_cli("make_token_list", main))
