#!/usr/bin/env bash
# Chunk SSL pre-training stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh; transcripts not needed)
#   2: validation and fbank features
#   3: train the target tokenizers (FSQ presets; BEST-RQ needs no training)
#   4: tokenize train/valid with each tokenizer, and compare them (reconstruction, utilisation, PNMI)
#   5: SSL stats: shape files over the utterances that have both features and codes
#   6: Chunk SSL training (CADA, group masked prediction of the $ssl_tokenizer codes)
#   7: pack the model (ESPnet zip) and export the encoder for fine-tuning (--init_param)
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
ssl_config=""               # default: $CHUNKSSL_ROOT/conf/ssl/chunk_conformer_base.yaml
ssl_tag=""                  # exp/ssl_<tag>; default: <config name>_<ssl_tokenizer>
ssl_train_opts=""           # extra ESPnet trainer options
help_message="Usage: $0 --train-set <set> --valid-set <set> [--stage N] [--stop-stage N] [--nj N]"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../stages.sh"

validate_opts="--no-text"  # pre-training needs audio only
fsq_conf_dir=${fsq_conf_dir:-$CHUNKSSL_ROOT/conf/fsq}
fb=$dump_dir/fbank
ssl_config=${ssl_config:-$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_base.yaml}
ssl_tag=${ssl_tag:-$(basename "${ssl_config%.yaml}")_$ssl_tokenizer}
ssl_exp=exp/ssl_$ssl_tag
tok_dir=$dump_dir/tokens/$ssl_tokenizer

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
      inputs=("$model" "$fb/$s/feats.scp")
      [ "$tok" = bestrq ] && inputs+=("$fb/$train_set/cmvn_stats.npz")
      # --nj and --cmd change no code: they stay out of the stamp
      cmd=(python -m chunkssl.bin.fsq_tokenize "${src[@]}" --feats-scp "$fb/$s/feats.scp" --out-dir "$out" \
        --short-utt skip)
      # redone when the tokenizer (its file or options) or the features changed (e.g. stage 2 rewrote them)
      made "$out/.options" "$out/codes.scp" "${inputs[@]}" -- "${cmd[@]}" && continue
      "${cmd[@]}" --nj "$nj" --cmd "$train_cmd"   # one job per part through $train_cmd (run.pl/slurm.pl)
      stamp_made "$out/.options" "${inputs[@]}" -- "${cmd[@]}"
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

if run_stage 5 "SSL stats: shape files for $train_set and $valid_set"; then
  for s in $train_set $valid_set; do
    [ -f "$tok_dir/$s/codes.scp" ] || { log "$tok_dir/$s/codes.scp is missing: run stage 4 with --tokenizers including $ssl_tokenizer"; exit 1; }
    mkdir -p "$ssl_exp/stats/$s"
    # Utterances the tokenizer skipped (shorter than one token) have features but no codes: leave them out.
    utils/filter_scp.py "$tok_dir/$s/codes.scp" "$fb/$s/utt2num_frames" | awk '{print $1, $2 ",80"}' \
      > "$ssl_exp/stats/$s/speech_shape.tmp"
    [ -s "$ssl_exp/stats/$s/speech_shape.tmp" ] || { log "no utterance of $s has both features and codes"; exit 1; }
    mv "$ssl_exp/stats/$s/speech_shape.tmp" "$ssl_exp/stats/$s/speech_shape"
    log "$s: $(wc -l < "$ssl_exp/stats/$s/speech_shape") utterances with features and codes"
  done
fi

if run_stage 6 "Chunk SSL training: $ssl_exp (log: $ssl_exp/train.log)"; then
  # shellcheck disable=SC2086
  ${cuda_cmd} --gpu "$ngpu" "$ssl_exp/train.log" \
    python -m chunkssl.bin.ssl_train --config "$ssl_config" --output_dir "$ssl_exp" --ngpu "$ngpu" --resume true \
      --code_info "$tok_dir/$train_set/code_info.yaml" --normalize_conf "stats_file=$fb/$train_set/cmvn_stats.npz" \
      --train_data_path_and_name_and_type "$fb/$train_set/feats.scp,speech,kaldi_ark" \
      --train_data_path_and_name_and_type "$tok_dir/$train_set/codes.scp,codes,kaldiio_ark" \
      --train_shape_file "$ssl_exp/stats/$train_set/speech_shape" --fold_length 1500 \
      --valid_data_path_and_name_and_type "$fb/$valid_set/feats.scp,speech,kaldi_ark" \
      --valid_data_path_and_name_and_type "$tok_dir/$valid_set/codes.scp,codes,kaldiio_ark" \
      --valid_shape_file "$ssl_exp/stats/$valid_set/speech_shape" $ssl_train_opts
  grep -E "[0-9]+epoch results" "$ssl_exp/train.log" | tail -n 1 | sed 's/^.*INFO: //' >&2 || true
fi

if run_stage 7 "pack $ssl_exp"; then
  model=$ssl_exp/valid.acc.best.pth
  [ -e "$model" ] || { log "$model is missing: run stage 6 first"; exit 1; }
  python -m espnet2.bin.pack ssl --ssl_train_config "$ssl_exp/config.yaml" --ssl_model_file "$model" \
    --option "$fb/$train_set/cmvn_stats.npz" --option "$tok_dir/$train_set/code_info.yaml" \
    --outpath "$ssl_exp/packed.tmp.zip"
  mv "$ssl_exp/packed.tmp.zip" "$ssl_exp/packed.zip"
  log "packed: $ssl_exp/packed.zip; fine-tune with --init_param $model:encoder:encoder"
fi

log "Finished stages $stage..$stop_stage."
