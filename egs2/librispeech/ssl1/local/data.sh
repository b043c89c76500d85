#!/usr/bin/env bash
# LibriSpeech data prep for SSL pre-training: by default the 960 h of training audio merged into
# data/train_960, plus data/dev_clean and data/dev_other for validation, from $LIBRISPEECH (db.sh).
# Transcripts are written too (the SSL stage ignores them). Options as in ../asr1/local/data.sh.
set -euo pipefail
. ./path.sh
. ./db.sh
subsets="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other"
download=true
combine="train_960=train-clean-100,train-clean-360,train-other-500"
. utils/parse_options.sh
if $download; then
  local/download.sh --subsets "$subsets" "$LIBRISPEECH"
fi
# shellcheck disable=SC2086
python -m chunkssl.corpora.librispeech --src "$LIBRISPEECH" --out data --subsets $subsets
utils/combine_groups.sh "$combine"
