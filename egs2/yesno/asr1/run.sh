#!/usr/bin/env bash
# OpenSLR yesno (Hebrew "ken"/"lo", 8 kHz, one speaker). 3 utterances of train serve as dev.
set -euo pipefail
./asr.sh --train-set train --valid-set dev --test-sets "test" --nj 2 --local-data-opts "--num-dev 3" "$@"
