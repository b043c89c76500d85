#!/usr/bin/env bash
# Chunk SSL pre-training stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh; transcripts not needed)
#   2: validation and fbank features
set -euo pipefail

stage=1
stop_stage=100
nj=4
fs=16000
train_set=train
valid_set=dev
dump_dir=dump
local_data_opts=""
help_message="Usage: $0 --train-set <set> --valid-set <set> [--stage N] [--stop-stage N] [--nj N]"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../stages.sh"

validate_opts="--no-text"  # pre-training needs audio only

if run_stage 1 "data preparation: local/data.sh"; then
  stage_data "$local_data_opts" $train_set $valid_set
fi

if run_stage 2 "validate data dirs and compute fbank into $dump_dir/fbank"; then
  stage_fbank $train_set $valid_set
fi

log "Finished stages $stage..$stop_stage."
