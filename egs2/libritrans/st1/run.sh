#!/usr/bin/env bash
# English->French speech translation on the Libri-Trans sample (0.53 h of training audio) on CPU,
# end to end in under 30 min on 2 cores (RESULTS.md lists the time of every phase):
#   st.sh 1-2    data (speaker-disjoint train/dev/test) and fbank
#   st.sh 3-4    sentencepiece token lists, shape files
#   init         what initialises the ST encoder (--init):
#                  asr (default): an English CTC ASR of the same encoder trained on the train audio and its
#                    English transcripts (asr.sh 3-5, conf/asr/chunk_conformer_tiny_ctc.yaml); --asr-pretrained
#                    CKPT starts that ASR from another model's encoder (e.g. the mini_synth/st1 ASR, trained on
#                    synthetic English: ../../mini_synth/st1/exp/asr_mini_synth_st/valid.loss.ave.pth)
#                  ssl: Chunk SSL of the encoder on the train audio (ssl.sh 4-6) with BEST-RQ targets
#                  none: from scratch
#   st.sh 5      ST training, encoder initialised from that model (--init-param)
#   st.sh 6      simultaneous (cached streaming encoder, local agreement) and full-utterance decoding
#                with 640 and 1280 ms chunks and full context
#   st.sh 7      BLEU/chrF/AL/LAAL and RESULTS.md
# --stage/--stop-stage use st.sh's numbers (the ssl phase runs with stage 5); anything after "--" is
# passed to st.sh, e.g. ./run.sh --stage 6 -- --simul-opts "--policy waitk --wait-k 2 --token-rate 8"
# (finished decodes are skipped: remove exp/st_*/decode_* to decode again with other options).
set -euo pipefail
cmdline="$*"
stage=1
stop_stage=7
init=asr
asr_epochs=20
asr_pretrained=""
ssl_epochs=4
st_epochs=15
. ./path.sh
. utils/parse_options.sh

st_opts=(--src-lang en --tgt-lang fr --train-set train --valid-set dev --test-sets test --nj 2
         --local-data-opts "--dev-frac 0.05" --chunk-ms "640 1280 0" --maxlenratio 0.5
         --beam-size 3 --simul-beam-size 1
         --st-train-opts "--max_epoch $st_epochs")  # conf/st/chunk_conformer_tiny.yaml
# same encoder sizes as conf/st/chunk_conformer_tiny.yaml, so the encoder loads into the ST model
ssl_conf=$CHUNKSSL_ROOT/conf/ssl/chunk_conformer_tiny.yaml
ssl_exp=exp/ssl_chunk_conformer_tiny_bestrq
asr_conf=$CHUNKSSL_ROOT/conf/asr/chunk_conformer_tiny_ctc.yaml
asr_tag=chunk_conformer_tiny_ctc${asr_pretrained:+_pre}
case $init in
  asr) st_opts+=(--st-tag "chunk_conformer_tiny_asr${asr_pretrained:+_pre}" --init-param "exp/asr_$asr_tag/valid.loss.ave.pth:encoder:encoder") ;;
  ssl) st_opts+=(--st-tag chunk_conformer_tiny_ssl --init-param "$ssl_exp/valid.acc.best.pth:encoder:encoder") ;;
  none) st_opts+=(--st-tag chunk_conformer_tiny_scratch) ;;
  *) echo "run.sh: --init is asr, ssl or none, not '$init'" >&2; exit 1 ;;
esac
if [ -n "$asr_pretrained" ] && [ ! -e "$asr_pretrained" ]; then
  echo "run.sh: --asr-pretrained $asr_pretrained not found (run that recipe first)" >&2; exit 1
fi

# One line per phase, kept across invocations (a later --stage 7 still reports every phase):
# order <TAB> name <TAB> wall s <TAB> CPU s (user+sys of its processes) <TAB> load averages at its end
times_file=exp/run_times.$init${asr_pretrained:+_pre}.tsv
# cpu_now: cpu = CPU seconds (user + sys) of this shell's finished children; `times` must run in this
# shell, not in a $(...) subshell, which has no children of its own
cpu_now() {
  times > exp/.times.tmp
  cpu=$(tail -n 1 exp/.times.tmp | awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); t += a[1] * 60 + a[2]}; printf "%.0f", t}')
  rm -f exp/.times.tmp
}
# phase ORDER NAME FIRST LAST CMD...: run CMD when stages FIRST..LAST overlap the requested range; time it
phase() {
  local order=$1 name=$2 first=$3 last=$4; shift 4
  [ "$last" -ge "$stage" ] && [ "$first" -le "$stop_stage" ] || return 0
  mkdir -p exp
  local t0=$SECONDS c0; cpu_now; c0=$cpu
  "$@"
  cpu_now
  { awk -F'\t' -v o="$order" '$1 != o' "$times_file" 2>/dev/null || true
    printf '%s\t%s\t%d\t%d\t%s\n' "$order" "$name" $((SECONDS - t0)) $((cpu - c0)) "$(cut -d' ' -f1-3 /proc/loadavg)"
  } | sort -n > "$times_file.tmp"
  mv "$times_file.tmp" "$times_file"
}
from() { echo $(( $1 > stage ? $1 : stage )); }
to() { echo $(( $1 < stop_stage ? $1 : stop_stage )); }
mmss() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

phase 1 "st.sh 1-2: data, fbank" 1 2 ./st.sh "${st_opts[@]}" --stage "$(from 1)" --stop-stage "$(to 2)" "$@"
phase 2 "st.sh 3-4: token lists, shapes" 3 4 ./st.sh "${st_opts[@]}" --stage "$(from 3)" --stop-stage "$(to 4)" "$@"
if [ "$init" = asr ]; then
  phase 3 "asr.sh 3-5: English CTC ASR ($asr_epochs epochs)" 5 5 \
    ./asr.sh --train-set train --valid-set dev --test-sets test --nj 2 --token-type bpe --nbpe 200 \
      --asr-config "$asr_conf" --asr-tag "$asr_tag" --pretrained-model "$asr_pretrained" \
      --asr-train-opts "--max_epoch $asr_epochs" --stage 3 --stop-stage 5
elif [ "$init" = ssl ]; then
  phase 3 "ssl.sh 4-6: BEST-RQ targets, Chunk SSL ($ssl_epochs epochs)" 5 5 \
    ./ssl.sh --stage 4 --stop-stage 6 --train-set train --valid-set dev --nj 2 --tokenizers bestrq \
      --ssl-tokenizer bestrq --analyze false --ssl-config "$ssl_conf" \
      --ssl-train-opts "--max_epoch $ssl_epochs --batch_size 8 --scheduler_conf warmup_steps=100"
fi
phase 4 "st.sh 5: ST training ($st_epochs epochs)" 5 5 ./st.sh "${st_opts[@]}" --stage 5 --stop-stage 5 "$@"
phase 5 "st.sh 6: decoding" 6 6 ./st.sh "${st_opts[@]}" --stage 6 --stop-stage 6 "$@"
if [ "$stop_stage" -ge 7 ]; then
  case $init in
    asr) init_text="initialised from an English CTC ASR encoder (conf/asr/chunk_conformer_tiny_ctc.yaml, $asr_epochs epochs on the train audio and English transcripts"
         init_text+="${asr_pretrained:+, itself started from $asr_pretrained})" ;;
    ssl) init_text="initialised from the Chunk SSL encoder (conf/ssl/chunk_conformer_tiny.yaml, BEST-RQ targets, $ssl_epochs epochs on the train audio, batch 8)" ;;
    none) init_text="from scratch" ;;
  esac
  note="Setup: train 407 utterances (0.53 h, at most 20 s), dev 30, test 51 of held-out speakers (local/data.sh). "
  note+="ST model conf/st/chunk_conformer_tiny.yaml (4 x 96 chunk conformer, dynamic chunks 160-1280 ms, "
  note+="2-layer decoder, auxiliary ASR CTC weight 0.3), $st_epochs epochs, encoder $init_text; "
  note+="sentencepiece unigram 300 (fr) / 200 (en). Decoding: maxlenratio 0.5, beam 3 (full), beam 1 at each "
  note+="simultaneous step (cached streaming encoder, local agreement)."$'\n\n'
  note+="Time of each phase, from the last run.sh that ran it ($(nproc --all) CPU cores; OMP_NUM_THREADS="
  note+="${OMP_NUM_THREADS:-unset}). CPU = user + sys of the phase's processes, about the wall time on an idle "
  note+="machine with one thread; load = 1/5/15-min load averages at the end of the phase."$'\n\n'
  note+="| phase | wall | CPU | load |"$'\n'"|---|---|---|---|"
  wall=0 cpu=0
  while IFS=$'\t' read -r _ name w c load; do
    note+=$'\n'"| $name | $(mmss "$w") | $(mmss "$c") | $load |"
    wall=$((wall + w)) cpu=$((cpu + c))
  done < "$times_file"
  note+=$'\n'"| total (then stage 7, scoring: seconds) | $(mmss $wall) | $(mmss $cpu) | |"
  ./st.sh "${st_opts[@]}" --stage 7 --stop-stage 7 --results-note "$note" --results-command "./run.sh $cmdline" "$@"
fi
