"""Train the FSQ fbank tokenizer with ESPnet's Trainer.

Example::

    python -m chunkssl.bin.fsq_train --config conf/fsq/6m.yaml --output_dir exp/fsq_6m \\
        --cmvn_stats dump/fbank/train/cmvn_stats.npz \\
        --train_data_path_and_name_and_type dump/fbank/train/feats.scp,speech,kaldi_ark \\
        --train_shape_file dump/fbank/train/utt2num_frames \\
        --valid_data_path_and_name_and_type dump/fbank/dev/feats.scp,speech,kaldi_ark \\
        --valid_shape_file dump/fbank/dev/utt2num_frames --ngpu 0 --resume true

Writes ``config.yaml``, ``{N}epoch.pth``, ``valid.loss.best.pth``, ``checkpoint.pth`` (for --resume),
``tensorboard/`` and ``images/`` under ``--output_dir``. Any ESPnet training option works.
"""

from __future__ import annotations

import sys
from typing import Sequence

import chunkssl.espnet_glue  # noqa: F401  (the audio_<rate> data type, for --frontend kaldi_fbank)
from chunkssl.fileio import run_cli
from chunkssl.fsq.task import FSQTask


def main(cmd: Sequence[str] | None = None) -> None:
    """Run FSQTask (see ``--help`` for every option)."""
    FSQTask.main(cmd=cmd)


if __name__ == "__main__":
    sys.exit(run_cli("fsq_train", main))
