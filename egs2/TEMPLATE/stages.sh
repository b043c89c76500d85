# Stage helpers shared by the TEMPLATE stage scripts (asr.sh, ssl.sh, st.sh, asr2.sh). Sourced, not run.

log() { echo "$(date '+%F %T') ($(basename "$0"):${BASH_LINENO[0]}) $*" >&2; }

# run_stage N "title": true when stage N lies in [stage, stop_stage]; prints a banner.
run_stage() {
  if [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; then
    # The caller's line, not this one: log() would name the line of this function.
    echo "$(date '+%F %T') ($(basename "$0"):${BASH_LINENO[0]}) Stage $1: $2" >&2
    return 0
  fi
  return 1
}

# stage_data: the corpus-specific data preparation, then a check of every set it must have made.
stage_data() {
  local opts=$1; shift
  # shellcheck disable=SC2086
  local/data.sh $opts
  local s
  for s in "$@"; do
    [ -d "data/$s" ] || { log "local/data.sh did not create data/$s"; return 1; }
  done
}

# stage_fbank: validate each data dir and compute 80-dim log-mel fbank into $dump_dir/fbank/<set>.
# validate_opts="--no-text" lets unlabelled (SSL) sets through.
stage_fbank() {
  local s
  for s in "$@"; do
    # shellcheck disable=SC2086
    utils/validate_data_dir.sh ${validate_opts:-} "data/$s"
    python -m chunkssl.bin.compute_fbank --data-dir "data/$s" --out-dir "$dump_dir/fbank/$s" \
      --nj "$nj" --sample-rate "$fs" --cmd "$train_cmd"
  done
}
