#!/usr/bin/env bash
# Speech translation recipe stages. A corpus's run.sh sets the options and calls this script.
#   1: data preparation (local/data.sh: text = source transcript, text.<tgt_lang> = translation)
#   2: validation and fbank features (--feats-type raw: the training sets get audio.scp manifests, fbank
#      made in the model by the kaldi_fbank frontend; the test sets are dumped for decoding either way)
#   3: sentencepiece models and token lists for the target (text.<tgt_lang>) and source (text.<src_lang>)
#   4: shape files for training (fbank frames per utterance)
#   5: ST training (chunk conformer, dynamic chunks, auxiliary ASR CTC; --init-param for Chunk SSL)
#   6: decoding of the test sets per chunk size: simultaneous decoding (st_simultaneous: cached streaming
#      encoder, local agreement or --simul-opts "--policy waitk ..."; with its latency log), then
#      full-utterance beam search (st_inference); done ones are skipped
#   7: scoring (sacrebleu BLEU/chrF, AL/LAAL and computation-aware variants): $st_exp/RESULTS.md and
#      RESULTS.json (a run never writes the tracked RESULTS.md of the recipe: copy it there by hand)
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
tgt_nbpe=300                # sentencepiece vocabulary sizes (small corpora get fewer pieces)
src_nbpe=200
bpe_type=unigram
st_config=""                # default: $CHUNKSSL_ROOT/conf/st/chunk_conformer_tiny.yaml
st_tag=""                   # exp/st_<tag>; default: <config name>
st_train_opts=""            # extra ESPnet trainer options, e.g. "--max_epoch 10"
init_param=""               # e.g. exp/ssl_x/valid.acc.best.pth:encoder:encoder (Chunk SSL encoder)
ngpu=0
chunk_ms="640 1280 0"       # decoding chunk sizes in ms (multiples of 40); 0 = offline (full context)
full_chunk_ms=""            # chunk sizes of the full-utterance beam search; default: $chunk_ms
left_chunks=-1
beam_size=5                 # full-utterance beam search
simul_beam_size=3           # beam of each simultaneous step
simul_opts=""               # extra st_simultaneous options, e.g. "--policy waitk --wait-k 2 --token-rate 4"
simul_tag=""                # simultaneous decodes go to decode_<set>_chunk<c>/simul<tag> (e.g. _waitk for a 2nd policy)
maxlenratio=0.4             # at most 0.4 target tokens per encoder frame (40 ms)
inference_model=valid.acc.ave.pth
results_note=""             # text put under the RESULTS.md table (run.sh passes its stage times)
results_command=""          # command shown in RESULTS.md; default: this script's command line
feats_type=fbank            # fbank: train on dumped fbank; raw: on the audio (kaldi_fbank frontend, same fbank)
results_opts=""             # more chunkssl.st.results options, e.g. "--policies la=simul waitk=simul_waitk --init asr"
help_message="Usage: $0 --src-lang en --tgt-lang fr --train-set <set> --valid-set <set> --test-sets '<set> ...' [--stage N]"

cmdline_args="$*"
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

train_feats
input_opts=("${frontend_opts[@]}")
[ "$feats_type" = raw ] || input_opts=(--input_size 80)  # ESPnet builds no frontend when given an input size
if run_stage 2 "validate data dirs and compute fbank ($feats_type for training) into $dump_dir"; then
  stage_train_and_test_feats "$train_set $valid_set" "$test_sets"
fi

st_config=${st_config:-$CHUNKSSL_ROOT/conf/st/chunk_conformer_tiny.yaml}
st_tag=${st_tag:-$(basename "${st_config%.yaml}")}
st_exp=exp/st_$st_tag
fb=$dump_dir/fbank
tgt_bpe=$dump_dir/token/${tgt_lang}_${bpe_type}${tgt_nbpe}
src_bpe=$dump_dir/token/${src_lang}_${bpe_type}${src_nbpe}

if run_stage 3 "token lists: $tgt_bpe and $src_bpe"; then
  for spec in "$tgt_bpe $tgt_lang $tgt_nbpe" "$src_bpe $src_lang $src_nbpe"; do
    read -r dir lang n <<< "$spec"
    text=data/$train_set/text.$lang
    [ -f "$text" ] || { log "$text is missing: local/data.sh must write text.$lang"; exit 1; }
    if [ -f "$dir/tokens.txt" ] && [ "$dir/tokens.txt" -nt "$text" ]; then
      log "$dir is up to date"
      continue
    fi
    python -m chunkssl.st.bpe --text "$text" --model-prefix "$dir/bpe" --vocab-size "$n" --model-type "$bpe_type"
    python -m espnet2.bin.tokenize_text --token_type bpe --bpemodel "$dir/bpe.model" --field 2- \
      --cleaner none --input "$text" --output "$dir/tokens.txt.tmp" --write_vocabulary true \
      --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
    mv "$dir/tokens.txt.tmp" "$dir/tokens.txt"
    log "$dir/tokens.txt: $(wc -l < "$dir/tokens.txt") tokens"
  done
fi

if run_stage 4 "shape files for $train_set and $valid_set"; then
  stage_shapes "$st_exp" "$train_fb" 80 $train_set $valid_set  # fbank frames either way: the same batches
fi

if run_stage 5 "ST training: $st_exp (log: $st_exp/train.log)"; then
  data_opts=()
  for split in train valid; do
    s=$train_set; [ $split = valid ] && s=$valid_set
    data_opts+=(--${split}_data_path_and_name_and_type "$(speech_data "$train_fb/$s")"
                --${split}_data_path_and_name_and_type "data/$s/text.$tgt_lang,text,text"
                --${split}_data_path_and_name_and_type "data/$s/text.$src_lang,src_text,text"
                --${split}_shape_file "$st_exp/stats/$s/speech_shape")
  done
  init_opts=()
  [ -n "$init_param" ] && init_opts=(--init_param "$init_param")
  # shellcheck disable=SC2086
  ${cuda_cmd} --gpu "$ngpu" "$st_exp/train.log" \
    python -m chunkssl.bin.st_train --config "$st_config" --output_dir "$st_exp" --ngpu "$ngpu" --resume true \
      "${input_opts[@]}" --normalize_conf "stats_file=$train_fb/$train_set/cmvn_stats.npz" --fold_length 1500 \
      --token_type bpe --bpemodel "$tgt_bpe/bpe.model" --token_list "$tgt_bpe/tokens.txt" \
      --src_token_type bpe --src_bpemodel "$src_bpe/bpe.model" --src_token_list "$src_bpe/tokens.txt" \
      "${data_opts[@]}" "${init_opts[@]}" $st_train_opts
  grep -E "[0-9]+epoch results" "$st_exp/train.log" | tail -n 1 | sed 's/^.*INFO: //' >&2 || true
fi

if run_stage 6 "decode $test_sets with chunks of $chunk_ms ms (0 = offline)"; then
  model=$st_exp/$inference_model
  [ -e "$model" ] || { log "$model is missing: run stage 5 first"; exit 1; }
  common=(--config "$st_exp/config.yaml" --model "$model" --left-chunks "$left_chunks" --maxlenratio "$maxlenratio")
  # simultaneous decodes first (the latency results), then the full-utterance ones
  for mode in simul full; do
    chunks=$chunk_ms
    [ $mode = full ] && chunks=${full_chunk_ms:-$chunk_ms}
    for s in $test_sets; do
      for c in $chunks; do
        dir=$st_exp/decode_${s}_chunk$c/$mode
        if [ $mode = simul ]; then
          dir+=$simul_tag
          # shellcheck disable=SC2206
          cmd=(python -m chunkssl.bin.st_simultaneous "${common[@]}" --feats-scp "$fb/$s/feats.scp" --out-dir "$dir"
               --chunk-ms "$c" --beam-size "$simul_beam_size" $simul_opts)
        else
          cmd=(python -m chunkssl.bin.st_inference "${common[@]}" --feats-scp "$fb/$s/feats.scp" --out-dir "$dir"
               --chunk-ms "$c" --beam-size "$beam_size")
        fi
        decoded "$dir" "$model" "${cmd[@]}" && continue
        "${cmd[@]}"
        stamp_decoded "$dir" "${cmd[@]}"
      done
    done
  done
fi

if run_stage 7 "score $test_sets and write $st_exp/RESULTS.md"; then
  dirs=()
  for s in $test_sets; do
    for c in $chunk_ms; do
      dir=$st_exp/decode_${s}_chunk$c
      [ -f "$dir/simul$simul_tag/text" ] || { log "$dir/simul$simul_tag/text is missing: run stage 6 first"; exit 1; }
      if [ -f "$dir/full/text" ]; then
        python -m chunkssl.bin.score_st --ref "data/$s/text.$tgt_lang" --hyp "$dir/full/text" \
          --out-dir "$dir/full/score" --name "$s"
      else
        log "$dir/full/text is missing: its full-utterance columns will read n/a"
      fi
      for sim in "$dir"/simul*/; do  # every simultaneous policy decoded so far (see --simul-tag)
        [ -f "$sim/text" ] || continue
        python -m chunkssl.bin.score_st --ref "data/$s/text.$tgt_lang" --hyp "$sim/text" \
          --latency-log "$sim/latency.jsonl" --out-dir "$sim/score" --name "$s"
      done
      dirs+=("$s:$c:$dir")
    done
  done
  # shellcheck disable=SC2086
  python -m chunkssl.st.results --exp "$st_exp" --decodes "${dirs[@]}" --out "$st_exp/RESULTS.md" \
    --json "$st_exp/RESULTS.json" --command "${results_command:-$(basename "$0") ${cmdline_args:-}}" --note "$results_note" $results_opts
  log "results: $(pwd)/$st_exp/RESULTS.md"
fi

log "Finished stages $stage..$stop_stage."
