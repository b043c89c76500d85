#!/usr/bin/env bash
# Speech translation recipe stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh: text = source transcript, text.<tgt_lang> = translation)
#   2: validation and fbank features
set -euo pipefail

stage=1
stop_stage=100
nj=4
fs=16000
src_lang=en
tgt_lang=fr
train_set=train
valid_set=dev
test_sets="test"
dump_dir=dump
local_data_opts=""
help_message="Usage: $0 --src-lang en --tgt-lang fr --train-set <set> --valid-set <set> --test-sets '<set> ...' [--stage N]"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../stages.sh"

all_sets=$(echo $train_set $valid_set $test_sets | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')

if run_stage 1 "data preparation: local/data.sh"; then
  stage_data "$local_data_opts" $all_sets
  for s in $all_sets; do
    [ -f "data/$s/text.$tgt_lang" ] || { log "data/$s/text.$tgt_lang is missing: local/data.sh must write the translations"; exit 1; }
  done
fi

if run_stage 2 "validate data dirs and compute fbank into $dump_dir/fbank"; then
  stage_fbank $all_sets
fi

log "Finished stages $stage..$stop_stage."
