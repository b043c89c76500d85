#!/usr/bin/env bash
# English->French speech translation on the Libri-Trans sample (speaker-disjoint split made by local/data.sh).
set -euo pipefail
./st.sh --src-lang en --tgt-lang fr --train-set train --valid-set dev --test-sets "test" --nj 2 \
  --local-data-opts "--dev-frac 0.05" "$@"
