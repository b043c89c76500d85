#!/usr/bin/env bash
# Chunk SSL pre-training on LibriSpeech 960 h (audio only), GPU-sized: conf/ssl/chunk_conformer_base.yaml
# (83M-parameter encoder; --ssl-config .../chunk_conformer_large.yaml for 300M). Sizes and expected time
# per epoch: ../README.md.
set -euo pipefail
. ./path.sh
./ssl.sh --train-set train_960 --valid-set dev_clean --nj 32 --ngpu 1 \
  --ssl-config "$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_base.yaml" "$@"
