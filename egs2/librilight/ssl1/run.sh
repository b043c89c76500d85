#!/usr/bin/env bash
# Chunk SSL pre-training on Libri-light (unlabelled, cut into <= 15 s segments by its VAD metadata), as
# at scale: the audio is read as it is (--feats-type raw) and the fbank and the FSQ codes are made on the
# training device (--ssl-targets online), so nothing but manifests is written beside the audio.
# The 60k-hour plan (4 nodes x 8 GPUs) and a run on a stand-in made from real speech: README.md.
set -euo pipefail
./ssl.sh --train-set small --valid-set small_dev --nj 32 --feats-type raw --ssl-targets online \
  --local-data-opts "--subsets small --max-seg-sec 15 --dev-recordings 20 --nj 32" "$@"
