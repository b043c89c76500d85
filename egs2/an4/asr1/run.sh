#!/usr/bin/env bash
# CMU AN4 (here the 7-utterance mini_an4; with the full release add --local-data-opts "--num-dev 100").
# mini_an4 has no dev set, so its test set doubles as the validation set.
set -euo pipefail
./asr.sh --train-set train --valid-set test --test-sets "test" --nj 2 "$@"
