#!/usr/bin/env bash
# `make demo`: the embedded end-to-end recipes on the synthetic corpus, CPU only.
#   ssl1: data -> fbank -> FSQ tokenizers (1k/64k/6M) + BEST-RQ -> tokens -> Chunk SSL -> pack
#   asr1: fine-tune on 80 labelled utterances from the SSL encoder and from scratch, decode offline,
#         simulated streaming and true streaming over a chunk sweep, score (RESULTS.md, plot)
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
echo "  ASR models and decodes:           $here/asr1/exp/asr_{pretrained,scratch}"
echo "  WER / RTF / latency table, plot:  $here/asr1/RESULTS.md, $here/asr1/wer_vs_chunk.png"
echo
cat "$here/asr1/RESULTS.md"
