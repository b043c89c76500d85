"""ST training on ESPnet's trainer with the chunk conformer: ``python -m chunkssl.bin.st_train ...``.

This is ESPnet's ``STTask`` with ``chunk_conformer`` registered, so every ESPnet ST option applies:
attention encoder-decoder translation of ``text`` (target) with the optional auxiliary ASR CTC on
``src_text`` (``--src_token_list`` and ``model_conf.asr_weight > 0``). Typical use with our dump::

    python -m chunkssl.bin.st_train --config conf/st/chunk_conformer_tiny.yaml \\
        --input_size 80 --normalize_conf stats_file=dump/fbank/train/cmvn_stats.npz \\
        --train_data_path_and_name_and_type dump/fbank/train/feats.scp,speech,kaldi_ark \\
        --train_data_path_and_name_and_type data/train/text.fr,text,text \\
        --train_data_path_and_name_and_type data/train/text.en,src_text,text ... \\
        --token_type bpe --bpemodel bpe_fr.model --token_list tokens_fr.txt \\
        --src_token_type bpe --src_bpemodel bpe_en.model --src_token_list tokens_en.txt \\
        --init_param exp/ssl/valid.acc.best.pth:encoder:encoder

Dynamic chunk training is ``encoder_conf.dynamic_chunk`` (see :class:`chunkssl.chunking.ChunkSampler`).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import chunkssl.espnet_glue  # noqa: F401  (registers chunk_conformer)
from chunkssl.fileio import run_cli
from espnet2.tasks.st import STTask


def get_parser():
    """The argument parser (for docs and ``--print_config``)."""
    return STTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ESPnet's ST task (parses ``sys.argv`` when ``cmd`` is None)."""
    STTask.main(cmd=cmd)


if __name__ == "__main__":
    sys.exit(run_cli("st_train", main))
