#!/usr/bin/env bash
# Small-scale Chunk SSL replication (issue 13), pre-training side: four encoders on the unlabelled pool of
# local/data.sh (synthetic espeak-ng speech + the real recordings of ../shared/data), all of one size
# (conf/ssl/synth_pool*.yaml), CPU only. ../asr1/run.sh fine-tunes them; ../run_all.sh runs both.
#   row           what                                                    targets  config
#   chunk_6m      (a) Chunk SSL: CADA, dynamic chunks, group loss          FSQ ~6M  conf/ssl/synth_pool.yaml
#   chunk_1k      (b) Chunk SSL                                            FSQ 1k   conf/ssl/synth_pool.yaml
#   chunk_bestrq  (c) Chunk SSL                                            BEST-RQ  conf/ssl/synth_pool.yaml
#   full_6m       (d) full-context masked prediction, no CADA, no chunks   FSQ ~6M  conf/ssl/synth_pool_fullctx.yaml
# Stages 1-4 of ssl.sh (data, fbank, tokenizers, tokens) run once; stages 5-7 (train, pack) once per row
# into exp/ssl_<row>. Finished work is skipped on a rerun (ssl.sh's checks; ESPnet resumes a finished
# training without running an epoch). The wall time of each step goes to exp/timing.tsv.
# Options: --pool-hours --dev-utts --seed (data), --fsq-epochs --fsq-iters --ssl-epochs --ssl-iters, --rows "<row> ...", --jobs N
# (rows trained side by side; one torch thread each), --stage/--stop-stage (1-7 as in ssl.sh).
set -euo pipefail
. ./path.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny models: one thread per process is as fast on a busy CPU

stage=1
stop_stage=7
nj=2
jobs=2
pool_hours=6
dev_utts=40
seed=1
fsq_epochs=2
fsq_iters=0            # >0: optimiser steps per tokenizer epoch (ESPnet --num_iters_per_epoch)
ssl_epochs=4
ssl_iters=0            # >0: optimiser steps per pre-training epoch (the pool's real recordings make even a
                       # tiny --pool-hours about an hour of audio: --quick caps the steps instead)
rows="chunk_6m chunk_1k chunk_bestrq full_6m"
help_message="Usage: $0 [--pool-hours H] [--ssl-epochs N] [--rows '<row> ...'] [--jobs N] [--stage N] [--stop-stage N]"
. utils/parse_options.sh

# row -> "<tokenizer> <config name>"
row_spec() {
  case $1 in
    chunk_6m) echo "6m synth_pool" ;;
    chunk_1k) echo "1k synth_pool" ;;
    chunk_bestrq) echo "bestrq synth_pool" ;;
    full_6m) echo "6m synth_pool_fullctx" ;;
    *) echo "run.sh: unknown row '$1' (known: chunk_6m chunk_1k chunk_bestrq full_6m)" >&2; return 1 ;;
  esac
}

. ../timed.sh  # timed <name> <command...>: wall time and status of a step into exp/timing.tsv

for row in $rows; do row_spec "$row" > /dev/null; done  # a typo stops here, before any work
tokenizers=""
for row in $rows; do
  read -r tok _ <<< "$(row_spec "$row")"
  case " $tokenizers " in *" $tok "*) ;; *) tokenizers="$tokenizers $tok" ;; esac
done
tokenizers=${tokenizers# }
fsq_opts="--max_epoch $fsq_epochs --num_workers 0 --log_interval 50"
if [ "$fsq_iters" -gt 0 ]; then fsq_opts="$fsq_opts --num_iters_per_epoch $fsq_iters"; fi
common=(--train-set train --valid-set dev --nj "$nj" --tokenizers "$tokenizers" --fsq-train-opts "$fsq_opts"
        --local-data-opts "--pool-hours $pool_hours --dev-utts $dev_utts --seed $seed --nj $nj")
ssl_train_opts="--max_epoch $ssl_epochs"
if [ "$ssl_iters" -gt 0 ]; then ssl_train_opts="$ssl_train_opts --num_iters_per_epoch $ssl_iters"; fi
names=([1]=data [2]=fbank [3]=tokenizers [4]=tokens)
for s in 1 2 3 4; do
  if [ "$s" -ge "$stage" ] && [ "$s" -le "$stop_stage" ]; then
    timed "stage${s}_${names[$s]}" ./ssl.sh "${common[@]}" --stage "$s" --stop-stage "$s"
  fi
done

# Stages 5-7 of one row, its log in exp/logs/ssl_<row>.log. A row that ran them all is stamped
# (exp/ssl_<row>/.done: its options and its targets' time); a whole-row rerun with the same stamp is skipped.
train_row() {
  local row=$1 tok conf opts want stamp codes
  read -r tok conf <<< "$(row_spec "$row")"
  opts=("${common[@]}" --ssl-tokenizer "$tok" --ssl-config "$CHUNKSSL_ROOT/conf/ssl/$conf.yaml" --ssl-tag "$row"
        --ssl-train-opts "$ssl_train_opts")
  codes=dump/tokens/$tok/train/codes.scp
  stamp=exp/ssl_$row/.done
  want="${opts[*]} $(stat -L -c %Y "$codes" 2>/dev/null || echo none)"
  if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 7 ] && [ -f "$stamp" ]; then
    [ "$(cat "$stamp")" = "$want" ] && { echo "$(date '+%F %T') (ssl1/run.sh) $row is done ($stamp): skipped" >&2; return 0; }
    echo "ssl1/run.sh: warning: options or targets changed since exp/ssl_$row was trained: its training resumes" \
      "(ESPnet --resume); remove exp/ssl_$row to start it over" >&2
  fi
  rm -f "$stamp"
  mkdir -p exp/logs
  echo "$(date '+%F %T') (ssl1/run.sh) row $row: targets $tok, conf/ssl/$conf.yaml (log: exp/logs/ssl_$row.log)" >&2
  if ! timed "train_$row" ./ssl.sh "${opts[@]}" --stage "$(( stage > 5 ? stage : 5 ))" --stop-stage "$stop_stage" \
      > "exp/logs/ssl_$row.log" 2>&1; then
    tail -n 20 "exp/logs/ssl_$row.log" >&2
    return 1
  fi
  grep -E "epoch results" "exp/logs/ssl_$row.log" | tail -n 1 | sed "s|^.*INFO: |  $row: |" | cut -c1-200 >&2 || true
  if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 7 ]; then echo "$want" > "$stamp"; fi
}

if [ "$stop_stage" -ge 5 ]; then
  failed=0
  for row in $rows; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
    train_row "$row" &
  done
  for pid in $(jobs -p); do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { echo "ssl1/run.sh: a pre-training row failed (see exp/logs/)" >&2; exit 1; }
fi
echo "$(date '+%F %T') (ssl1/run.sh) done: exp/ssl_{${rows// /,}}; times in exp/timing.tsv" >&2
