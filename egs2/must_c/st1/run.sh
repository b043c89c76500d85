#!/usr/bin/env bash
# MuST-C English->German (another target: --tgt xx). Base chunk conformer (conf/st/chunk_conformer_base.yaml).
# --init picks what initialises the ST encoder, as in egs2/libritrans/st1 and egs2/mini_synth/st1:
#   asr: an English ASR of the same encoder (conf/asr/chunk_conformer_base.yaml) trained by asr.sh on the
#        English side of the train set (stages 3-5, after st.sh's data and fbank), then ST from its encoder
#   ssl: a Chunk SSL checkpoint given by --ssl-model (e.g. ../../librilight/ssl1/exp/ssl_x/valid.acc.best.pth,
#        conf/ssl/chunk_conformer_base.yaml)
#   none (default): from scratch
# Anything after the options goes to st.sh (e.g. --stage 6).
set -euo pipefail
tgt=de
init=none
ssl_model=""
asr_opts=""                 # more asr.sh options, e.g. --asr-train-opts "--max_epoch 30"
. ./path.sh
. utils/parse_options.sh
st_opts=(--src-lang en --tgt-lang "$tgt" --train-set "train_en_$tgt" --valid-set "dev_en_$tgt"
         --test-sets "tst_COMMON_en_$tgt tst_HE_en_$tgt" --nj 16 --local-data-opts "--tgt $tgt"
         --st-config "$CHUNKSSL_ROOT/conf/st/chunk_conformer_base.yaml" --tgt-nbpe 4000 --src-nbpe 4000
         --chunk-ms "320 640 1280 0")
asr_tag=chunk_conformer_base_en_$tgt
case $init in
  asr) st_opts+=(--st-tag "chunk_conformer_base_asr_$tgt" --init-param "exp/asr_$asr_tag/valid.acc.ave.pth:encoder:encoder") ;;
  ssl) [ -e "$ssl_model" ] || { echo "run.sh: --init ssl needs --ssl-model <checkpoint>, not '$ssl_model'" >&2; exit 1; }
       st_opts+=(--st-tag "chunk_conformer_base_ssl_$tgt" --init-param "$ssl_model:encoder:encoder") ;;
  none) st_opts+=(--st-tag "chunk_conformer_base_$tgt") ;;
  *) echo "run.sh: --init is asr, ssl or none, not '$init'" >&2; exit 1 ;;
esac
if [ "$init" = asr ]; then
  ./st.sh "${st_opts[@]}" --stop-stage 2 "$@"
  # shellcheck disable=SC2086
  ./asr.sh --train-set "train_en_$tgt" --valid-set "dev_en_$tgt" --test-sets "tst_COMMON_en_$tgt" --nj 16 \
    --token-type bpe --nbpe 4000 --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_base.yaml" \
    --asr-tag "$asr_tag" --stage 3 --stop-stage 5 $asr_opts
fi
./st.sh "${st_opts[@]}" "$@"
