#!/usr/bin/env bash
# English speech -> French text on the parallel synthetic corpus (espeak-ng voices, French by rules),
# end to end on a CPU; RESULTS.md/RESULTS.json list the time of every phase:
#   st.sh 1-2   data (local/data.sh; test voices never heard in training) and fbank
#   asr.sh 3-5  --init asr (default): English CTC ASR on the same train audio (conf/asr/chunk_conformer_tiny_ctc.yaml),
#               whose encoder initialises the ST encoder
#   ssl.sh 4-6  --init ssl: Chunk SSL of the same encoder on the train audio instead (BEST-RQ targets,
#               conf/ssl/chunk_conformer_tiny.yaml; no transcripts); --init none: from scratch
#   st.sh 3-5   token lists, ST training (conf/st/mini_synth.yaml: dynamic chunks, auxiliary ASR CTC),
#               encoder initialised by --init-param from the model above
#   st.sh 6     simultaneous decoding with local agreement at $chunks ms and full context, offline beam
#               search (full context), then wait-k at $chunks ms (decode_*/simul_waitk)
#   st.sh 7     BLEU/chrF (sacrebleu), AL/LAAL with and without compute time: exp/st_mini_synth_<init>/
#               RESULTS.md and RESULTS.json (the tracked RESULTS.md beside this script is copied by hand)
# ./run.sh --quick: a few minutes' version (60 utterances, 1 epoch each, 640 ms, one fbank job per set) for
# `make test`; it checks that every stage runs, not translation quality.
set -euo pipefail
args=()
for a in "$@"; do [ "$a" = --quick ] && a=--quick=true; args+=("$a"); done
set -- ${args[@]+"${args[@]}"}
cmdline="$*"
stage=1
stop_stage=7
quick=false
num_utts=2000               # utterances of the corpus, 80/10/10 train/dev/test
asr_epochs=20
st_epochs=25
ssl_epochs=4
nj=2                        # parallel jobs of the fbank stage
init=asr                    # ST encoder from: asr (the ASR encoder), ssl (Chunk SSL), none (scratch)
chunks="320 640 1280"       # simultaneous chunk sizes (ms)
waitk="--wait-k 2 --token-rate 5"  # wait-k: chunks first, then French tokens per s of speech (train: 4.0)
. ./path.sh
. utils/parse_options.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny models: one thread per process is as fast
if $quick; then
  # nj=1: fbank of a few dozen utterances in the stage's own process, not a job array of fresh Pythons
  num_utts=60 asr_epochs=1 st_epochs=1 chunks=640 nj=1
fi
asr_exp=exp/asr_mini_synth_st
st_opts=(--src-lang en --tgt-lang fr --train-set train --valid-set dev --test-sets test --nj "$nj"
         --local-data-opts "--num-utts $num_utts --seed 1 --synth-dir downloads/mini_synth_st_$num_utts" --st-config "$CHUNKSSL_ROOT/conf/st/mini_synth.yaml"
         --tgt-nbpe 300 --src-nbpe 60 --beam-size 5 --simul-beam-size 3 --maxlenratio 0.5
         --st-tag "mini_synth_$init" --st-train-opts "--max_epoch $st_epochs"
         --results-opts "--policies la=simul waitk=simul_waitk --init $init")
ssl_exp=exp/ssl_chunk_conformer_tiny_bestrq  # ssl.sh's exp/ssl_<config>_<tokenizer>
case $init in
  asr) st_opts+=(--init-param "$asr_exp/valid.loss.ave.pth:encoder:encoder") ;;
  ssl) st_opts+=(--init-param "$ssl_exp/valid.acc.best.pth:encoder:encoder") ;;
  none) ;;
  *) echo "run.sh: --init is asr, ssl or none, not '$init'" >&2; exit 1 ;;
esac

# one line per phase (order, name, wall s, CPU s of its processes), kept across invocations
times_file=exp/run_times.$init.tsv
cpu_children() {  # CPU seconds (user + sys) of this shell's finished children; must run in this shell
  times > exp/.times.tmp
  cpu=$(tail -n 1 exp/.times.tmp | awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); t += a[1] * 60 + a[2]}; printf "%.0f", t}')
  rm -f exp/.times.tmp
}
phase() {  # phase ORDER NAME FIRST LAST CMD...: run CMD when stages FIRST..LAST meet --stage..--stop-stage
  local order=$1 name=$2 first=$3 last=$4 t0=$SECONDS c0
  shift 4
  [ "$last" -ge "$stage" ] && [ "$first" -le "$stop_stage" ] || return 0
  mkdir -p exp
  cpu_children; c0=$cpu
  "$@"
  cpu_children
  { awk -F'\t' -v o="$order" '$1 != o' "$times_file" 2>/dev/null || true
    printf '%s\t%s\t%d\t%d\n' "$order" "$name" $((SECONDS - t0)) $((cpu - c0))
  } | sort -n > "$times_file.tmp"
  mv "$times_file.tmp" "$times_file"
}
from() { echo $(( $1 > stage ? $1 : stage )); }
to() { echo $(( $1 < stop_stage ? $1 : stop_stage )); }

phase 1 "st.sh 1-2: corpus ($num_utts utterances), fbank" 1 2 \
  ./st.sh "${st_opts[@]}" --stage "$(from 1)" --stop-stage "$(to 2)"
if [ "$init" = asr ]; then
  phase 2 "asr.sh 3-5: English CTC ASR ($asr_epochs epochs)" 5 5 \
    ./asr.sh --train-set train --valid-set dev --test-sets test --nj "$nj" --token-type bpe --nbpe 60 \
      --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_tiny_ctc.yaml" --asr-tag mini_synth_st \
      --asr-train-opts "--max_epoch $asr_epochs" --stage 3 --stop-stage 5
elif [ "$init" = ssl ]; then
  # the same encoder sizes as conf/st/mini_synth.yaml, so the encoder loads into the ST model
  phase 2 "ssl.sh 4-6: BEST-RQ targets, Chunk SSL ($ssl_epochs epochs)" 5 5 \
    ./ssl.sh --stage 4 --stop-stage 6 --train-set train --valid-set dev --nj "$nj" --tokenizers bestrq \
      --ssl-tokenizer bestrq --analyze false --ssl-config "$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_tiny.yaml" \
      --ssl-train-opts "--max_epoch $ssl_epochs --batch_size 8 --scheduler_conf warmup_steps=200"
fi
phase 3 "st.sh 3-5: token lists, ST training ($st_epochs epochs)" 3 5 \
  ./st.sh "${st_opts[@]}" --stage "$(from 3)" --stop-stage "$(to 5)"
phase 4 "st.sh 6: local agreement, offline beam search" 6 6 \
  ./st.sh "${st_opts[@]}" --chunk-ms "$chunks 0" --full-chunk-ms 0 --stage 6 --stop-stage 6
phase 5 "st.sh 6: wait-k" 6 6 \
  ./st.sh "${st_opts[@]}" --chunk-ms "$chunks" --full-chunk-ms 0 --simul-tag _waitk --simul-opts "--policy waitk $waitk" \
    --stage 6 --stop-stage 6
if [ "$stop_stage" -ge 7 ]; then
  note="Setup: corpus of $num_utts utterances (local/data.sh, seed 1; 80/10/10 train/dev/test, test voices "
  note+="unseen in training). ST model conf/st/mini_synth.yaml (4 x 96 chunk conformer, dynamic chunks "
  note+="160-1280 ms, 2-layer decoder, auxiliary CTC 0.3), $st_epochs epochs, encoder "
  case $init in
    asr) note+="initialised from the English CTC ASR encoder (conf/asr/chunk_conformer_tiny_ctc.yaml, $asr_epochs epochs on the same train audio)" ;;
    ssl) note+="initialised from the Chunk SSL encoder (conf/ssl/chunk_conformer_tiny.yaml, BEST-RQ targets, $ssl_epochs epochs on the train audio without transcripts)" ;;
    none) note+="from scratch" ;;
  esac
  note+="; sentencepiece unigram 300 (fr) / 60 (en; the ASR: bpe 60). Decoding: beam 5 (full), beam 3 at each simultaneous "
  note+="step; wait-k: $waitk."$'\n\n'
  note+="Time of each phase ($(nproc --all) CPU cores, OMP_NUM_THREADS=$OMP_NUM_THREADS; CPU = user + sys "
  note+="of its processes)."$'\n\n'"| phase | wall s | CPU s |"$'\n'"|---|---:|---:|"
  wall=0 cpu=0
  while IFS=$'\t' read -r _ name w c; do
    note+=$'\n'"| $name | $w | $c |"
    wall=$((wall + w)) cpu=$((cpu + c))
  done < "$times_file"
  note+=$'\n'"| total (then stage 7, scoring) | $wall | $cpu |"
  ./st.sh "${st_opts[@]}" --chunk-ms "$chunks 0" --stage 7 --stop-stage 7 --results-note "$note" \
    --results-command "cd egs2/mini_synth/st1 && ./run.sh $cmdline"
fi
