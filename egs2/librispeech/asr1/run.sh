#!/usr/bin/env bash
# LibriSpeech 100 h (set LIBRISPEECH in db.sh or the environment; stage 1 downloads when it is absent).
# GPU-sized: conf/asr/chunk_conformer_base.yaml (116M parameters; --asr-config .../chunk_conformer_large.yaml
# for 369M with the 960 h set). Sizes and expected time per epoch: ../README.md. Fine-tune from Chunk SSL
# with --pretrained-model ../ssl1/exp/ssl_chunk_conformer_base_6m/valid.acc.best.pth.
set -euo pipefail
. ./path.sh
./asr.sh --train-set train_clean_100 --valid-set dev_clean --test-sets "dev_clean dev_other test_clean test_other" \
  --nj 16 --ngpu 1 --token-type bpe --nbpe 5000 \
  --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_base.yaml" "$@"
