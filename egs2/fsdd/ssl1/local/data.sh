#!/usr/bin/env bash
# Unlabelled pre-training audio for the FSDD low-resource experiment (../asr1/run_lowres.sh):
#   data/train = FSDD train (2400, index 10-49) + all of Libri-Trans (500 recordings, 16 kHz read English,
#                cut into pieces of at most $max_seconds s) + the train part of a synthetic espeak-ng corpus
#   data/dev   = FSDD dev (index 5-9) + the synthetic dev part, for the SSL validation accuracy.
# No text file: labels are never used. The FSDD test split (index 0-4) is never seen.
# Synthetic audio goes to $synth_dir (git-ignored).
set -euo pipefail
. ./path.sh
. ./db.sh
synth_utts=400
seed=1
max_seconds=4
synth_dir=downloads/synth
. utils/parse_options.sh

mkdir -p data/src
python -m chunkssl.corpora.fsdd --src "$FSDD" --out data/src/fsdd
python -m chunkssl.corpora.libritrans --src "$LIBRITRANS" --out data/src/libritrans --max-dur 0
python -m chunkssl.bin.make_synth_corpus --out "$synth_dir" --num-utts "$synth_utts" --seed "$seed"
# Segments (and durations) for the real corpora, so they combine with the synthetic dirs' utt2dur.
for s in fsdd/train fsdd/dev libritrans/train libritrans/test; do
  python local/cut_segments.py --max-seconds "$max_seconds" "data/src/$s" "data/src/${s}_seg"
done

combine() {  # combine <dest> <src>...: into a fresh folder, then renamed
  local dest=$1; shift
  rm -rf "$dest.tmp" && utils/combine_data.sh "$dest.tmp" "$@"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}
combine data/train data/src/fsdd/train_seg data/src/libritrans/train_seg data/src/libritrans/test_seg "$synth_dir/train"
combine data/dev data/src/fsdd/dev_seg "$synth_dir/dev"
rm -f data/train/text data/dev/text  # the synthetic dirs' transcripts: not for pre-training
for s in train dev; do echo "$s: $(wc -l < data/$s/utt2spk) utterances (no transcripts)"; done
