#!/usr/bin/env bash
# Free Spoken Digit Dataset (8 kHz, resampled to 16 kHz by the fbank stage): train on all of data/train
# (2400 recordings; index 5-9 is held out as dev), decode the official test split (index 0-4) offline,
# with chunk masks and with the true streaming decoder, and write RESULTS.md + wer_vs_chunk.png.
# Whole-word units: nbpe 55 makes each digit word one sentencepiece piece. Decoding uses the average of
# the 3 best checkpoints (valid accuracy). See run_lowres.sh for the 10 %-label experiment with Chunk SSL.
set -euo pipefail
. ./path.sh
# One thread per job unless set: the model is tiny, and on a busy 2-core machine OpenMP threads wait on
# each other (measured at load 7: ~13 s per training step with 2 threads, ~0.5 s with 1).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
./asr.sh --train-set train --valid-set dev --test-sets "test" --nj 2 --token-type bpe --nbpe 55 \
  --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_fsdd.yaml" --inference-model valid.acc.ave.pth \
  --decode-chunks "320 640 full" --stream-chunks "640" --beam-size 4 "$@"
python -m chunkssl.bin.asr_results --exp fsdd=exp/asr_chunk_conformer_fsdd --sets test --out RESULTS.md \
  --plot wer_vs_chunk.png --command "cd egs2/fsdd/asr1 && ./run.sh${*:+ $*}"
