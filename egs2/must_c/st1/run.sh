#!/usr/bin/env bash
# MuST-C English->German (another target: --tgt-lang xx and --local-data-opts "--tgt xx").
set -euo pipefail
tgt=de
./st.sh --src-lang en --tgt-lang $tgt --train-set train_en_$tgt --valid-set dev_en_$tgt \
  --test-sets "tst_COMMON_en_$tgt tst_HE_en_$tgt" --nj 16 --local-data-opts "--tgt $tgt" "$@"
