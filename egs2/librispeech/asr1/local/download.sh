#!/usr/bin/env bash
# Fetch LibriSpeech subsets (openslr.org/resources/12) and Libri-light's librispeech_finetuning.tgz
# (the 10 min / 1 h / 10 h sets) into <dir>, skipping every part already there.
#   local/download.sh --subsets "train-clean-100 dev-clean train-10h" <dir>
# Subsets named train-10min, train-1h or train-10h fetch librispeech_finetuning.tgz (0.6 GB).
# Each archive is downloaded to <dir>/<name>.part (wget -c resumes it), unpacked in a temporary
# folder and moved into place only when complete, so a present folder is always a whole subset.
set -euo pipefail
subsets="train-clean-100 dev-clean dev-other test-clean test-other"
keep_archives=false
help_message="Usage: $0 [--subsets \"train-clean-100 dev-clean ...\"] [--keep-archives false] <dir>"
. utils/parse_options.sh
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
dir=$1
openslr=https://www.openslr.org/resources/12
finetune_url=https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz

fetch() {  # fetch <url> <file>: resumable download with wget, else curl
  if command -v wget > /dev/null; then
    wget --no-verbose --continue -O "$2" "$1"
  else
    curl --fail --location --silent --show-error --continue-at - -o "$2" "$1"
  fi
}

# unpack <archive> <path inside archive> <destination>: extract, then move one folder into place.
unpack() {
  local tmp
  tmp=$(mktemp -d "$dir/.unpack.XXXXXX")
  tar -xzf "$1" -C "$tmp"
  [ -d "$tmp/$2" ] || { echo "$0: $1 holds no $2/; is it the right archive?" >&2; rm -rf "$tmp"; exit 1; }
  mkdir -p "$(dirname "$3")"
  mv "$tmp/$2" "$3"
  # LibriSpeech's top-level README/SPEAKERS/CHAPTERS files come with every subset: keep one copy.
  local f
  for f in "$tmp"/LibriSpeech/*; do
    if [ -f "$f" ] && [ ! -e "$dir/LibriSpeech/$(basename "$f")" ]; then
      cp "$f" "$dir/LibriSpeech/"
    fi
  done
  rm -rf "$tmp"
  $keep_archives || rm -f "$1"
}

mkdir -p "$dir"
for subset in $subsets; do
  case "$subset" in
    train-10min|train-1h|train-10h)
      if [ -d "$dir/librispeech_finetuning/1h" ] && [ -d "$dir/librispeech_finetuning/9h" ]; then
        echo "$0: $dir/librispeech_finetuning present; skipping $subset"
        continue
      fi
      fetch "$finetune_url" "$dir/librispeech_finetuning.tgz.part"
      mv "$dir/librispeech_finetuning.tgz.part" "$dir/librispeech_finetuning.tgz"
      unpack "$dir/librispeech_finetuning.tgz" librispeech_finetuning "$dir/librispeech_finetuning"
      ;;
    *)
      if [ -d "$dir/LibriSpeech/$subset" ]; then
        echo "$0: $dir/LibriSpeech/$subset present; skipping"
        continue
      fi
      fetch "$openslr/$subset.tar.gz" "$dir/$subset.tar.gz.part"
      mv "$dir/$subset.tar.gz.part" "$dir/$subset.tar.gz"
      unpack "$dir/$subset.tar.gz" "LibriSpeech/$subset" "$dir/LibriSpeech/$subset"
      ;;
  esac
done
echo "$0: LibriSpeech subsets ready in $dir"
