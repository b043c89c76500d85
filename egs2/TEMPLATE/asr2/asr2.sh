#!/usr/bin/env bash
# Codec-ASR stages: ASR on the discrete codes of an FSQ or RVQ fbank tokenizer. A corpus's run.sh sets
# the options and calls this script.
#   1: data preparation (local/data.sh)       2: validation and fbank features (--feats-type raw: no fbank
#                                                archive for the training sets; the tokenizer reads their audio)
#   3: train the tokenizer (ssl1's stage 3)   4: tokenize every set (ssl1's stage 4) and report its bitrate
#   5: token list (sentencepiece)             6: shape files from the code lengths
#   7: training (ESPnet, token frontend -> chunk conformer without subsampling, dynamic chunks)
#   8: batch decoding of the codes over a chunk-size sweep (chunk mask; "full" = offline)
#   9: true streaming decoding from audio (incremental fbank -> tokenizer -> frontend -> cached encoder)
#  10: scoring and exp/asr_<tag>/RESULTS.md (+ bitrate.md: bits per second and storage beside fbank)
set -euo pipefail

stage=1
stop_stage=100
nj=4
fs=16000
train_set=train
valid_set=dev
test_sets="test"
dump_dir=dump
local_data_opts=""
tokenizer=64k               # conf/fsq/<name>.yaml: an FSQ preset (1k, 64k, 6m, tiny) or an RVQ (rvq_2x256, ...)
fsq_conf_dir=""             # default: $CHUNKSSL_ROOT/conf/fsq
fsq_train_opts=""           # extra ESPnet trainer options for the tokenizer, e.g. "--max_epoch 5"
analyze=false               # stage 4 also compares the codes on the valid set (ssl1's fsq_analyze)
token_type=bpe              # bpe, unigram or char
nbpe=100
frontend_init=codebook      # codebook: embeddings start from the tokenizer's codebook; random
asr_config=""               # default: $CHUNKSSL_ROOT/conf/asr2/chunk_conformer_tiny_tokens.yaml
asr_tag=""                  # exp/asr_<tag>; default: <config name>_<tokenizer>_<frontend_init>
asr_train_opts=""
ngpu=0
inference_model=valid.acc.best.pth
decode_chunks="160 320 640 1280 full"
stream_chunks="640"
beam_size=10
ctc_weight=0.3
left_chunks=-1
feats_type=fbank            # raw: the training sets' codes are made from the audio (no fbank archive of them)
help_message="Usage: $0 --train-set <set> --valid-set <set> --test-sets '<set> ...' --tokenizer <name>
  [--stage N] [--stop-stage N] [--frontend-init codebook|random] [--asr-config conf.yaml]"

cmdline="$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
template=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$template/stages.sh"

all_sets=$(echo $train_set $valid_set $test_sets | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')
fsq_conf_dir=${fsq_conf_dir:-$CHUNKSSL_ROOT/conf/fsq}
asr_config=${asr_config:-$CHUNKSSL_ROOT/conf/asr2/chunk_conformer_tiny_tokens.yaml}
asr_tag=${asr_tag:-$(basename "${asr_config%.yaml}")_${tokenizer}_${frontend_init}}
asr_exp=exp/asr_$asr_tag
fb=$dump_dir/fbank           # test sets: dumped fbank for the bitrate table and scoring, either way
train_feats
tok_dir=$dump_dir/tokens/$tokenizer
token_dir=data/token_list/${token_type}$([ "$token_type" = char ] || echo "$nbpe")
case $frontend_init in codebook|random) ;; *) log "--frontend-init must be codebook or random"; exit 1 ;; esac
# ssl1's tokenizer stages, run in this recipe folder (they read and write dump/ and exp/ here)
ssl_stages=("$template/ssl1/ssl.sh" --nj "$nj" --dump-dir "$dump_dir" --tokenizers "$tokenizer"
            --fsq-conf-dir "$fsq_conf_dir" --ngpu "$ngpu" --fs "$fs")

if run_stage 1 "data preparation: local/data.sh"; then
  stage_data "$local_data_opts" $all_sets
fi

if run_stage 2 "validate data dirs and compute fbank ($feats_type for training) into $dump_dir"; then
  stage_train_and_test_feats "$train_set $valid_set" "$test_sets"
fi

if run_stage 3 "train the $tokenizer tokenizer (ssl1 stage 3): exp/fsq_$tokenizer"; then
  if [ ! -f "$fsq_conf_dir/$tokenizer.yaml" ]; then
    log "$fsq_conf_dir/$tokenizer.yaml not found: --tokenizer names a config in --fsq-conf-dir"
    exit 1
  fi
  "${ssl_stages[@]}" --stage 3 --stop-stage 3 --train-set "$train_set" --valid-set "$valid_set" \
    --fsq-train-opts "$fsq_train_opts" --feats-type "$feats_type"
fi

if run_stage 4 "tokenize $all_sets with $tokenizer (ssl1 stage 4) into $tok_dir"; then
  # ssl1's stage 4 tokenizes its train and valid sets; the test sets go through it one at a time.
  "${ssl_stages[@]}" --stage 4 --stop-stage 4 --train-set "$train_set" --valid-set "$valid_set" --analyze "$analyze" \
    --feats-type "$feats_type"
  for s in $test_sets; do
    if [ "$s" = "$train_set" ] || [ "$s" = "$valid_set" ]; then continue; fi
    "${ssl_stages[@]}" --stage 4 --stop-stage 4 --train-set "$s" --valid-set "$s" --analyze false --feats-type fbank
  done
  # shellcheck disable=SC2046
  python -m chunkssl.codec.bitrate $(for s in $all_sets; do echo "$tok_dir/$s"; done) > "$tok_dir/bitrate.md.tmp"
  mv "$tok_dir/bitrate.md.tmp" "$tok_dir/bitrate.md"
  cat "$tok_dir/bitrate.md" >&2
fi

if run_stage 5 "token list from data/$train_set/text into $token_dir"; then
  python -m chunkssl.bin.make_token_list --text "data/$train_set/text" --out-dir "$token_dir" \
    --token-type "$token_type" --vocab-size "$nbpe"
fi

if run_stage 6 "shape files for $train_set and $valid_set from $tok_dir"; then
  channels=$(python -c 'import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))["levels"]))' \
    "$tok_dir/$train_set/code_info.yaml")
  for s in $train_set $valid_set; do
    [ -f "$tok_dir/$s/utt2num_frames" ] || { log "$tok_dir/$s is missing: run stage 4"; exit 1; }
  done
  stage_shapes "$asr_exp" "$tok_dir" "$channels" $train_set $valid_set
fi

if run_stage 7 "ASR on $tokenizer codes (frontend init: $frontend_init): $asr_exp (log: $asr_exp/train.log)"; then
  bpe=()
  [ "$token_type" = char ] || bpe=(--bpemodel "$token_dir/bpe.model")
  tok_type=$token_type; [ "$token_type" = unigram ] && tok_type=bpe
  # The codes are the "speech" input: the token frontend embeds them (one frame per 40 ms token).
  # shellcheck disable=SC2086
  ${cuda_cmd} --gpu "$ngpu" "$asr_exp/train.log" \
    python -m chunkssl.bin.asr_train --config "$asr_config" --output_dir "$asr_exp" --ngpu "$ngpu" --resume true \
      --frontend token --frontend_conf "code_info=$tok_dir/$train_set/code_info.yaml" \
      --frontend_conf "init=$frontend_init" \
      --token_type "$tok_type" --token_list "$token_dir/tokens.txt" "${bpe[@]}" \
      --train_data_path_and_name_and_type "$tok_dir/$train_set/codes.scp,speech,kaldiio_ark" \
      --train_data_path_and_name_and_type "$train_fb/$train_set/text,text,text" \
      --train_shape_file "$asr_exp/stats/$train_set/speech_shape" --fold_length 400 \
      --valid_data_path_and_name_and_type "$tok_dir/$valid_set/codes.scp,speech,kaldiio_ark" \
      --valid_data_path_and_name_and_type "$train_fb/$valid_set/text,text,text" \
      --valid_shape_file "$asr_exp/stats/$valid_set/speech_shape" $asr_train_opts
  grep -E "[0-9]+epoch results" "$asr_exp/train.log" | tail -n 1 | sed 's/^.*INFO: //' >&2 || true
fi

model_args=(--asr_train_config "$asr_exp/config.yaml" --asr_model_file "$asr_exp/$inference_model"
            --beam-size "$beam_size" --ctc-weight "$ctc_weight" --left-chunks "$left_chunks")

if run_stage 8 "batch decoding of the $tokenizer codes of $test_sets at chunk sizes: $decode_chunks"; then
  stage_chunk_decode chunkssl.codec.asr_inference --codes-scp "$tok_dir/SET/codes.scp"
fi

if run_stage 9 "streaming decoding of $test_sets from audio at chunk sizes: $stream_chunks"; then
  stage_stream_decode chunkssl.codec.asr_inference_streaming
fi

if run_stage 10 "scoring into $asr_exp/RESULTS.md"; then
  stage_score
  if [ -f "$tok_dir/bitrate.md" ]; then cp "$tok_dir/bitrate.md" "$asr_exp/bitrate.md"; fi
fi

log "Finished stages $stage..$stop_stage (tokenizer $tokenizer: $tok_dir; model: $asr_exp)."
