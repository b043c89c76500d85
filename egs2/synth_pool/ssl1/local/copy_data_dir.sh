#!/usr/bin/env bash
# Copy the named files of a Kaldi data dir into a fresh one (written beside it, then renamed):
#   local/copy_data_dir.sh <src> <dest> <file>...
# Used to leave out what a set must not carry (transcripts of pre-training audio, phone_ali, text.fr).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "Usage: $0 <src-data-dir> <dest-data-dir> <file>..." >&2
  exit 1
fi
src=$1 dest=${2%/}
shift 2
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
for f in "$@"; do
  [ -f "$src/$f" ] || { echo "$0: $src/$f is missing; rerun the step that makes $src" >&2; exit 1; }
  cp "$src/$f" "$dest.tmp/"
done
rm -rf "$dest" && mv "$dest.tmp" "$dest"
