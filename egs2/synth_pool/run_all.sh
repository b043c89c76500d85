#!/usr/bin/env bash
# The small-scale Chunk SSL replication of issue 13, end to end on the CPU: ssl1/run.sh (pool, tokenizers,
# the four pre-trained encoders), then asr1/run.sh (fine-tuning rows, decoding, scoring, and
# asr1/exp/replication/{RESULTS.md,RESULTS.json,wer_vs_chunk.png} with the acceptance checks).
#   ./run_all.sh            full size (6 h pool, 30 min labelled, 3 seeds): about 150 min on 2 cores
#   ./run_all.sh --quick    a few minutes: the same stages and rows on a tiny slice, one seed (make test)
#   ./run_all.sh --demo     make demo's slice: scratch and the main Chunk SSL row only, one seed
# Extra options: --ssl "<ssl1/run.sh options>" --asr "<asr1/run.sh options>" (after the size's own).
# Both recipes skip finished work, so a rerun resumes; a rerun of a finished run trains nothing. One size per
# recipe tree: the stage scripts keep one data/, dump/ and tokenizer per recipe, so switching sizes is refused.
# Wall time of every step: ssl1/exp/timing.tsv, asr1/exp/timing.tsv (both in the RESULTS.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
made_by="cd egs2/synth_pool && ./run_all.sh${*:+$(printf ' %q' "$@")}"
size=full
ssl_extra=""
asr_extra=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) size=quick; shift ;;
    --demo) size=demo; shift ;;
    --full) size=full; shift ;;
    --ssl) ssl_extra=$2; shift 2 ;;
    --asr) asr_extra=$2; shift 2 ;;
    *) echo "Usage: $0 [--quick|--demo|--full] [--ssl '<ssl1/run.sh options>'] [--asr '<asr1/run.sh options>']" >&2
       exit 1 ;;
  esac
done

# Sizes. full: epochs scaled from the step times of --quick to fit 150 min on 2 cores (two rows at a time):
# pool ~7.2 h (6 h synthetic + ~1.2 h real) at ~30x real time per core with CADA -> ~14 min per SSL row and
# epoch; ~30 min labelled at ~30x -> ~1 min per fine-tuning epoch; see the timing tables of RESULTS.md.
case $size in
  quick)
    ssl_opts="--pool-hours 0.05 --dev-utts 8 --fsq-epochs 1 --fsq-iters 10 --ssl-epochs 1 --ssl-iters 6"
    # asr1 --nj 1: fbank of these few dozen utterances per set in one process; a job array's extra Python
    # starts cost more than they save (ssl1 keeps 2 jobs: its pool holds every real recording, ~1.2 h)
    asr_opts="--labelled-utts 40 --dev-utts 8 --test-utts 8 --nj 1 --seeds 1 --ft-epochs 1 --lt-epochs 1"
    asr_opts="$asr_opts --lt-train-utts 24 --lt-dev-utts 6 --decode-chunks '320 full'" ;;
  demo)
    ssl_opts="--pool-hours 0.5 --rows chunk_6m --fsq-epochs 1 --fsq-iters 150 --ssl-epochs 1"
    asr_opts="--rows 'scratch chunk_6m' --lt-rows '' --seeds 1 --ft-epochs 8 --decode-chunks full" ;;
  full)
    ssl_opts="--pool-hours 6 --fsq-epochs 1 --fsq-iters 300 --ssl-epochs 1"
    asr_opts="--seeds '1 2 3' --ft-epochs 12 --lt-epochs 10" ;;
esac

for d in ssl1 asr1; do
  marker=$here/$d/exp/.run_all_size
  if [ -f "$marker" ] && [ "$(cat "$marker")" != "$size" ]; then
    echo "run_all.sh: $here/$d holds a --$(cat "$marker") run; its data/, dump/ and exp/ would be mixed with" \
      "this --$size run. Remove $here/{ssl1,asr1}/{data,dump,exp} (or run in a copy of the recipe) first." >&2
    exit 1
  fi
  mkdir -p "$here/$d/exp"
  echo "$size" > "$marker"
done

t0=$SECONDS
echo "$(date '+%F %T') (run_all.sh) --$size: ssl1/run.sh $ssl_opts $ssl_extra" >&2
(cd "$here/ssl1" && eval "./run.sh $ssl_opts $ssl_extra")
t_ssl=$((SECONDS - t0))
printf 'run_all\tssl1_total_%s\t%d\t0\t%s\n' "$size" "$t_ssl" "$(date '+%F %T')" >> "$here/asr1/exp/timing.tsv"
echo "$(date '+%F %T') (run_all.sh) --$size: asr1/run.sh $asr_opts $asr_extra" >&2
(cd "$here/asr1" && eval "./run.sh $asr_opts --made-by $(printf '%q' "$made_by") $asr_extra")
t_asr=$((SECONDS - t0 - t_ssl))
printf 'run_all\tasr1_total_%s\t%d\t0\t%s\n' "$size" "$t_asr" "$(date '+%F %T')" >> "$here/asr1/exp/timing.tsv"
echo
echo "run_all.sh --$size: ssl1 ${t_ssl} s, asr1 ${t_asr} s, total $((SECONDS - t0)) s wall"
echo "Results: $here/asr1/exp/replication/RESULTS.md (RESULTS.json, wer_vs_chunk.png beside it)"
