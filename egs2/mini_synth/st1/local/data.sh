#!/usr/bin/env bash
# Parallel synthetic corpus (no download): English prompts spoken by espeak-ng in many voices, French
# translations made by rules (chunkssl/synth/parallel.py). Audio in $synth_dir; data/{train,dev,test}
# with text (= English source), text.en (the same) and text.fr (French target). Test voices are never
# heard in train or dev. Same arguments, same bytes.
set -euo pipefail
num_utts=2000
seed=1
nj=2
synth_dir=downloads/mini_synth_st
. utils/parse_options.sh
. ./path.sh
python -m chunkssl.bin.make_synth_st_corpus --out "$synth_dir" --num-utts "$num_utts" --seed "$seed" --nj "$nj"
mkdir -p data
for s in train dev test; do
  # copied whole under a temporary name, then swapped in: a half-copied set never looks finished
  rm -rf "data/.$s.new"
  cp -r "$synth_dir/$s" "data/.$s.new"
  rm -rf "data/$s"
  mv "data/.$s.new" "data/$s"
done
