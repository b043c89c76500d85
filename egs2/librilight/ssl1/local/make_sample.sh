#!/usr/bin/env bash
# A tiny Libri-light-layout corpus from real Libri-Trans speech, to try this recipe without the 35 GB
# download (a stand-in, not Libri-light): <out_dir>/small/<reader>/<book>/<file>.{flac,json}, each
# flac a few minutes of one reader's utterances with short silences between them, the json's
# voice_activity the utterance boundaries. Deterministic. Then:
#   local/make_sample.sh "$LIBRITRANS" downloads/librilight_sample
#   LIBRILIGHT=downloads/librilight_sample local/data.sh --download false --subsets small --nj 2 --dev-recordings 2
# Options: --readers N (readers with the most audio first; 0: all), --minutes-per-reader M,
# --recording-minutes R, --silence-sec S (see python -m chunkssl.corpora.librilight_sample --help).
set -euo pipefail
. ./path.sh
readers=8
minutes_per_reader=3
recording_minutes=2
silence_sec=0.5
help_message="Usage: $0 [--readers N] [--minutes-per-reader M] [--recording-minutes R] [--silence-sec S] <libritrans_dir> <out_dir>"
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
python -m chunkssl.corpora.librilight_sample "$1" "$2" --readers "$readers" \
  --minutes-per-reader "$minutes_per_reader" --recording-minutes "$recording_minutes" --silence-sec "$silence_sec"
