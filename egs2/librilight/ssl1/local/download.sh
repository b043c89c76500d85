#!/usr/bin/env bash
# Fetch Libri-light unlabelled subsets (dl.fbaipublicfiles.com/librilight/data/<subset>.tar) into <dir>,
# skipping every subset folder already there.
#   local/download.sh --subsets "small" <dir>
# Sizes: small 577 h / 35 GB, medium 5,193 h / 321 GB, large 51,934 h / 3.05 TB, duplicate 4,500 h / 274 GB.
# Each tar is downloaded to <dir>/<subset>.tar.part (wget -c resumes it), unpacked in a temporary folder
# and moved into place only when complete, so a present <dir>/<subset> is always a whole subset.
set -euo pipefail
subsets="small"
keep_archives=false
help_message="Usage: $0 [--subsets \"small medium\"] [--keep-archives false] <dir>"
. utils/parse_options.sh
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
dir=$1
base=https://dl.fbaipublicfiles.com/librilight/data

fetch() {  # fetch <url> <file>: resumable download with wget, else curl
  if command -v wget > /dev/null; then
    wget --no-verbose --continue -O "$2" "$1"
  else
    curl --fail --location --silent --show-error --continue-at - -o "$2" "$1"
  fi
}

mkdir -p "$dir"
for subset in $subsets; do
  case "$subset" in
    small|medium|large|duplicate) ;;
    *) echo "$0: unknown Libri-light subset '$subset' (small, medium, large, duplicate)" >&2; exit 1 ;;
  esac
  if [ -d "$dir/$subset" ]; then
    echo "$0: $dir/$subset present; skipping"
    continue
  fi
  fetch "$base/$subset.tar" "$dir/$subset.tar.part"
  mv "$dir/$subset.tar.part" "$dir/$subset.tar"
  tmp=$(mktemp -d "$dir/.unpack.XXXXXX")
  tar -xf "$dir/$subset.tar" -C "$tmp"
  if [ ! -d "$tmp/$subset" ]; then
    echo "$0: $dir/$subset.tar holds no $subset/ folder; is it the right archive?" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mv "$tmp/$subset" "$dir/$subset"
  rm -rf "$tmp"
  $keep_archives || rm -f "$dir/$subset.tar"
done
echo "$0: Libri-light subsets ready in $dir"
