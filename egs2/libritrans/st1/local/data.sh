#!/usr/bin/env bash
# Libri-Trans EN->FR data prep: data/{train,test} (and data/dev with --dev-frac > 0) from $LIBRITRANS
# (db.sh), the folder holding audio_files/, alignments.meta, data.en, data.fr.
# Speaker-disjoint split: the readers with fewest utterances form test (>= --test-frac of the corpus),
# the next ones dev. Each set has text (= English source), text.en (same) and text.fr (French target).
# Train/dev utterances over --max-dur seconds are dropped (0 keeps all).
set -euo pipefail
. ./path.sh
. ./db.sh
test_frac=0.1
dev_frac=0
max_dur=20
. utils/parse_options.sh
python -m chunkssl.corpora.libritrans --src "$LIBRITRANS" --out data \
  --test-frac "$test_frac" --dev-frac "$dev_frac" --max-dur "$max_dur"
