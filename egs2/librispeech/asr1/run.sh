#!/usr/bin/env bash
# LibriSpeech 100 h (set LIBRISPEECH in db.sh or the environment; stage 1 downloads when it is absent).
set -euo pipefail
./asr.sh --train-set train_clean_100 --valid-set dev_clean --test-sets "dev_clean dev_other test_clean test_other" \
  --nj 16 "$@"
