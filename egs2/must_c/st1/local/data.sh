#!/usr/bin/env bash
# MuST-C data prep: data/<split with - as _>_en_<tgt> (train_en_de, dev_en_de, tst_COMMON_en_de,
# tst_HE_en_de) from $MUST_C (db.sh), the folder holding en-<tgt>/ (v1.0 or v2.0 release layout).
# Each set: wav.scp (talks), segments, text (= English source), text.en (same), text.<tgt> (translation).
set -euo pipefail
. ./path.sh
. ./db.sh
tgt=de
splits="train dev tst-COMMON tst-HE"
. utils/parse_options.sh
local/download.sh --tgt "$tgt" "$MUST_C"
# shellcheck disable=SC2086
python -m chunkssl.corpora.must_c --src "$MUST_C" --out data --tgt "$tgt" --splits $splits
