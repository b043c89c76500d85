#!/usr/bin/env bash
# Labelled data of the small-scale Chunk SSL replication (issue 13); ../ssl1/local/data.sh makes the pool.
# Synthetic track (espeak-ng, 4-20 s utterances of several prompts, coloured noise at 10-30 dB SNR):
#   data/train_labelled  --labelled-utts single-prompt utterances (0.7-5 s, 2.3 s on average: 800 make
#                        about 30 min) of fine-tuning speech. Fresh utterances (and speakers) of the seen
#                        voice variants, not a subset of the pre-training pool: the fine-tuning set then
#                        tells nothing about the pool's own audio. Single prompts because a tiny conformer
#                        from scratch stayed on the CTC plateau for 400 updates on 4-20 s utterances
#                        (egs2/synth_pool/RESULTS.md); dev and test keep the long multi-prompt utterances.
#   data/dev             --dev-utts utterances, seen variants (the same bytes as ../ssl1's data/dev
#                        when --dev-utts and --seed agree).
#   data/test_unseen     --test-utts utterances spoken only by the held-out voice variants, which the
#                        pool, train_labelled and dev never use (a fixed split, whatever --seed).
# Real-speech track (Libri-Trans, ../shared/data/libritrans; readers split as its PROVENANCE.md says):
#   data/lt_train        the train readers (utterances longer than --lt-max-dur s left out),
#   data/lt_test         the held-out readers (all utterances; ../ssl1 keeps them out of the pool).
# Transcripts: upper-case words, the synthetic grammar and LibriSpeech's normalisation alike; the
# script stops if any set has other characters.
set -euo pipefail
. ./path.sh
. ./db.sh
labelled_utts=800
test_utts=100
dev_utts=40
seed=1
nj=2
lt_max_dur=20
synth_dir=downloads/synth_pool
. utils/parse_options.sh

labelled=$synth_dir/labelled-p1-n$labelled_utts-s$seed
dev=$synth_dir/dev-n$dev_utts-s$seed
test=$synth_dir/test-n$test_utts-s$seed
python -m chunkssl.bin.make_synth_pool --out "$labelled" --part labelled --num-utts "$labelled_utts" --max-prompts 1 \
  --seed "$seed" --nj "$nj"
python -m chunkssl.bin.make_synth_pool --out "$dev" --part dev --num-utts "$dev_utts" --seed "$seed" --nj "$nj"
python -m chunkssl.bin.make_synth_pool --out "$test" --part test --num-utts "$test_utts" --seed "$seed" --nj "$nj"
mkdir -p data/src
python -m chunkssl.corpora.libritrans --src "$LIBRITRANS" --out data/src/libritrans --max-dur "$lt_max_dur"

synth_files=(wav.scp text utt2spk spk2utt utt2dur)
local/copy_data_dir.sh "$labelled/data" data/train_labelled "${synth_files[@]}"
local/copy_data_dir.sh "$dev/data" data/dev "${synth_files[@]}"
local/copy_data_dir.sh "$test/data" data/test_unseen "${synth_files[@]}"
local/copy_data_dir.sh data/src/libritrans/train data/lt_train wav.scp text utt2spk spk2utt
local/copy_data_dir.sh data/src/libritrans/test data/lt_test wav.scp text utt2spk spk2utt
for s in lt_train lt_test; do  # durations from the audio headers, for the hours below
  python -c 'import sys, soundfile as sf
for line in open(sys.argv[1]):
    utt, path = line.split(maxsplit=1)
    print(utt, f"{sf.info(path.strip()).duration:.4f}")' "data/$s/wav.scp" > "data/$s/utt2dur"
done

sets=(train_labelled dev test_unseen lt_train lt_test)
for s in "${sets[@]}"; do
  bad=$(awk '{ $1 = ""; if ($0 !~ /^( [A-Z'"'"']+)+$/) { print NR; exit } }' "data/$s/text")
  if [ -n "$bad" ]; then
    echo "local/data.sh: data/$s/text line $bad is not upper-case words (A-Z and '); every set must share" \
      "one text normalisation: fix the corpus prep" >&2
    exit 1
  fi
  utils/validate_data_dir.sh --no-audio "data/$s"
done
for s in "${sets[@]}"; do
  echo "data/$s: $(wc -l < "data/$s/utt2spk") utterances of $(wc -l < "data/$s/spk2utt") speakers," \
    "$(awk '{ s += $2 } END { printf "%.3f h", s / 3600 }' "data/$s/utt2dur")"
done
