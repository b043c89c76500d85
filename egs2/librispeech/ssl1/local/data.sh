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
for group in $combine; do
  name=${group%%=*}
  parts=${group#*=}
  if [ "$name" = "$group" ] || [ -z "$parts" ]; then
    echo "$0: --combine expects NAME=SUBSET1,SUBSET2,..., got '$group'" >&2
    exit 1
  fi
  dirs=()
  for s in ${parts//,/ }; do dirs+=("data/${s//-/_}"); done
  utils/combine_data.sh "data/$name" "${dirs[@]}"
done
