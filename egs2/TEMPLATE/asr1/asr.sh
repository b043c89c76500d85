#!/usr/bin/env bash
# ASR recipe stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh)      2: validation and fbank features (--feats-type raw: the
#                                               training sets get audio.scp manifests, fbank made in the model)
#   3: token list (sentencepiece)             4: shape files
#   5: training (ESPnet, chunk conformer, dynamic chunks; optionally from a Chunk SSL checkpoint)
#   6: batch decoding over a chunk-size sweep (chunk mask = simulated streaming; "full" = offline)
#   7: true streaming decoding (incremental fbank, cached encoder, CTC prefix search, rescoring)
#   8: scoring (WER, RTF, latency) and exp/asr_<tag>/RESULTS.md with a WER-vs-chunk plot
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
token_type=bpe              # bpe, unigram or char
nbpe=100
asr_config=""               # default: $CHUNKSSL_ROOT/conf/asr/chunk_conformer_tiny.yaml
asr_tag=""                  # exp/asr_<tag>; default: the config name
asr_train_opts=""
pretrained_model=""         # Chunk SSL checkpoint (e.g. ../ssl1/exp/ssl_x/valid.acc.best.pth): loads its encoder
ngpu=0
inference_model=valid.acc.best.pth
decode_chunks="160 320 640 1280 full"
stream_chunks="640"
decode_mode=rescore         # rescore: CTC prefix beam search + attention rescoring; joint: ESPnet's joint search
beam_size=10
ctc_weight=0.3
left_chunks=-1
feats_type=fbank            # fbank: train on dumped fbank; raw: on the audio (kaldi_fbank frontend, same fbank)
help_message="Usage: $0 --train-set <set> --valid-set <set> --test-sets '<set> ...' [--stage N] [--stop-stage N] [--nj N]"

cmdline="$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../stages.sh"

all_sets=$(echo $train_set $valid_set $test_sets | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')
asr_config=${asr_config:-$CHUNKSSL_ROOT/conf/asr/chunk_conformer_tiny.yaml}
asr_tag=${asr_tag:-$(basename "${asr_config%.yaml}")}
asr_exp=exp/asr_$asr_tag
fb=$dump_dir/fbank           # test sets: decoding reads dumped fbank (and streaming the audio) either way
train_feats
input_opts=("${frontend_opts[@]}")
[ "$feats_type" = raw ] || input_opts=(--input_size 80)  # ESPnet builds no frontend when given an input size
token_dir=data/token_list/${token_type}$([ "$token_type" = char ] || echo "$nbpe")

if run_stage 1 "data preparation: local/data.sh"; then
  stage_data "$local_data_opts" $all_sets
fi

if run_stage 2 "validate data dirs and compute fbank ($feats_type for training) into $dump_dir"; then
  stage_train_and_test_feats "$train_set $valid_set" "$test_sets"
fi

if run_stage 3 "token list from data/$train_set/text into $token_dir"; then
  python -m chunkssl.bin.make_token_list --text "data/$train_set/text" --out-dir "$token_dir" \
    --token-type "$token_type" --vocab-size "$nbpe"
fi

if run_stage 4 "shape files for $train_set and $valid_set"; then
  stage_shapes "$asr_exp" "$train_fb" 80 $train_set $valid_set  # fbank frames either way: the same batches
fi

if run_stage 5 "ASR training: $asr_exp (log: $asr_exp/train.log)"; then
  init=()
  if [ -n "$pretrained_model" ]; then
    [ -e "$pretrained_model" ] || { log "--pretrained-model $pretrained_model not found: run the ssl1 recipe first"; exit 1; }
    init=(--init_param "$pretrained_model:encoder:encoder")
  fi
  bpe=()
  [ "$token_type" = char ] || bpe=(--bpemodel "$token_dir/bpe.model")
  tok_type=$token_type; [ "$token_type" = unigram ] && tok_type=bpe
  # shellcheck disable=SC2086
  ${cuda_cmd} --gpu "$ngpu" "$asr_exp/train.log" \
    python -m chunkssl.bin.asr_train --config "$asr_config" --output_dir "$asr_exp" --ngpu "$ngpu" --resume true \
      "${input_opts[@]}" --normalize_conf "stats_file=$train_fb/$train_set/cmvn_stats.npz" \
      --token_type "$tok_type" --token_list "$token_dir/tokens.txt" "${bpe[@]}" "${init[@]}" \
      --train_data_path_and_name_and_type "$(speech_data "$train_fb/$train_set")" \
      --train_data_path_and_name_and_type "$train_fb/$train_set/text,text,text" \
      --train_shape_file "$asr_exp/stats/$train_set/speech_shape" --fold_length 1500 \
      --valid_data_path_and_name_and_type "$(speech_data "$train_fb/$valid_set")" \
      --valid_data_path_and_name_and_type "$train_fb/$valid_set/text,text,text" \
      --valid_shape_file "$asr_exp/stats/$valid_set/speech_shape" $asr_train_opts
fi

model_args=(--asr_train_config "$asr_exp/config.yaml" --asr_model_file "$asr_exp/$inference_model"
            --beam-size "$beam_size" --ctc-weight "$ctc_weight" --left-chunks "$left_chunks")

if run_stage 6 "batch decoding of $test_sets at chunk sizes: $decode_chunks"; then
  stage_chunk_decode chunkssl.bin.asr_inference --feats-scp "$fb/SET/feats.scp" --decode-mode "$decode_mode"
fi

if run_stage 7 "streaming decoding of $test_sets at chunk sizes: $stream_chunks"; then
  stage_stream_decode chunkssl.bin.asr_inference_streaming
fi

if run_stage 8 "scoring into $asr_exp/RESULTS.md"; then
  stage_score
fi

log "Finished stages $stage..$stop_stage. Features: $(pwd)/$dump_dir/fbank/{$(echo $all_sets | tr ' ' ',')}"
