#!/usr/bin/env bash
# A small slice of the issue-13 replication recipe (egs2/synth_pool), CPU only (`make demo` still runs
# egs2/mini_synth/demo.sh: this one has not yet been seen to finish, see RESULTS.md):
#   ssl1: a 0.5 h synthetic pool + every real recording of ../shared/data -> fbank -> FSQ ~6M tokenizer ->
#         Chunk SSL (CADA, group loss) on it -> exp/ssl_chunk_6m
#   asr1: fine-tune on ~30 min of labelled synthetic speech from that encoder and from scratch (one seed
#         each, one schedule), decode the unseen-voice test set offline and with the true streaming decoder
#         at 640 ms, score -> asr1/exp/replication/RESULTS.md (+ RESULTS.json, wer_vs_chunk.png)
# The full replication (four pre-training rows, three seeds, the real-speech track) is ./run_all.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/run_all.sh" --demo "$@"
echo
echo "Demo finished. Outputs:"
echo "  pool and tokenizer:          $here/ssl1/data/train, $here/ssl1/exp/fsq_6m, $here/ssl1/exp/fsq_analysis/dev/results.md"
echo "  Chunk SSL encoder:           $here/ssl1/exp/ssl_chunk_6m/{train.log,valid.acc.best.pth,packed.zip}"
echo "  fine-tuned models, decodes:  $here/asr1/exp/asr_{scratch,chunk_6m}_s1"
echo "  wall time of every step:     $here/{ssl1,asr1}/exp/timing.tsv"
echo
cat "$here/asr1/exp/replication/RESULTS.md"
