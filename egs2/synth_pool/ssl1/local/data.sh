#!/usr/bin/env bash
# Unlabelled pre-training data of the small-scale Chunk SSL replication (issue 13):
#   data/train = the synthetic pool (>= --pool-hours of espeak-ng speech, 4-20 s utterances of several
#                prompts, seen voice variants only) + every real recording of ../shared/data: FSDD (all
#                3000), yesno (60), mini AN4 (train + test) and the Libri-Trans *train* readers, real
#                recordings cut into pieces of at most --max-seconds. Left out: the Libri-Trans held-out
#                readers (../asr1's lt_test) and every held-out voice variant (../asr1's test_unseen).
#   data/dev   = a synthetic validation set (seen voices; phone_ali kept for the tokenizer analysis).
# No text files: labels are never used in pre-training. Synthetic audio goes to $synth_dir (git-ignored),
# one folder per part named after its options, so a quick and a full run do not overwrite each other.
set -euo pipefail
. ./path.sh
. ./db.sh
pool_hours=6
dev_utts=40
seed=1
nj=2
max_seconds=20
synth_dir=downloads/synth_pool
. utils/parse_options.sh

pool=$synth_dir/pool-h$pool_hours-s$seed
dev=$synth_dir/dev-n$dev_utts-s$seed
python -m chunkssl.bin.make_synth_pool --out "$pool" --part pool --hours "$pool_hours" --seed "$seed" --nj "$nj"
python -m chunkssl.bin.make_synth_pool --out "$dev" --part dev --num-utts "$dev_utts" --seed "$seed" --nj "$nj"

mkdir -p data/src
python -m chunkssl.corpora.fsdd --src "$FSDD" --out data/src/fsdd
python -m chunkssl.corpora.yesno --src "$YESNO" --out data/src/yesno
python -m chunkssl.corpora.an4 --src "$AN4" --out data/src/an4 --workdir downloads
# Same reader split as ../asr1 (the prep's default --test-frac); --max-dur 0: long recordings are cut below.
python -m chunkssl.corpora.libritrans --src "$LIBRITRANS" --out data/src/libritrans --max-dur 0
real=(fsdd/train fsdd/dev fsdd/test yesno/train yesno/test an4/train an4/test libritrans/train)
for s in "${real[@]}"; do
  python local/cut_segments.py --max-seconds "$max_seconds" "data/src/$s" "data/src/${s}_seg"
done

local/copy_data_dir.sh "$pool/data" data/src/synth_pool wav.scp utt2spk spk2utt utt2dur
segs=()
for s in "${real[@]}"; do segs+=("data/src/${s}_seg"); done
rm -rf data/train.tmp
utils/combine_data.sh data/train.tmp data/src/synth_pool "${segs[@]}"
rm -rf data/train && mv data/train.tmp data/train
local/copy_data_dir.sh "$dev/data" data/dev wav.scp utt2spk spk2utt utt2dur phone_ali
for s in train dev; do utils/validate_data_dir.sh --no-text --no-audio "data/$s"; done

hours() { awk '{ s += $2 } END { printf "%.3f h", s / 3600 }' "$@"; }
echo "data/train: $(wc -l < data/train/utt2spk) utterances, $(hours data/train/utt2dur):" \
  "synthetic $(hours data/src/synth_pool/utt2dur)," \
  "FSDD $(hours data/src/fsdd/{train,dev,test}_seg/utt2dur), yesno $(hours data/src/yesno/{train,test}_seg/utt2dur)," \
  "AN4 $(hours data/src/an4/{train,test}_seg/utt2dur), Libri-Trans train readers $(hours data/src/libritrans/train_seg/utt2dur)"
echo "data/dev: $(wc -l < data/dev/utt2spk) utterances, $(hours data/dev/utt2dur) (synthetic, seen voices)"
