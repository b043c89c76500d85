#!/usr/bin/env bash
# `make demo`: the embedded end-to-end recipe on the synthetic corpus, CPU only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/asr1"
./run.sh "$@"
echo
echo "Demo finished. Outputs:"
echo "  data dirs (with phone_ali):  $here/asr1/data/{train,dev,test}"
echo "  synthesised audio:           $here/asr1/downloads/mini_synth/wav"
echo "  fbank features + CMVN stats: $here/asr1/dump/fbank/{train,dev,test}"
