#!/usr/bin/env bash
# MuST-C English->German (another target: --tgt-lang xx and --local-data-opts "--tgt xx").
# Base chunk conformer (conf/st/chunk_conformer_base.yaml); add --init-param
# <ssl exp>/valid.acc.best.pth:encoder:encoder to start from a Chunk SSL encoder (conf/ssl/chunk_conformer_base.yaml).
set -euo pipefail
tgt=de
./st.sh --src-lang en --tgt-lang $tgt --train-set train_en_$tgt --valid-set dev_en_$tgt \
  --test-sets "tst_COMMON_en_$tgt tst_HE_en_$tgt" --nj 16 --local-data-opts "--tgt $tgt" \
  --st-config "$(cd ../../.. && pwd)/conf/st/chunk_conformer_base.yaml" --tgt-nbpe 4000 --src-nbpe 4000 \
  --chunk-ms "320 640 1280 0" "$@"
