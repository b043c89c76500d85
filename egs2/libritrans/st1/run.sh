#!/usr/bin/env bash
# English->French speech translation on the Libri-Trans sample (speaker-disjoint split made by local/data.sh).
# Tiny chunk-conformer ST model trained from scratch on CPU (about 0.5 h of training audio); add
# --init-param <ssl exp>/valid.acc.best.pth:encoder:encoder to start from a Chunk SSL encoder
# (pre-trained with conf/ssl/chunk_conformer_tiny.yaml).
set -euo pipefail
./st.sh --src-lang en --tgt-lang fr --train-set train --valid-set dev --test-sets "test" --nj 2 \
  --local-data-opts "--dev-frac 0.05" \
  --st-train-opts "--max_epoch 6" --chunk-ms "640 1280 0" \
  --maxlenratio 0.25 --beam-size 3 --simul-beam-size 1 "$@"
