#!/usr/bin/env bash
# Chunk SSL pre-training on LibriSpeech 960 h (audio only).
set -euo pipefail
./ssl.sh --train-set train_960 --valid-set dev_clean --nj 32 "$@"
