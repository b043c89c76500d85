#!/usr/bin/env bash
# Make a Kaldi-style data dir consistent, in place, keeping a backup of the old files.
#
#   utils/fix_data_dir.sh data/train
#
# Keeps only utterances present in every per-utterance file (segments or wav.scp, utt2spk,
# text, text.*, feats.scp, utt2num_frames, utt2dur, ... whichever exist); drops utterances
# with an empty transcript and segments whose recording is not in wav.scp; removes
# duplicate ids (the first line wins); keeps only the recordings (wav.scp, reco2*) and
# speakers (spk2gender, cmvn.scp) still used; sorts every file with LC_ALL=C sort and
# regenerates spk2utt from utt2spk.  The previous files are copied to <dir>/.backup first.
# Reports how many utterances were kept and, per file, why the others were dropped.
# Files it does not know are left alone.
set -euo pipefail
export LC_ALL=C

prog=fix_data_dir.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ $# -ne 1 ] || [[ "$1" == -* ]]; then
  echo "Usage: $prog <data-dir>" >&2
  echo "  e.g. $prog data/train   (old files are kept in data/train/.backup)" >&2
  exit 1
fi
data=${1%/}

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }

[ -d "$data" ] || die "no such data directory: $data"
for f in wav.scp utt2spk; do
  [ -f "$data/$f" ] || die "$data/$f is missing; a data dir needs wav.scp, utt2spk and (for ASR) text"
done

# Per-utterance files: the first one defines the utterances (segments if present, else wav.scp).
utt_files=()
reco_files=()
if [ -f "$data/segments" ]; then
  utt_files+=(segments)
  for f in wav.scp reco2file_and_channel reco2dur reco2num_samples; do
    [ -f "$data/$f" ] && reco_files+=("$f")
  done
else
  utt_files+=(wav.scp)
fi
utt_files+=(utt2spk)
for f in text feats.scp utt2num_frames utt2dur utt2num_samples utt2lang utt2uniq utt2category; do
  [ -f "$data/$f" ] && utt_files+=("$f")
done
for path in "$data"/text.*; do
  name=$(basename "$path")
  case "$name" in *~|*.bak|*.tmp|*.orig) continue ;; esac
  [ -f "$path" ] && utt_files+=("$name")
done
spk_files=()
for f in spk2gender cmvn.scp; do
  [ -f "$data/$f" ] && spk_files+=("$f")
done

tmp=$(mktemp -d "$data/.fix_data_dir.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/clean" "$tmp/keys" "$tmp/dup" "$tmp/empty" "$tmp/bad" "$tmp/out"

# Up to five ids from a file, for messages.
examples() {
  local n
  n=$(wc -l < "$1")
  if [ "$n" -gt 5 ]; then echo "$(head -n 5 "$1" | tr '\n' ' ')..."; else head -n 5 "$1" | tr '\n' ' ' | sed 's/ $//'; fi
}

# Clean one file: drop blank lines, keep the first line of each id, and set aside lines
# without a value (empty transcripts for text files) and malformed ones.
clean() {
  local f=$1 kind=other
  case "$f" in
    text|text.*) kind=text ;;
    segments) kind=segments ;;
    utt2spk) kind=utt2spk ;;
  esac
  : > "$tmp/dup/$f"; : > "$tmp/empty/$f"; : > "$tmp/bad/$f"
  awk -v kind="$kind" -v dup="$tmp/dup/$f" -v empty="$tmp/empty/$f" -v bad="$tmp/bad/$f" '
    NF == 0 { next }
    ($1 in seen) { print $1 > dup; next }
    { seen[$1] = 1 }
    NF < 2 { print $1 > (kind == "text" ? empty : bad); next }
    kind == "utt2spk" && NF != 2 { print $1 > bad; next }
    kind == "segments" && (NF != 4 || $3 !~ /^[0-9.]+$/ || $4 !~ /^-?[0-9.]+$/ || ($4 + 0 >= 0 && $4 + 0 <= $3 + 0)) {
      print $1 > bad; next
    }
    { print }' "$data/$f" > "$tmp/clean/$f"
  awk '{ print $1 }' "$tmp/clean/$f" | sort > "$tmp/keys/$f"
}

for f in "${utt_files[@]}" "${reco_files[@]}" "${spk_files[@]}"; do
  clean "$f"
done

# A segment needs its recording.
: > "$tmp/no_reco"
if [ -f "$data/segments" ]; then
  awk -v wav="$tmp/keys/wav.scp" -v missing="$tmp/no_reco" '
    BEGIN { while ((getline r < wav) > 0) have[r] = 1 }
    ($2 in have) { print; next }
    { print $1 > missing }' "$tmp/clean/segments" > "$tmp/clean/segments.ok"
  mv "$tmp/clean/segments.ok" "$tmp/clean/segments"
  awk '{ print $1 }' "$tmp/clean/segments" | sort > "$tmp/keys/segments"
  sort -o "$tmp/no_reco" "$tmp/no_reco"
fi

for f in "${utt_files[@]}"; do
  cat "$tmp/keys/$f" "$tmp/dup/$f" "$tmp/empty/$f" "$tmp/bad/$f"
done | sort -u > "$tmp/all"
cp "$tmp/keys/${utt_files[0]}" "$tmp/kept"
for f in "${utt_files[@]:1}"; do
  comm -12 "$tmp/kept" "$tmp/keys/$f" > "$tmp/kept.new"
  mv "$tmp/kept.new" "$tmp/kept"
done
n_all=$(wc -l < "$tmp/all")
n_kept=$(wc -l < "$tmp/kept")

report=()
for f in "${utt_files[@]}" "${reco_files[@]}" "${spk_files[@]}"; do
  sort -u -o "$tmp/empty/$f" "$tmp/empty/$f"
  sort -u -o "$tmp/bad/$f" "$tmp/bad/$f"
  sort -u -o "$tmp/dup/$f.ids" "$tmp/dup/$f"
  n=$(wc -l < "$tmp/dup/$f")
  [ "$n" -gt 0 ] && report+=("$f: removed $n duplicate line(s), kept the first of each id ($(examples "$tmp/dup/$f.ids"))")
  n=$(wc -l < "$tmp/empty/$f")
  [ "$n" -gt 0 ] && report+=("$f: dropped $n utterance(s) with an empty transcript ($(examples "$tmp/empty/$f"))")
  case "$f" in
    segments) expect="'utt recording start end' with end > start, or end -1" ;;
    utt2spk) expect="'utt speaker'" ;;
    *) expect="an id and a value" ;;
  esac
  n=$(wc -l < "$tmp/bad/$f")
  [ "$n" -gt 0 ] && report+=("$f: dropped $n malformed line(s), expected $expect ($(examples "$tmp/bad/$f"))")
done
for f in "${utt_files[@]}"; do
  # Utterances other files have but this one lacks (its empty or malformed lines are reported above).
  comm -23 "$tmp/all" "$tmp/keys/$f" | comm -23 - "$tmp/empty/$f" | comm -23 - "$tmp/bad/$f" > "$tmp/missing"
  if [ "$f" = segments ]; then
    comm -23 "$tmp/missing" "$tmp/no_reco" > "$tmp/missing.new"
    mv "$tmp/missing.new" "$tmp/missing"
  fi
  n=$(wc -l < "$tmp/missing")
  [ "$n" -gt 0 ] && report+=("$f: lacks $n utterance(s) that other files have, dropped them ($(examples "$tmp/missing"))")
done
n=$(wc -l < "$tmp/no_reco")
[ "$n" -gt 0 ] && report+=("segments: dropped $n segment(s) whose recording is not in wav.scp ($(examples "$tmp/no_reco"))")

if [ "$n_kept" -eq 0 ]; then
  for line in "${report[@]}"; do say "  $line"; done
  die "no utterance of $data is in all of ${utt_files[*]}; left the directory unchanged"
fi

# Keep only lines whose first field (or, with field=2, second field) is in a key list.
select_by() {
  local keys=$1 file=$2 field=${3:-1}
  awk -v keys="$keys" -v field="$field" '
    BEGIN { while ((getline k < keys) > 0) want[k] = 1 }
    ($field in want)' "$file"
}

for f in "${utt_files[@]}"; do
  select_by "$tmp/kept" "$tmp/clean/$f" | sort > "$tmp/out/$f"
done
if [ -f "$data/segments" ]; then
  awk '{ print $2 }' "$tmp/out/segments" | sort -u > "$tmp/recos"
  for f in "${reco_files[@]}"; do
    select_by "$tmp/recos" "$tmp/clean/$f" | sort > "$tmp/out/$f"
  done
  n=$(( $(wc -l < "$tmp/clean/wav.scp") - $(wc -l < "$tmp/out/wav.scp") ))
  [ "$n" -gt 0 ] && report+=("wav.scp: removed $n recording(s) no kept segment uses")
fi
awk '{ print $2 }' "$tmp/out/utt2spk" | sort -u > "$tmp/speakers"
for f in "${spk_files[@]}"; do
  select_by "$tmp/speakers" "$tmp/clean/$f" | sort > "$tmp/out/$f"
done
"$utils/utt2spk_to_spk2utt.py" "$tmp/out/utt2spk" | sort > "$tmp/out/spk2utt"

rm -rf "$data/.backup"
mkdir "$data/.backup"
find "$data" -maxdepth 1 -type f -exec cp -p {} "$data/.backup/" \;
for f in "$tmp"/out/*; do
  mv -f "$f" "$data/$(basename "$f")"
done

if [ "$n_kept" -eq "$n_all" ]; then
  say "$data: kept all $n_kept utterances"
else
  say "$data: kept $n_kept of $n_all utterances, dropped $(( n_all - n_kept ))"
fi
for line in "${report[@]}"; do say "  $line"; done
say "old files are in $data/.backup"
