#!/usr/bin/env bash
# Free Spoken Digit Dataset (8 kHz, resampled to 16 kHz by the fbank stage).
set -euo pipefail
./asr.sh --train-set train --valid-set dev --test-sets "test" --nj 2 "$@"
