#!/usr/bin/env bash
# MuST-C cannot be fetched by script: FBK releases it after a download form (CC BY-NC-ND 4.0).
# This checks that <dir>/en-<tgt>/data is there and otherwise says how to get it.
#   local/download.sh --tgt de <dir>
set -euo pipefail
tgt=de
help_message="Usage: $0 [--tgt de] <dir>"
. utils/parse_options.sh
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
dir=$1
if [ -d "$dir/en-$tgt/data" ] || { [ -d "$dir/data" ] && [ "$(basename "$dir")" = "en-$tgt" ]; }; then
  echo "$0: MuST-C en-$tgt present in $dir; nothing to download"
  exit 0
fi
cat >&2 <<EOF
$0: MuST-C en-$tgt not found in $dir.
  Request it at https://ict.fbk.eu/must-c/ (v1.0 or v2.0), then unpack MUSTC_v*_en-$tgt.tar.gz so that
  $dir/en-$tgt/data/{train,dev,tst-COMMON,tst-HE} exist, or point MUST_C (db.sh) at the folder holding en-$tgt/.
EOF
exit 1
