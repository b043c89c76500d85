#!/usr/bin/env bash
# yesno data prep: data/{train,test} (and data/dev with --num-dev N) from $YESNO (set in db.sh), the
# folder holding waves_yesno/. Test = files starting 0_ (31), train = the rest (29), as in Kaldi's egs/yesno.
# With --download true a missing corpus is fetched from openslr.org into $YESNO first.
set -euo pipefail
. ./path.sh
. ./db.sh
num_dev=0
download=false
. utils/parse_options.sh
if $download; then
  local/download.sh "$YESNO"
fi
python -m chunkssl.corpora.yesno --src "$YESNO" --out data --num-dev "$num_dev"
