#!/usr/bin/env bash
# Codec-ASR demo on the synthetic corpus (CPU, a few minutes): two tiny tokenizers at about the same
# bitrate, FSQ [8,5,5,5] (9.97 bits per 40 ms token, 249 bit/s; conf/fsq/tiny.yaml) and RVQ 2 x 32
# (10 bits, 250 bit/s; conf/fsq/rvq_tiny.yaml), an ASR model on each one's codes (embeddings initialised
# from the codebook), decoded offline, with a 640 ms chunk mask and truly streaming from audio.
# RESULTS.md compares them with the bitrate and storage of the codes beside those of fbank.
set -euo pipefail
. ./path.sh
# Tiny models: one torch thread per process is faster, much faster on a shared CPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
opts=(--train-set train --valid-set dev --test-sets test --nj 2
      --local-data-opts "--num-utts 300 --seed 1" --token-type bpe --nbpe 60
      --asr-config "$CHUNKSSL_ROOT/conf/asr2/chunk_conformer_tiny_tokens.yaml"
      --fsq-train-opts "--max_epoch 4" --decode-chunks "640 full" --stream-chunks 640)
tokenizers="tiny rvq_tiny"

./asr2.sh "${opts[@]}" --tokenizer tiny --stop-stage 2 "$@"
rows=()
for tok in $tokenizers; do
  ./asr2.sh "${opts[@]}" --stage 3 --tokenizer "$tok" --asr-tag "$tok" "$@"
  rows+=(--exp "$tok=exp/asr_$tok@dump/tokens/$tok/test")
done
python -m chunkssl.codec.results "${rows[@]}" --set test --chunk 640 --out RESULTS.md \
  --command "cd egs2/mini_synth/asr2 && ./run.sh $*"
echo "Results: $(pwd)/RESULTS.md"
