#!/usr/bin/env bash
# Chunk SSL on unlabelled audio for the FSDD low-resource experiment: FSDD train (labels unused) +
# Libri-Trans + synthetic speech (local/data.sh). ~6M-code FSQ targets, tiny encoder (the sizes of
# conf/asr/chunk_conformer_fsdd.yaml). ../asr1/run_lowres.sh runs this, then fine-tunes on 10 % of the
# FSDD train labels from this encoder and from scratch.
set -euo pipefail
. ./path.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny model: see ../asr1/run.sh
./ssl.sh --train-set train --valid-set dev --nj 2 --tokenizers "6m" --ssl-tokenizer 6m --analyze false \
  --fsq-train-opts "--max_epoch 6 --num_workers 0" \
  --ssl-config "$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_fsdd.yaml" "$@"
