#!/usr/bin/env bash
# Chunk SSL pre-training stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh; transcripts not needed)
#   2: validation and fbank features
#   3: train the target tokenizers (FSQ presets; BEST-RQ needs no training)
#   4: tokenize train/valid with each tokenizer, and compare them (reconstruction, utilisation, PNMI)
set -euo pipefail

stage=1
stop_stage=100
nj=4
fs=16000
train_set=train
valid_set=dev
dump_dir=dump
local_data_opts=""
tokenizers="6m"             # tokenizers to build: names of conf/fsq/<name>.yaml (FSQ) or "bestrq"
ssl_tokenizer=6m            # the one whose codes are the pre-training targets
fsq_conf_dir=""             # default: $CHUNKSSL_ROOT/conf/fsq
fsq_train_opts=""           # extra ESPnet trainer options, e.g. "--max_epoch 5"
ngpu=0
analyze=true                # stage 4 writes exp/fsq_analysis/<valid_set>/results.md
help_message="Usage: $0 --train-set <set> --valid-set <set> [--stage N] [--stop-stage N] [--nj N]"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../stages.sh"

validate_opts="--no-text"  # pre-training needs audio only
fsq_conf_dir=${fsq_conf_dir:-$CHUNKSSL_ROOT/conf/fsq}
fb=$dump_dir/fbank

if run_stage 1 "data preparation: local/data.sh"; then
  stage_data "$local_data_opts" $train_set $valid_set
fi

if run_stage 2 "validate data dirs and compute fbank into $dump_dir/fbank"; then
  stage_fbank $train_set $valid_set
fi

if run_stage 3 "train tokenizers: $tokenizers"; then
  for tok in $tokenizers; do
    [ "$tok" = bestrq ] && continue
    if [ -e "exp/fsq_$tok/valid.loss.best.pth" ]; then
      log "exp/fsq_$tok is already trained; remove it to retrain"
      continue
    fi
    log "training FSQ tokenizer $tok (log: exp/fsq_$tok/train.log)"
    mkdir -p "exp/fsq_$tok"
    # shellcheck disable=SC2086
    ${cuda_cmd} --gpu "$ngpu" "exp/fsq_$tok/train.log" \
      python -m chunkssl.bin.fsq_train --config "$fsq_conf_dir/$tok.yaml" --output_dir "exp/fsq_$tok" \
        --cmvn_stats "$fb/$train_set/cmvn_stats.npz" --ngpu "$ngpu" --resume true \
        --train_data_path_and_name_and_type "$fb/$train_set/feats.scp,speech,kaldi_ark" \
        --train_shape_file "$fb/$train_set/utt2num_frames" \
        --valid_data_path_and_name_and_type "$fb/$valid_set/feats.scp,speech,kaldi_ark" \
        --valid_shape_file "$fb/$valid_set/utt2num_frames" $fsq_train_opts
  done
fi

if run_stage 4 "tokenize $train_set and $valid_set with: $tokenizers"; then
  for tok in $tokenizers; do
    for s in $train_set $valid_set; do
      out=$dump_dir/tokens/$tok/$s
      if [ "$tok" = bestrq ]; then
        src=(--quantizer bestrq --bestrq-config "$fsq_conf_dir/bestrq.yaml" --cmvn-stats "$fb/$train_set/cmvn_stats.npz")
        model=$fsq_conf_dir/bestrq.yaml
      else
        model=exp/fsq_$tok/valid.loss.best.pth
        src=(--model "$model")
      fi
      if [ -e "$out/codes.scp" ] && [ "$out/codes.scp" -nt "$model" ]; then
        log "$out is up to date"
        continue
      fi
      python -m chunkssl.bin.fsq_tokenize "${src[@]}" --feats-scp "$fb/$s/feats.scp" --out-dir "$out" \
        --nj "$nj" --short-utt skip
    done
  done
  if $analyze; then
    specs=()
    for tok in $tokenizers; do specs+=("$tok=$dump_dir/tokens/$tok/$valid_set"); done
    ali=()
    [ -f "data/$valid_set/phone_ali" ] && ali=(--phone-ali "data/$valid_set/phone_ali")
    python -m chunkssl.bin.fsq_analyze --tokenizers "${specs[@]}" --feats-scp "$fb/$valid_set/feats.scp" \
      "${ali[@]}" --out-dir "exp/fsq_analysis/$valid_set"
    log "tokenizer comparison: exp/fsq_analysis/$valid_set/results.md"
  fi
fi

log "Finished stages $stage..$stop_stage."
