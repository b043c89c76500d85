#!/usr/bin/env bash
# Chunk SSL on the synthetic corpus, CPU only. Tokenizers 1k / 64k / ~6M FSQ and BEST-RQ are built and
# compared (exp/fsq_analysis/dev/results.md); the ~6M codes are the pre-training targets.
set -euo pipefail
. ./path.sh
./ssl.sh --train-set train --valid-set dev --nj 2 \
  --local-data-opts "--num-utts 300 --seed 1" \
  --tokenizers "1k 64k 6m bestrq" --ssl-tokenizer 6m \
  --fsq-train-opts "--max_epoch 8 --num_workers 0 --log_interval 20" \
  --ssl-config "$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_tiny.yaml" "$@"
