#!/usr/bin/env bash
# Copy a subset of a Kaldi-style data dir: every per-utterance file filtered to the chosen
# utterances, wav.scp/reco2* to their recordings when there are segments, spk2gender/cmvn.scp
# to their speakers, and spk2utt regenerated.  Run utils/fix_data_dir.sh on <src> first if
# its files may disagree.
set -euo pipefail
export LC_ALL=C

utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=subset_data_dir.sh

first=0
last=0
random=0
shortest=0
utt_list=""
spk_list=""
seed=777
help_message="Usage: $prog <selection> <src-data-dir> <dest-data-dir>
       $prog [--seed S] <src-data-dir> <N> <dest-data-dir>   (N random utterances, Kaldi style)
Selections (exactly one):
  --first N        the first N utterances (in sorted order)
  --last N         the last N utterances
  --random N       N utterances drawn at random; --seed S makes the draw repeatable
  --shortest N     the N shortest utterances (needs utt2dur, utt2num_frames or segments)
  --utt-list FILE  the utterances whose ids are the first field of FILE's lines
  --spk-list FILE  all utterances of the speakers listed in FILE
e.g. $prog --first 100 data/train data/train_100"
. "$utils/parse_options.sh"

die() { echo "$prog: $*" >&2; exit 1; }
usage() { echo "$help_message" >&2; exit 1; }

case $# in
  2) src=${1%/}; dest=${2%/} ;;
  3) src=${1%/}; random=$2; dest=${3%/} ;;
  *) usage ;;
esac

modes=0
for n in first last random shortest; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || die "--$n needs a whole number, not '${!n}'"
  [ "${!n}" -gt 0 ] && modes=$((modes + 1))
done
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed needs a whole number, not '$seed'"
[ -n "$utt_list" ] && modes=$((modes + 1))
[ -n "$spk_list" ] && modes=$((modes + 1))
[ "$modes" -eq 1 ] || die "choose exactly one of --first, --last, --random (or N), --shortest, --utt-list, --spk-list (see --help)"

[ -f "$src/utt2spk" ] || die "$src/utt2spk not found: is $src a data dir?"
[ -f "$src/wav.scp" ] || die "$src/wav.scp not found: is $src a data dir?"
if [ -d "$dest" ] && [ "$(cd "$src" && pwd -P)" = "$(cd "$dest" && pwd -P)" ]; then
  die "source and destination are the same directory ($src)"
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.subset.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

total=$(awk 'NF' "$src/utt2spk" | wc -l)
need() {
  [ "$1" -le "$total" ] || die "asked for $1 utterances but $src has only $total"
}

if [ "$first" -gt 0 ]; then
  need "$first"
  awk 'NF { print $1 }' "$src/utt2spk" | head -n "$first" > "$tmp/utts"
elif [ "$last" -gt 0 ]; then
  need "$last"
  awk 'NF { print $1 }' "$src/utt2spk" | tail -n "$last" > "$tmp/utts"
elif [ "$random" -gt 0 ]; then
  need "$random"
  # Perl's rand is drand48 everywhere, so a seed gives the same subset on every machine.
  awk 'NF { print $1 }' "$src/utt2spk" | perl -e '
    my ($n, $seed) = @ARGV; srand($seed);
    my @u = <STDIN>;
    for (my $i = 0; $i < $n; $i++) { my $j = $i + int(rand(@u - $i)); @u[$i, $j] = @u[$j, $i]; }
    print @u[0 .. $n - 1];' "$random" "$seed" > "$tmp/utts"
elif [ "$shortest" -gt 0 ]; then
  need "$shortest"
  if [ -f "$src/utt2dur" ]; then
    awk 'NF { print $1, $2 }' "$src/utt2dur"
  elif [ -f "$src/utt2num_frames" ]; then
    awk 'NF { print $1, $2 }' "$src/utt2num_frames"
  elif [ -f "$src/segments" ]; then
    awk 'NF { if ($4 < 0) { print "segments line " NR " has end " $4 ": durations unknown" > "/dev/stderr"; exit 1 }
              print $1, $4 - $3 }' "$src/segments"
  else
    die "--shortest needs durations: $src has no utt2dur, utt2num_frames or segments"
  fi > "$tmp/durs"
  # Only utterances of utt2spk count; ties go to the smaller id so the choice is repeatable.
  awk 'NR == FNR { if (NF) keep[$1] = 1; next } ($1 in keep)' "$src/utt2spk" "$tmp/durs" \
    | sort -k2,2g -k1,1 | head -n "$shortest" | awk '{ print $1 }' > "$tmp/utts"
  [ "$(wc -l < "$tmp/utts")" -eq "$shortest" ] || die "only $(wc -l < "$tmp/utts") utterances of $src have a duration; run utils/fix_data_dir.sh $src"
elif [ -n "$utt_list" ]; then
  [ -f "$utt_list" ] || die "--utt-list file $utt_list not found"
  awk 'NR == FNR { if (NF) have[$1] = 1; next } NF && ($1 in have) && !seen[$1]++ { print $1 }' \
    "$src/utt2spk" "$utt_list" > "$tmp/utts"
  n_asked=$(awk 'NF { print $1 }' "$utt_list" | sort -u | wc -l)
  n_found=$(wc -l < "$tmp/utts")
  [ "$n_found" -eq "$n_asked" ] || echo "$prog: warning: $((n_asked - n_found)) of the $n_asked ids in $utt_list are not in $src" >&2
else
  [ -f "$spk_list" ] || die "--spk-list file $spk_list not found"
  awk 'NR == FNR { if (NF) want[$1] = 1; next } NF && ($2 in want) { print $1 }' "$spk_list" "$src/utt2spk" > "$tmp/utts"
  n_asked=$(awk 'NF { print $1 }' "$spk_list" | sort -u | wc -l)
  n_found=$(awk '{ print $2 }' "$src/utt2spk" | sort -u | awk 'NR == FNR { if (NF) want[$1] = 1; next } ($1 in want)' "$spk_list" - | wc -l)
  [ "$n_found" -eq "$n_asked" ] || echo "$prog: warning: $((n_asked - n_found)) of the $n_asked speakers in $spk_list are not in $src" >&2
fi
sort -u -o "$tmp/utts" "$tmp/utts"
n_sel=$(wc -l < "$tmp/utts")
[ "$n_sel" -gt 0 ] || die "the selection matched no utterance of $src"

# Keep the lines of $2 whose field $3 (default 1) is listed in $1.
select_by() {
  awk -v field="${3:-1}" 'NR == FNR { want[$1] = 1; next } NF && ($field in want)' "$1" "$2"
}

utt_files=(utt2spk text feats.scp utt2num_frames utt2dur utt2num_samples utt2lang utt2uniq utt2category)
for path in "$src"/text.*; do
  [ -f "$path" ] && utt_files+=("$(basename "$path")")
done
reco_files=(reco2file_and_channel reco2dur reco2num_samples)
if [ -f "$src/segments" ]; then
  utt_files+=(segments)
  reco_files+=(wav.scp)
else
  utt_files+=(wav.scp)
fi
mkdir "$tmp/out"
for f in "${utt_files[@]}"; do
  [ -f "$src/$f" ] && select_by "$tmp/utts" "$src/$f" | sort > "$tmp/out/$f"
done
if [ -f "$src/segments" ]; then
  awk '{ print $2 }' "$tmp/out/segments" | sort -u > "$tmp/recos"
  for f in "${reco_files[@]}"; do
    [ -f "$src/$f" ] && select_by "$tmp/recos" "$src/$f" | sort > "$tmp/out/$f"
  done
fi
awk '{ print $2 }' "$tmp/out/utt2spk" | sort -u > "$tmp/speakers"
for f in spk2gender cmvn.scp; do
  [ -f "$src/$f" ] && select_by "$tmp/speakers" "$src/$f" | sort > "$tmp/out/$f"
done
"$utils/utt2spk_to_spk2utt.py" "$tmp/out/utt2spk" | sort > "$tmp/out/spk2utt"

# Files an earlier subset left in dest must not survive next to the new ones.
for f in "${utt_files[@]}" "${reco_files[@]}" segments wav.scp spk2gender cmvn.scp spk2utt; do
  rm -f "$dest/$f"
done
rm -f "$dest"/text.*
for f in "$tmp"/out/*; do
  mv -f "$f" "$dest/$(basename "$f")"
done
echo "$prog: copied $n_sel of $total utterances of $src to $dest"
