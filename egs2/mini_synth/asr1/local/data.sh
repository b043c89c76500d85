#!/usr/bin/env bash
# mini_synth: a corpus synthesised with espeak-ng (no download). Audio goes to $synth_dir, the
# Kaldi data dirs (with phone_ali) to data/{train,dev,test}. Same seed, same bytes.
set -euo pipefail
. ./path.sh
num_utts=300
seed=1
synth_dir=downloads/mini_synth
. utils/parse_options.sh
python -m chunkssl.bin.make_synth_corpus --out "$synth_dir" --num-utts "$num_utts" --seed "$seed"
for s in train dev test; do
  rm -rf "data/$s.tmp"
  mkdir -p data
  cp -r "$synth_dir/$s" "data/$s.tmp"
  rm -rf "data/$s"
  mv "data/$s.tmp" "data/$s"
done
