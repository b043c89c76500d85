#!/usr/bin/env bash
# Codec-ASR on FSDD: WER of a model on fbank against models on FSQ and RVQ codes at about the same
# bitrate (FSQ 64k [8,8,8,5,5,5]: 15.97 bits per 40 ms token, 399 bit/s; RVQ 2 x 256: 16 bits, 400 bit/s;
# tokenizers conf/asr2/tokenizers/*_small.yaml, trained here on the FSDD train set), with the token
# embeddings initialised from the tokenizer's codebook or at random, decoded offline, with a 640 ms
# chunk mask and truly streaming from audio at 640 ms. RESULTS.md adds the bitrate and storage of
# each input. All models share the encoder, decoder, schedule, word units (bpe 55), checkpoint
# averaging and beam of the fbank model of ../asr1 (conf/asr/chunk_conformer_fsdd.yaml); that model is
# read from ../asr1 when it has been decoded there, else trained here with asr1's stages 3-8.
# Extra options are passed to every stage script (asr2.sh, and asr1's asr.sh): keep to common ones.
set -euo pipefail
. ./path.sh
# Tiny models: one torch thread per process is faster, much faster on a shared CPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
common=(--train-set train --valid-set dev --test-sets test --nj 2 --token-type bpe --nbpe 55
        --inference-model valid.acc.ave.pth --beam-size 4 --decode-chunks "640 full" --stream-chunks 640)
tokenizers="fsq_64k_small rvq_2x256_small"      # conf/asr2/tokenizers/<name>.yaml
inits="codebook random"
fbank_exp=../asr1/exp/asr_chunk_conformer_fsdd

./asr2.sh "${common[@]}" --stop-stage 2 "$@"
rows=()
for tok in $tokenizers; do
  for init in $inits; do
    ./asr2.sh "${common[@]}" --stage 3 --tokenizer "$tok" --fsq-conf-dir "$CHUNKSSL_ROOT/conf/asr2/tokenizers" \
      --frontend-init "$init" --asr-tag "${tok}_$init" \
      --asr-config "$CHUNKSSL_ROOT/conf/asr2/chunk_conformer_fsdd_tokens.yaml" "$@"
    rows+=(--exp "${tok%_small} codes, $init init=exp/asr_${tok}_$init@dump/tokens/$tok/test")
  done
done
# the fbank model last: ../asr1 may have finished it meanwhile
if [ ! -s "$fbank_exp/decode_test/stream_640/score/result.json" ]; then
  echo "run.sh: no decoded fbank model in $fbank_exp: training one here (exp/asr_fbank)" >&2
  fbank_exp=exp/asr_fbank
  "$CHUNKSSL_ROOT/egs2/TEMPLATE/asr1/asr.sh" "${common[@]}" --stage 3 --asr-tag fbank \
    --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_fsdd.yaml" "$@"
fi
rows=(--exp "fbank=$fbank_exp@dump/fbank/test" "${rows[@]}")
python -m chunkssl.codec.results "${rows[@]}" --set test --chunk 640 --out RESULTS.md \
  --command "cd egs2/fsdd/asr2 && ./run.sh $*"
echo "Results: $(pwd)/RESULTS.md"
