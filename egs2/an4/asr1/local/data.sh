#!/usr/bin/env bash
# AN4 data prep: data/{train,test} (and data/dev with --num-dev N) from $AN4 (set in db.sh):
# the an4/ release folder, or a downloads.tar.gz that is unpacked into downloads/.
set -euo pipefail
. ./path.sh
. ./db.sh
num_dev=0
. utils/parse_options.sh
python -m chunkssl.corpora.an4 --src "$AN4" --out data --workdir downloads --num-dev "$num_dev"
