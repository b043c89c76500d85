"""Chunk SSL pre-training on ESPnet's trainer: ``python -m chunkssl.bin.ssl_train --config ... ``.

All ESPnet training options apply (``--output_dir``, ``--resume``, ``--ngpu``, ``--max_epoch``,
``--collect_stats`` ...). CPU multi-process: launch with
``torchrun --nproc_per_node N -m chunkssl.bin.ssl_train --ngpu 0 --dist_backend gloo
--multiprocessing_distributed false ...``; on GPUs ``--ngpu N`` spawns the processes itself.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from chunkssl.fileio import run_cli
from chunkssl.ssl.task import ChunkSSLTask


def get_parser():
    """The argument parser (for docs and ``--print_config``)."""
    return ChunkSSLTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run the task (parses ``sys.argv`` when ``cmd`` is None)."""
    ChunkSSLTask.main(cmd=cmd)


if __name__ == "__main__":
    sys.exit(run_cli("ssl_train", main))
