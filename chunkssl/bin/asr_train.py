"""ASR fine-tuning on ESPnet's trainer with the chunk conformer: ``python -m chunkssl.bin.asr_train ...``.

This is ESPnet's ``ASRTask`` with ``chunk_conformer`` registered (``--encoder chunk_conformer``), so
every ESPnet ASR option applies. Typical use with our fbank dump::

    python -m chunkssl.bin.asr_train --config conf/asr/chunk_conformer_tiny.yaml \\
        --input_size 80 --normalize_conf stats_file=dump/fbank/train/cmvn_stats.npz \\
        --train_data_path_and_name_and_type dump/fbank/train/feats.scp,speech,kaldi_ark \\
        --train_data_path_and_name_and_type data/train/text,text,text ... \\
        --token_type bpe --bpemodel bpe.model --token_list tokens.txt \\
        --init_param exp/ssl/valid.acc.best.pth:encoder:encoder

``--input_size 80`` makes ESPnet skip its frontend (the features are precomputed). Dynamic chunk
training is ``encoder_conf.dynamic_chunk`` (see :class:`chunkssl.chunking.ChunkSampler`).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import chunkssl.espnet_glue  # noqa: F401  (registers chunk_conformer)
from chunkssl.fileio import run_cli
from espnet2.tasks.asr import ASRTask


def get_parser():
    """The argument parser (for docs and ``--print_config``)."""
    return ASRTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ESPnet's ASR task (parses ``sys.argv`` when ``cmd`` is None)."""
    ASRTask.main(cmd=cmd)


if __name__ == "__main__":
    sys.exit(run_cli("asr_train", main))
