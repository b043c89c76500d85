#!/usr/bin/env bash
# Synthetic AN4-like corpus: fine-tune on the labelled train utterances (8 min of speech), once from the Chunk SSL
# encoder of ../ssl1 and once from scratch, decode offline and streaming over a chunk sweep, and
# write RESULTS.md (+ wer_vs_chunk.png) comparing the two. Run ../ssl1/run.sh first for the encoder.
set -euo pipefail
. ./path.sh
# Tiny models: one torch thread per process is as fast, and much faster on a shared CPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ssl_model=../ssl1/exp/ssl_chunk_conformer_tiny_6m/valid.acc.best.pth
labelled=240              # utterances with transcripts (of 240 in train)
opts=(--train-set "train_$labelled" --valid-set dev --test-sets "test" --nj 2
      --local-data-opts "--num-utts 300 --seed 1" --token-type bpe --nbpe 60
      --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_tiny.yaml")

./asr.sh "${opts[@]}" --train-set train --stop-stage 1 "$@"
[ -d "data/train_$labelled" ] || utils/subset_data_dir.sh --first "$labelled" data/train "data/train_$labelled"
./asr.sh "${opts[@]}" --stage 2 --asr-tag scratch "$@"
if [ -e "$ssl_model" ]; then
  ./asr.sh "${opts[@]}" --stage 3 --asr-tag pretrained --pretrained-model "$ssl_model" "$@"
  exps=(--exp pretrained=exp/asr_pretrained --exp scratch=exp/asr_scratch)
else
  echo "run.sh: $ssl_model not found (run ../ssl1/run.sh first): only the from-scratch model is trained" >&2
  exps=(--exp scratch=exp/asr_scratch)
fi
python -m chunkssl.bin.asr_results "${exps[@]}" --sets test --out RESULTS.md --plot wer_vs_chunk.png \
  --command "cd egs2/mini_synth/asr1 && ./run.sh $*"
echo "Results: $(pwd)/RESULTS.md, $(pwd)/wer_vs_chunk.png"
