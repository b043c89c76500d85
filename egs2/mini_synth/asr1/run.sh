#!/usr/bin/env bash
# Synthetic AN4-like corpus made by espeak-ng: the recipe `make demo` runs on CPU.
set -euo pipefail
./asr.sh --train-set train --valid-set dev --test-sets "test" --nj 2 \
  --local-data-opts "--num-utts 300 --seed 1" "$@"
