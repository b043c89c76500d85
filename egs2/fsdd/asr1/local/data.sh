#!/usr/bin/env bash
# FSDD data prep: data/{train,dev,test} from $FSDD/recordings (set in db.sh). Test = index 0-4, dev = 5-9.
set -euo pipefail
. ./path.sh
. ./db.sh
dev_in_train=false
. utils/parse_options.sh
opts=""
$dev_in_train && opts="--dev-in-train"
python -m chunkssl.corpora.fsdd --src "$FSDD" --out data $opts
