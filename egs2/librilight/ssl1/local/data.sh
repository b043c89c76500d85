#!/usr/bin/env bash
# Libri-light data prep for SSL: data/<subset> (segments of at most --max-seg-sec seconds cut from the
# voice-activity metadata, no text) for each of --subsets (space- or comma-separated), from $LIBRILIGHT (db.sh), the folder holding
# small/, medium/, ... Missing subsets are downloaded first (local/download.sh) unless --download false.
# --dev-recordings N holds out N recordings per subset as data/<subset>_dev.
# --nj N runs the scan as N jobs through $train_cmd (cmd.sh: run.pl, or slurm.pl with
# CHUNKSSL_CMD_BACKEND=slurm), each taking a fixed share of the speaker folders; logs in
# data/local/librilight/log/prep.JOB.log. The data dirs are the same for any N and are replaced only
# when every job succeeded.
# --combine "unlab_5.8k=small,medium" also merges subsets into one data dir (utils/combine_data.sh).
# Trying the recipe without the download: local/make_sample.sh builds a small/ from real Libri-Trans speech.
set -euo pipefail
. ./path.sh
. ./db.sh
. ./cmd.sh
subsets="small"
download=true
max_seg_sec=15
min_seg_sec=1
dev_recordings=0
nj=4
combine=""
. utils/parse_options.sh
subsets=${subsets//,/ }  # "small,medium,large" too: a recipe's --local-data-opts cannot quote a space
if $download; then
  local/download.sh --subsets "$subsets" "$LIBRILIGHT"
fi
# shellcheck disable=SC2086,SC2154
python -m chunkssl.corpora.librilight --src "$LIBRILIGHT" --out data --subsets $subsets \
  --max-seg-sec "$max_seg_sec" --min-seg-sec "$min_seg_sec" --dev-recordings "$dev_recordings" \
  --nj "$nj" --cmd "$train_cmd"
utils/combine_groups.sh "$combine"
