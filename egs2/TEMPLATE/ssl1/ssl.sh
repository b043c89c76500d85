#!/usr/bin/env bash
# Chunk SSL pre-training stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh; transcripts not needed)
#   2: validation and fbank features (--feats-type raw: audio.scp manifests and CMVN stats, no archive)
#   3: train the target tokenizers (FSQ presets; BEST-RQ needs no training)
#   4: tokenize train/valid with each tokenizer, and compare them (reconstruction, utilisation, PNMI);
#      --ssl-targets online: tokenize and compare a sample of the valid set only
#   5: SSL stats: shape files over the utterances that have both features and codes (split into
#      --num-splits shards for ESPnet's --multiple_iterator when > 1)
#   6: Chunk SSL training (CADA, group masked prediction of the $ssl_tokenizer codes) through ESPnet's
#      launcher: --ngpu GPUs per node on --num-nodes nodes (slurm.pl), DDP
#   7: pack the model (ESPnet zip) and export the encoder for fine-tuning (--init_param)
# At scale: --feats-type raw --ssl-targets online reads the audio and makes fbank and codes on the training
# device, so the disk holds the audio and manifests only (egs2/librilight/ssl1/README.md).
set -euo pipefail

stage=1
stop_stage=100
nj=4
fs=16000
train_set=train
valid_set=dev
dump_dir=dump
local_data_opts=""
fsq_train_set=""            # the set the FSQ tokenizers learn from (default: the training set; at scale a subset)
tokenizers="6m"             # tokenizers to build: names of conf/fsq/<name>.yaml (FSQ) or "bestrq"
ssl_tokenizer=6m            # the one whose codes are the pre-training targets
fsq_conf_dir=""             # default: $CHUNKSSL_ROOT/conf/fsq
fsq_train_opts=""           # extra ESPnet trainer options, e.g. "--max_epoch 5"
ngpu=0
analyze=true                # stage 4 writes exp/fsq_analysis/<valid_set>/results.md
ssl_config=""               # default: $CHUNKSSL_ROOT/conf/ssl/chunk_conformer_base.yaml
ssl_tag=""                  # exp/ssl_<tag>; default: <config name>_<ssl_tokenizer>
ssl_train_opts=""           # extra ESPnet trainer options
feats_type=fbank            # fbank: dump fbank (stage 2); raw: read the audio, fbank made in the model
ssl_targets=dumped          # dumped: codes written by stage 4; online: the frozen tokenizer makes them
num_splits=1                # > 1: shard the training lists (ESPnet --multiple_iterator) for huge corpora
num_nodes=1                 # nodes for DDP (with slurm.pl as cuda_cmd), --ngpu GPUs each
analysis_utts=200           # --ssl-targets online: valid utterances tokenized for the stage-4 comparison
help_message="Usage: $0 --train-set <set> --valid-set <set> [--stage N] [--stop-stage N] [--nj N]"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../stages.sh"

validate_opts="--no-text"  # pre-training needs audio only
fsq_conf_dir=${fsq_conf_dir:-$CHUNKSSL_ROOT/conf/fsq}
train_feats
fb=$train_fb
case "$ssl_targets" in
  dumped|online) ;;
  *) log "--ssl-targets must be dumped or online, got '$ssl_targets'"; exit 2 ;;
esac
ssl_config=${ssl_config:-$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_base.yaml}
ssl_tag=${ssl_tag:-$(basename "${ssl_config%.yaml}")_$ssl_tokenizer}
ssl_exp=exp/ssl_$ssl_tag
tok_dir=$dump_dir/tokens/$ssl_tokenizer

if run_stage 1 "data preparation: local/data.sh"; then
  stage_data "$local_data_opts" $train_set $valid_set
fi

fsq_train_set=${fsq_train_set:-$train_set}
if run_stage 2 "validate data dirs and compute fbank ($feats_type) into $fb"; then
  # shellcheck disable=SC2046
  stage_fbank $(printf '%s\n' "$train_set" "$valid_set" "$fsq_train_set" | awk '!seen[$0]++')
fi

if run_stage 3 "train tokenizers: $tokenizers (on $fsq_train_set)"; then
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
        --cmvn_stats "$fb/$fsq_train_set/cmvn_stats.npz" --ngpu "$ngpu" --resume true "${frontend_opts[@]}" \
        --train_data_path_and_name_and_type "$(speech_data "$fb/$fsq_train_set")" \
        --train_shape_file "$fb/$fsq_train_set/utt2num_frames" \
        --valid_data_path_and_name_and_type "$(speech_data "$fb/$valid_set")" \
        --valid_shape_file "$fb/$valid_set/utt2num_frames" $fsq_train_opts
  done
fi

if run_stage 4 "tokenize $train_set and $valid_set with: $tokenizers"; then
  feats_opt=(--feats-scp); [ "$feats_type" = raw ] && feats_opt=(--audio-scp)
  sets="$train_set $valid_set"
  analysis_set=$valid_set
  if [ "$ssl_targets" = online ]; then
    # the training codes are made on the fly: tokenize only a sample, for the comparison below (none without it)
    sets=""
    if $analyze; then
      n=$(wc -l < "data/$valid_set/utt2spk")
      [ "$n" -gt "$analysis_utts" ] && n=$analysis_utts
      analysis_set=${valid_set}_sample$n
      utils/subset_data_dir.sh --first "$n" "data/$valid_set" "data/$analysis_set"
      (feats_type=fbank; stage_fbank "$analysis_set")  # a small dump, read by the analysis only
      feats_opt=(--feats-scp); fb_tok=$dump_dir/fbank
      sets=$analysis_set
    else
      log "--ssl-targets online --analyze false: nothing to tokenize (the codes are made in training)"
    fi
  fi
  for tok in $tokenizers; do
    for s in $sets; do
      out=$dump_dir/tokens/$tok/$s
      src_dir=${fb_tok:-$fb}/$s
      if [ "$tok" = bestrq ]; then
        src=(--quantizer bestrq --bestrq-config "$fsq_conf_dir/bestrq.yaml" --cmvn-stats "$fb/$train_set/cmvn_stats.npz")
        model=$fsq_conf_dir/bestrq.yaml
      else
        model=exp/fsq_$tok/valid.loss.best.pth
        src=(--model "$model")
      fi
      list=$src_dir/feats.scp; [ "${feats_opt[0]}" = --audio-scp ] && list=$src_dir/audio.scp
      inputs=("$model" "$list")
      [ "$tok" = bestrq ] && inputs+=("$fb/$train_set/cmvn_stats.npz")
      # --nj and --cmd change no code: they stay out of the stamp
      cmd=(python -m chunkssl.bin.fsq_tokenize "${src[@]}" "${feats_opt[@]}" "$list" --sample-rate "$fs" \
        --out-dir "$out" --short-utt skip)
      # redone when the tokenizer (its file or options) or the features changed (e.g. stage 2 rewrote them)
      made "$out/.options" "$out/codes.scp" "${inputs[@]}" -- "${cmd[@]}" && continue
      "${cmd[@]}" --nj "$nj" --cmd "$train_cmd"   # one job per part through $train_cmd (run.pl/slurm.pl)
      stamp_made "$out/.options" "${inputs[@]}" -- "${cmd[@]}"
    done
  done
  if $analyze; then
    specs=()
    for tok in $tokenizers; do specs+=("$tok=$dump_dir/tokens/$tok/$analysis_set"); done
    ali=()
    [ -f "data/$valid_set/phone_ali" ] && ali=(--phone-ali "data/$valid_set/phone_ali")
    python -m chunkssl.bin.fsq_analyze --tokenizers "${specs[@]}" --feats-scp "${fb_tok:-$fb}/$analysis_set/feats.scp" \
      "${ali[@]}" --out-dir "exp/fsq_analysis/$analysis_set"
    log "tokenizer comparison: exp/fsq_analysis/$analysis_set/results.md"
  fi
fi

# an utterance shorter than one 40 ms token (4 fbank frames: the tokenizers' stack) has no code to predict
min_frames=4
if run_stage 5 "SSL stats: shape files for $train_set and $valid_set"; then
  for s in $train_set $valid_set; do
    mkdir -p "$ssl_exp/stats/$s"
    # Shapes in fbank frames for either feats type, so raw and fbank runs make the same batches.
    if [ "$ssl_targets" = dumped ]; then
      [ -f "$tok_dir/$s/codes.scp" ] || { log "$tok_dir/$s/codes.scp is missing: run stage 4 with --tokenizers including $ssl_tokenizer"; exit 1; }
      # Utterances the tokenizer skipped (shorter than one token) have features but no codes: leave them out.
      utils/filter_scp.py "$tok_dir/$s/codes.scp" "$fb/$s/utt2num_frames"
    else
      awk -v m=$min_frames '$2 >= m' "$fb/$s/utt2num_frames"
    fi | awk '{print $1, $2 ",80"}' > "$ssl_exp/stats/$s/speech_shape.tmp"
    [ -s "$ssl_exp/stats/$s/speech_shape.tmp" ] || { log "no utterance of $s has both features and codes"; exit 1; }
    mv "$ssl_exp/stats/$s/speech_shape.tmp" "$ssl_exp/stats/$s/speech_shape"
    log "$s: $(wc -l < "$ssl_exp/stats/$s/speech_shape") utterances with features and codes"
  done
  if [ "$num_splits" -gt 1 ]; then
    # ESPnet's split_scps: each shard is a list the iterator loads on its own (--multiple_iterator). It
    # wants the same keys line by line in every list: first cut each to the utterances of the shape file.
    split=$ssl_exp/splits$num_splits
    rm -rf "$split" "$split.tmp"
    mkdir -p "$split.tmp"
    scps=("$fb/$train_set/$speech_list")
    [ "$ssl_targets" = dumped ] && scps+=("$tok_dir/$train_set/codes.scp")
    for f in "${scps[@]}"; do
      utils/filter_scp.py "$ssl_exp/stats/$train_set/speech_shape" "$f" > "$split.tmp/$(basename "$f")"
    done
    cp "$ssl_exp/stats/$train_set/speech_shape" "$split.tmp/speech_shape"
    python -m espnet2.bin.split_scps --scps "$split.tmp"/*.scp "$split.tmp/speech_shape" \
      --num_splits "$num_splits" --output_dir "$split.tmp/out"
    mv "$split.tmp/out" "$split"
    rm -rf "$split.tmp"
    log "$train_set split into $num_splits shards: $split"
  fi
fi

if run_stage 6 "Chunk SSL training: $ssl_exp (log: $ssl_exp/train.log)"; then
  data_opts=()
  if [ "$num_splits" -gt 1 ]; then
    split=$ssl_exp/splits$num_splits
    [ -d "$split" ] || { log "$split is missing: run stage 5 with --num-splits $num_splits"; exit 1; }
    data_opts+=(--multiple_iterator true --train_shape_file "$split/speech_shape"
      --train_data_path_and_name_and_type "$(speech_data "$split")")
    [ "$ssl_targets" = dumped ] && data_opts+=(--train_data_path_and_name_and_type "$split/codes.scp,codes,kaldiio_ark")
  else
    data_opts+=(--train_shape_file "$ssl_exp/stats/$train_set/speech_shape"
      --train_data_path_and_name_and_type "$(speech_data "$fb/$train_set")")
    [ "$ssl_targets" = dumped ] && data_opts+=(--train_data_path_and_name_and_type "$tok_dir/$train_set/codes.scp,codes,kaldiio_ark")
  fi
  data_opts+=(--valid_shape_file "$ssl_exp/stats/$valid_set/speech_shape"
    --valid_data_path_and_name_and_type "$(speech_data "$fb/$valid_set")")
  if [ "$ssl_targets" = dumped ]; then
    data_opts+=(--code_info "$tok_dir/$train_set/code_info.yaml"
      --valid_data_path_and_name_and_type "$tok_dir/$valid_set/codes.scp,codes,kaldiio_ark")
  elif [ "$ssl_tokenizer" = bestrq ]; then
    data_opts+=(--target_tokenizer "$fsq_conf_dir/bestrq.yaml" --target_cmvn_stats "$fb/$train_set/cmvn_stats.npz")
  else
    data_opts+=(--target_tokenizer "exp/fsq_$ssl_tokenizer/valid.loss.best.pth")
  fi
  # ESPnet's launcher: one process per GPU (DDP), on --num-nodes nodes through slurm.pl
  # shellcheck disable=SC2086
  python -m espnet2.bin.launch --cmd "$cuda_cmd" --log "$ssl_exp/train.log" --ngpu "$ngpu" \
    --num_nodes "$num_nodes" --init_file_prefix "$ssl_exp/.dist_init_" --multiprocessing_distributed true -- \
    python -m chunkssl.bin.ssl_train --config "$ssl_config" --output_dir "$ssl_exp" --resume true \
      --normalize_conf "stats_file=$fb/$train_set/cmvn_stats.npz" "${frontend_opts[@]}" --fold_length 1500 \
      "${data_opts[@]}" $ssl_train_opts
  grep -E "[0-9]+epoch results" "$ssl_exp/train.log" | tail -n 1 | sed 's/^.*INFO: //' >&2 || true
fi

if run_stage 7 "pack $ssl_exp"; then
  model=$ssl_exp/valid.acc.best.pth
  [ -e "$model" ] || { log "$model is missing: run stage 6 first"; exit 1; }
  options=(--option "$fb/$train_set/cmvn_stats.npz")
  [ "$ssl_targets" = dumped ] && options+=(--option "$tok_dir/$train_set/code_info.yaml")
  python -m espnet2.bin.pack ssl --ssl_train_config "$ssl_exp/config.yaml" --ssl_model_file "$model" \
    "${options[@]}" --outpath "$ssl_exp/packed.tmp.zip"
  mv "$ssl_exp/packed.tmp.zip" "$ssl_exp/packed.zip"
  log "packed: $ssl_exp/packed.zip; fine-tune with --init_param $model:encoder:encoder"
fi

log "Finished stages $stage..$stop_stage."
