#!/usr/bin/env bash
# `make demo`: the embedded end-to-end recipes on the synthetic corpus, CPU only.
#   ssl1: data -> fbank -> FSQ tokenizers (1k/64k/6M) + BEST-RQ -> tokens -> Chunk SSL -> pack
#   asr1: data -> fbank (fine-tuning and streaming decoding come with the ASR recipe stages)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
(cd "$here/ssl1" && ./run.sh "$@")
(cd "$here/asr1" && ./run.sh)
ssl_exp=$(ls -d "$here"/ssl1/exp/ssl_*/ | head -n 1)
echo
echo "Demo finished. Outputs:"
echo "  data dirs (with phone_ali):       $here/ssl1/data/{train,dev,test}"
echo "  fbank features + CMVN stats:      $here/ssl1/dump/fbank/{train,dev}"
echo "  tokenizers and their codes:       $here/ssl1/exp/fsq_*  $here/ssl1/dump/tokens/*"
echo "  tokenizer comparison (PNMI etc.): $here/ssl1/exp/fsq_analysis/dev/results.md"
echo "  Chunk SSL model (log, packed):    ${ssl_exp%/}/{train.log,valid.acc.best.pth,packed.zip}"
echo "  ASR data and features:            $here/asr1/data, $here/asr1/dump/fbank"
