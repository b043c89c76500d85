#!/usr/bin/env bash
# Combine Kaldi-style data dirs into one:  utils/combine_data.sh <dest> <src1> <src2> ...
#
# Per-utterance files present in every source are concatenated and sorted (LC_ALL=C); one
# missing from some source is left out of <dest> with a warning, since <dest> would
# otherwise describe only part of its utterances.  An utterance id in two sources is an
# error (prefix the ids of each source to make them unique).  If some sources have segments
# and others not, the latter get whole-recording segments from their utt2dur, so <dest>
# has segments plus a recording-level wav.scp.  Speaker files (spk2gender, cmvn.scp) are
# merged when they agree; spk2utt is regenerated.
set -euo pipefail
export LC_ALL=C

prog=combine_data.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "$prog: $*" >&2; exit 1; }
warn() { echo "$prog: warning: $*" >&2; }

if [ $# -lt 2 ] || [[ "$1" == -* ]]; then
  echo "Usage: $prog <dest-data-dir> <src-data-dir1> [<src-data-dir2> ...]" >&2
  echo "  e.g. $prog data/train_all data/train_a data/train_b" >&2
  exit 1
fi
dest=${1%/}
shift
srcs=()
for s in "$@"; do srcs+=("${s%/}"); done

for s in "${srcs[@]}"; do
  [ -d "$s" ] || die "source $s is not a directory"
  for f in utt2spk wav.scp; do
    [ -f "$s/$f" ] || die "$s/$f not found: every source must be a data dir with wav.scp and utt2spk"
  done
  if [ -d "$dest" ] && [ "$(cd "$s" && pwd -P)" = "$(cd "$dest" && pwd -P)" ]; then
    die "destination $dest is also a source; write the combination to a new directory"
  fi
done

# Every utterance id must be unique across (and within) the sources.
dup=$(for s in "${srcs[@]}"; do awk -v src="$s" 'NF { print $1, src }' "$s/utt2spk"; done \
  | sort -k1,1 -s | awk '$1 == prev { print $1, prev_src, $2; exit } { prev = $1; prev_src = $2 }')
if [ -n "$dup" ]; then
  read -r id a b <<< "$dup"
  if [ "$a" = "$b" ]; then
    die "utterance id '$id' appears twice in $a/utt2spk; run utils/fix_data_dir.sh $a first"
  fi
  die "utterance id '$id' is in both $a and $b; ids must be unique across sources, e.g. prefix every utterance (and speaker) id of each source with a corpus tag"
fi

n_seg=0
for s in "${srcs[@]}"; do [ -f "$s/segments" ] && n_seg=$((n_seg + 1)); done
if [ "$n_seg" -gt 0 ] && [ "$n_seg" -lt "${#srcs[@]}" ]; then
  for s in "${srcs[@]}"; do
    [ -f "$s/segments" ] || [ -f "$s/utt2dur" ] || die "$s has no segments and no utt2dur, but other sources have segments; add $s/utt2dur (utt seconds) so whole-recording segments can be made for it"
  done
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.combine.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/out"

# Concatenate file $1 of every source (or warn and skip it when some lack it) into $tmp/out.
combine_if_everywhere() {
  local f=$1 s missing=()
  for s in "${srcs[@]}"; do [ -f "$s/$f" ] || missing+=("$s"); done
  if [ "${#missing[@]}" -eq "${#srcs[@]}" ]; then
    return 0
  elif [ "${#missing[@]}" -gt 0 ]; then
    warn "$f is missing from ${missing[*]}; leaving it out of $dest"
    return 0
  fi
  for s in "${srcs[@]}"; do cat "$s/$f"; done | awk 'NF' | sort > "$tmp/out/$f"
}

# Recording-level files may repeat a recording across sources only with identical lines.
combine_reco() {
  local f=$1
  [ -f "$tmp/out/$f" ] || return 0
  sort -u -o "$tmp/out/$f" "$tmp/out/$f"
  local clash
  clash=$(awk '$1 == prev { print $1; exit } { prev = $1 }' "$tmp/out/$f")
  [ -z "$clash" ] || die "recording '$clash' has different lines in the $f of two sources; recording ids must be unique across sources"
}

utt_files=(utt2spk text feats.scp utt2num_frames utt2dur utt2num_samples utt2lang utt2uniq utt2category)
for s in "${srcs[@]}"; do
  for path in "$s"/text.*; do
    [ -f "$path" ] && utt_files+=("$(basename "$path")")
  done
done
mapfile -t utt_files < <(printf '%s\n' "${utt_files[@]}" | awk '!seen[$0]++')
for f in "${utt_files[@]}"; do
  combine_if_everywhere "$f"
done

if [ "$n_seg" -eq 0 ]; then
  combine_if_everywhere wav.scp
  # Only a recording-level file if every utterance is its own recording.
  for f in reco2file_and_channel reco2dur reco2num_samples; do combine_if_everywhere "$f"; done
else
  for s in "${srcs[@]}"; do
    if [ -f "$s/segments" ]; then
      cat "$s/segments"
    else
      # Each utterance of this source is a whole recording named after it.
      awk 'NF { print $1, $1, "0", $2 }' "$s/utt2dur"
    fi
  done | awk 'NF' | sort > "$tmp/out/segments"
  for s in "${srcs[@]}"; do cat "$s/wav.scp"; done | awk 'NF' > "$tmp/out/wav.scp"
  combine_reco wav.scp
  for f in reco2file_and_channel reco2dur reco2num_samples; do
    combine_if_everywhere "$f"
    combine_reco "$f"
  done
fi

for f in spk2gender cmvn.scp; do
  combine_if_everywhere "$f"
  [ -f "$tmp/out/$f" ] || continue
  sort -u -o "$tmp/out/$f" "$tmp/out/$f"
  clash=$(awk '$1 == prev { print $1; exit } { prev = $1 }' "$tmp/out/$f")
  if [ -n "$clash" ]; then
    warn "speaker '$clash' has different lines in the $f of two sources; leaving $f out of $dest (are speaker ids unique across sources?)"
    rm "$tmp/out/$f"
  fi
done
"$utils/utt2spk_to_spk2utt.py" "$tmp/out/utt2spk" | sort > "$tmp/out/spk2utt"

# Nothing from an earlier combination may survive next to the new files.
for f in "${utt_files[@]}" segments wav.scp reco2file_and_channel reco2dur reco2num_samples \
    spk2gender cmvn.scp spk2utt; do
  rm -f "$dest/$f"
done
rm -f "$dest"/text.*
for f in "$tmp"/out/*; do
  mv -f "$f" "$dest/$(basename "$f")"
done
echo "$prog: combined $(wc -l < "$dest/utt2spk") utterances from ${#srcs[@]} sources into $dest"
