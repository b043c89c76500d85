#!/usr/bin/env bash
# Chunk SSL pre-training on Libri-light (unlabelled, cut into <= 15 s segments by its VAD metadata).
set -euo pipefail
./ssl.sh --train-set small --valid-set small_dev --nj 32 \
  --local-data-opts "--subsets small --max-seg-sec 15 --dev-recordings 20" "$@"
