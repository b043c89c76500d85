#!/usr/bin/env bash
# Libri-light data prep for SSL: data/<subset> (segments of at most --max-seg-sec seconds cut from the
# voice-activity metadata, no text) for each of --subsets, from $LIBRILIGHT (db.sh), the folder holding
# small/, medium/, ... Missing subsets are downloaded first (local/download.sh) unless --download false.
# --dev-recordings N holds out N recordings per subset as data/<subset>_dev.
# --combine "unlab_5.8k=small,medium" also merges subsets into one data dir (utils/combine_data.sh).
set -euo pipefail
. ./path.sh
. ./db.sh
subsets="small"
download=true
max_seg_sec=15
min_seg_sec=1
dev_recordings=0
combine=""
. utils/parse_options.sh
if $download; then
  local/download.sh --subsets "$subsets" "$LIBRILIGHT"
fi
# shellcheck disable=SC2086
python -m chunkssl.corpora.librilight --src "$LIBRILIGHT" --out data --subsets $subsets \
  --max-seg-sec "$max_seg_sec" --min-seg-sec "$min_seg_sec" --dev-recordings "$dev_recordings"
utils/combine_groups.sh "$combine"
