#!/usr/bin/env bash
# Fetch OpenSLR SLR1 (waves_yesno.tar.gz, 4.5 MB) into <dir>/waves_yesno unless it is already there.
# Usage: local/download.sh <dir>
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "Usage: $0 <dir>   (e.g. $0 downloads; then set YESNO=downloads)" >&2
  exit 1
fi
dir=$1
url=https://www.openslr.org/resources/1/waves_yesno.tar.gz
if compgen -G "$dir/waves_yesno/*.wav" > /dev/null; then
  echo "$0: $dir/waves_yesno already present; skipping download"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.yesno_download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if command -v wget > /dev/null; then
  wget --no-verbose -O "$tmp/waves_yesno.tar.gz" "$url"
else
  curl --fail --location --silent --show-error -o "$tmp/waves_yesno.tar.gz" "$url"
fi
tar -xzf "$tmp/waves_yesno.tar.gz" -C "$tmp"
# Move into place only after a complete unpack, so an interrupted run is never taken for the corpus.
mv "$tmp/waves_yesno" "$dir/waves_yesno"
echo "$0: yesno is in $dir/waves_yesno"
