#!/usr/bin/env bash
# LibriSpeech data prep: data/<subset with - as _> for each of --subsets, from $LIBRISPEECH (db.sh),
# the folder holding LibriSpeech/ (and librispeech_finetuning/ for train-10min, train-1h, train-10h).
# Missing subsets are downloaded first (local/download.sh) unless --download false. Low-resource
# fine-tuning: --subsets "train-10h train-1h dev-clean dev-other test-clean test-other".
# --combine "train_960=train-clean-100,train-clean-360,train-other-500" also merges subsets into one
# data dir with utils/combine_data.sh (several NAME=LIST groups may be given, space-separated).
set -euo pipefail
. ./path.sh
. ./db.sh
subsets="train-clean-100 dev-clean dev-other test-clean test-other"
download=true
finetune_root=""  # default: $LIBRISPEECH/librispeech_finetuning
combine=""
. utils/parse_options.sh

to_fetch=""
for s in $subsets; do
  # a fine-tuning folder given explicitly is used as it is, never downloaded
  case "$s" in train-10min|train-1h|train-10h) [ -n "$finetune_root" ] && continue ;; esac
  to_fetch+=" $s"
done
if $download && [ -n "$to_fetch" ]; then
  local/download.sh --subsets "$to_fetch" "$LIBRISPEECH"
fi
opts=()
[ -n "$finetune_root" ] && opts+=(--finetune-root "$finetune_root")
# shellcheck disable=SC2086
python -m chunkssl.corpora.librispeech --src "$LIBRISPEECH" --out data --subsets $subsets "${opts[@]}"

utils/combine_groups.sh "$combine"
