#!/usr/bin/env bash
# Small-scale Chunk SSL replication (issue 13), fine-tuning side: one schedule (conf/asr/synth_pool.yaml) for
# every row, from scratch and from each encoder of ../ssl1 (run it first, or use ../run_all.sh).
#   synthetic track: fine-tune on data/train_labelled (~30 min, local/data.sh), test on data/test_unseen (voices
#     never seen in pre-training or fine-tuning): chunk masks at $decode_chunks ms + offline, true streaming
#     at $stream_chunks ms. Rows: scratch and chunk_6m with each of $seeds, the other $rows with the first seed.
#   real-speech track: fine-tune on Libri-Trans train readers (data/lt_train less a held-out lt_dev for model
#     selection), test on its held-out readers (data/lt_test): the $lt_rows rows, first seed.
# Row tags: exp/asr_<row>_s<seed> and exp/asr_lt_<row>_s<seed>. Stages 1-3 of asr.sh (data, fbank, token
# lists) run once; 4-8 (shapes, training, decoding, scoring) once per row; stage 9 collects
# exp/replication/{RESULTS.md,RESULTS.json,wer_vs_chunk.png} (chunkssl.bin.replication_results), and with
# them the acceptance checks of the issue. Wall times: exp/timing.tsv. Finished work is skipped on a rerun.
set -euo pipefail
. ./path.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny models: one thread per process is as fast on a busy CPU

stage=1
stop_stage=9
nj=2
jobs=2
labelled_utts=800      # single-prompt fine-tuning utterances (~30 min)
dev_utts=40
test_utts=100
seed=1                 # data seed
seeds="1 2 3"          # fine-tuning seeds of scratch and the main row (chunk_6m)
rows="scratch chunk_6m chunk_1k chunk_bestrq full_6m"
lt_rows="scratch chunk_6m"
lt_dev_utts=40         # lt_train utterances held out for model selection (never lt_test)
lt_train_utts=0        # >0: fine-tune on this many random lt_train utterances only (--quick)
ft_epochs=20
lt_epochs=20
nbpe=100
decode_chunks="160 320 640 1280 full"
stream_chunks="640"
beam_size=4
ssl_dir=../ssl1
help_message="Usage: $0 [--seeds '1 2 3'] [--rows '<row> ...'] [--ft-epochs N] [--jobs N] [--stage N] [--stop-stage N]"
made_by="cd egs2/synth_pool/asr1 && ./run.sh${*:+$(printf ' %q' "$@")}"  # the command named in RESULTS.md
. utils/parse_options.sh
multi_seed_rows="scratch chunk_6m"

# row -> "<model> <targets> <cada>" for the results
row_meta() {
  case $1 in
    scratch) echo "scratch none false" ;;
    chunk_6m) echo "chunk_ssl fsq_6m true" ;;
    chunk_1k) echo "chunk_ssl fsq_1k true" ;;
    chunk_bestrq) echo "chunk_ssl bestrq true" ;;
    full_6m) echo "full_context fsq_6m false" ;;
    *) echo "run.sh: unknown row '$1' (known: scratch chunk_6m chunk_1k chunk_bestrq full_6m)" >&2; return 1 ;;
  esac
}

. ../timed.sh  # timed <name> <command...>: wall time and status of a step into exp/timing.tsv

for row in $rows $lt_rows; do row_meta "$row" > /dev/null; done  # a typo stops here, before any work
common=(--nj "$nj" --asr-config "$CHUNKSSL_ROOT/conf/asr/synth_pool.yaml" --beam-size "$beam_size"
        --decode-chunks "$decode_chunks" --stream-chunks "$stream_chunks")
synth=(--train-set train_labelled --valid-set dev --test-sets test_unseen --token-type bpe --nbpe "$nbpe")
# char units for the 40 min of real speech; a different token_list dir from the synthetic track's BPE
lt=(--train-set lt_ft --valid-set lt_dev --test-sets lt_test --token-type char)

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  timed stage1_data ./asr.sh "${common[@]}" "${synth[@]}" --stage 1 --stop-stage 1 \
    --local-data-opts "--labelled-utts $labelled_utts --dev-utts $dev_utts --test-utts $test_utts --seed $seed --nj $nj"
  for s in lt_train lt_test; do [ -d "data/$s" ] || { echo "run.sh: local/data.sh did not make data/$s" >&2; exit 1; }; done
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ] && [ -n "$lt_rows" ]; then
  # lt_dev: a fixed random slice of the train readers for ESPnet's model selection; lt_ft: the rest
  rm -rf data/lt_dev data/lt_ft data/lt_rest
  utils/subset_data_dir.sh --random "$lt_dev_utts" --seed "$seed" data/lt_train data/lt_dev
  awk 'NR == FNR {dev[$1] = 1; next} !($1 in dev)' data/lt_dev/utt2spk data/lt_train/utt2spk > data/lt_rest.list
  utils/subset_data_dir.sh --utt-list data/lt_rest.list data/lt_train data/lt_rest
  if [ "$lt_train_utts" -gt 0 ]; then
    utils/subset_data_dir.sh --random "$lt_train_utts" --seed "$seed" data/lt_rest data/lt_ft
    rm -r data/lt_rest
  else
    mv data/lt_rest data/lt_ft
  fi
  rm data/lt_rest.list
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 2 ]; then
  s0=$(( stage > 2 ? stage : 2 )); s1=$(( stop_stage < 3 ? stop_stage : 3 ))
  timed stage2-3_fbank_tokens ./asr.sh "${common[@]}" "${synth[@]}" --stage "$s0" --stop-stage "$s1"
  [ -z "$lt_rows" ] || timed stage2-3_fbank_tokens_lt ./asr.sh "${common[@]}" "${lt[@]}" --stage "$s0" --stop-stage "$s1"
fi

# finetune <track: synth|lt> <row> <seed>: stages 4-8 of one row, its log in exp/logs/asr_<tag>.log. A row that
# ran them all is stamped (exp/asr_<tag>/.done: its options and its encoder's time); a whole-row rerun
# with the same stamp is skipped without starting Python.
finetune() {
  local track=$1 row=$2 sd=$3 tag opts init=() train_opts model="" want stamp
  if [ "$track" = lt ]; then tag=lt_${row}_s$sd; opts=("${lt[@]}"); train_opts="--max_epoch $lt_epochs"
  else tag=${row}_s$sd; opts=("${synth[@]}"); train_opts="--max_epoch $ft_epochs"; fi
  train_opts="$train_opts --seed $sd"
  if [ "$row" != scratch ]; then
    model=$ssl_dir/exp/ssl_$row/valid.acc.best.pth
    [ -e "$model" ] || { echo "asr1/run.sh: $model not found: run ../ssl1/run.sh (row $row) first" >&2; return 1; }
    init=(--pretrained-model "$model")
    # the encoder saw features normalised with the pool's statistics: keep them
    train_opts="$train_opts --normalize_conf stats_file=$ssl_dir/dump/fbank/train/cmvn_stats.npz"
  fi
  opts+=("${common[@]}" --asr-tag "$tag" "${init[@]}" --asr-train-opts "$train_opts")
  stamp=exp/asr_$tag/.done
  want="${opts[*]}${model:+ $(stat -L -c %Y "$model")}"
  if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 8 ] && [ -f "$stamp" ]; then
    [ "$(cat "$stamp")" = "$want" ] && { echo "$(date '+%F %T') (asr1/run.sh) $tag is done ($stamp): skipped" >&2; return 0; }
    echo "asr1/run.sh: warning: options or encoder changed since exp/asr_$tag was trained: its training resumes" \
      "(ESPnet --resume) and missing decodes are made; remove exp/asr_$tag to start it over" >&2
  fi
  rm -f "$stamp"
  mkdir -p exp/logs
  echo "$(date '+%F %T') (asr1/run.sh) $tag (log: exp/logs/asr_$tag.log)" >&2
  if ! timed "finetune_decode_$tag" ./asr.sh "${opts[@]}" --stage "$(( stage > 4 ? stage : 4 ))" \
      --stop-stage "$(( stop_stage < 8 ? stop_stage : 8 ))" > "exp/logs/asr_$tag.log" 2>&1; then
    tail -n 20 "exp/logs/asr_$tag.log" >&2
    return 1
  fi
  if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 8 ]; then echo "$want" > "$stamp"; fi
}

first_seed=${seeds%% *}
runs=()       # "<track> <row> <seed>"
for row in $rows; do
  case " $multi_seed_rows " in *" $row "*) s_list=$seeds ;; *) s_list=$first_seed ;; esac
  for sd in $s_list; do runs+=("synth $row $sd"); done
done
for row in $lt_rows; do runs+=("lt $row $first_seed"); done

if [ "$stop_stage" -ge 4 ] && [ "$stage" -le 8 ]; then
  failed=0
  for r in "${runs[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
    # shellcheck disable=SC2086
    finetune $r &
  done
  for pid in $(jobs -p); do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { echo "asr1/run.sh: a fine-tuning row failed (see exp/logs/)" >&2; exit 1; }
fi

if [ "$stop_stage" -ge 9 ]; then
  mkdir -p exp/replication
  # the manifest: one line per fine-tuned model; seeds of a row are its lines with the same model/targets/set
  {
    printf 'model\ttargets\tcada\tset\tseed\texp\tref\n'
    for r in "${runs[@]}"; do
      read -r track row sd <<< "$r"
      read -r model targets cada <<< "$(row_meta "$row")"
      if [ "$track" = lt ]; then printf '%s\t%s\t%s\tlibritrans_test\t%s\texp/asr_lt_%s_s%s\tlt_test\n' \
          "$model" "$targets" "$cada" "$sd" "$row" "$sd"
      else printf '%s\t%s\t%s\tunseen_voices\t%s\texp/asr_%s_s%s\ttest_unseen\n' \
          "$model" "$targets" "$cada" "$sd" "$row" "$sd"; fi
    done
  } > exp/replication/rows.tsv
  timed stage9_results python -m chunkssl.bin.replication_results --manifest exp/replication/rows.tsv \
    --fbank-dir dump/fbank --out-dir exp/replication --command "$made_by" \
    --timing "$ssl_dir/exp/timing.tsv" exp/timing.tsv
fi
