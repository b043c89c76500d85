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

# stage_fbank: validate each data dir and compute 80-dim log-mel fbank into $dump_dir/fbank/<set>; with
# feats_type=raw, only the audio.scp manifest, frame counts and CMVN stats into $dump_dir/raw/<set> (the
# fbank is made again by the model's kaldi_fbank frontend, identically).
# validate_opts="--no-text" lets unlabelled (SSL) sets through.
stage_fbank() {
  local s raw=()
  [ "${feats_type:-fbank}" = raw ] && raw=(--raw)
  for s in "$@"; do
    # shellcheck disable=SC2086
    utils/validate_data_dir.sh ${validate_opts:-} "data/$s"
    python -m chunkssl.bin.compute_fbank --data-dir "data/$s" --out-dir "$dump_dir/${feats_type:-fbank}/$s" \
      --nj "$nj" --sample-rate "$fs" --cmd "$train_cmd" "${raw[@]}"
  done
}

# train_feats: what the training sets are read from, by $feats_type: train_fb (their lists' folder),
# speech_list/speech_type (the ESPnet data option) and frontend_opts (raw: our kaldi_fbank frontend makes the
# fbank in the model; fbank: none, the features are dumped). Exits on an unknown type.
train_feats() {
  case "${feats_type:-fbank}" in
    fbank) train_fb=$dump_dir/fbank; speech_list=feats.scp; speech_type=kaldi_ark; frontend_opts=() ;;
    raw) train_fb=$dump_dir/raw; speech_list=audio.scp; speech_type=audio_$fs
      frontend_opts=(--frontend kaldi_fbank --frontend_conf "fs=$fs") ;;
    *) log "--feats-type must be fbank or raw, got '$feats_type'"; exit 2 ;;
  esac
}

# speech_data <dir>: the ESPnet data option of the speech of the set in <dir> (after train_feats)
speech_data() { echo "$1/$speech_list,speech,$speech_type"; }

# stage_train_and_test_feats "<training sets>" "<decoding sets>": stage_fbank of the training sets by
# $feats_type, and of the decoding sets as dumped fbank (batch decoding reads it; it is small)
stage_train_and_test_feats() {
  # shellcheck disable=SC2086
  stage_fbank $1
  if [ "${feats_type:-fbank}" = raw ]; then
    # shellcheck disable=SC2086
    (feats_type=fbank; stage_fbank $2)
  else
    # shellcheck disable=SC2046,SC2086
    stage_fbank $(comm -13 <(tr ' ' '\n' <<< "$1" | sort -u) <(tr ' ' '\n' <<< "$2" | sort -u))
  fi
}

# stage_shapes <exp> <dir> <dim> <set...>: ESPnet shape files <exp>/stats/<set>/speech_shape ("utt frames,dim")
# from <dir>/<set>/utt2num_frames.
stage_shapes() {
  local exp=$1 dir=$2 dim=$3 s
  shift 3
  for s in "$@"; do
    mkdir -p "$exp/stats/$s"
    awk -v d="$dim" '{print $1, $2 "," d}' "$dir/$s/utt2num_frames" > "$exp/stats/$s/speech_shape.tmp"
    mv "$exp/stats/$s/speech_shape.tmp" "$exp/stats/$s/speech_shape"
  done
}

# A stamp records what made a stage's output: the command (shell-quoted) and the md5 of each input
# file, so the work is redone when the options change, and when an input is replaced by a file with
# other content even if that file is older (copied with its time, restored from a backup).
_stamp_text() {  # _stamp_text <inputs...> -- <command...>
  local inputs=() f
  while [ $# -gt 0 ] && [ "$1" != -- ]; do inputs+=("$1"); shift; done
  shift
  printf '%q ' "$@"
  echo
  for f in "${inputs[@]}"; do
    [ -e "$f" ] || { echo "missing $f"; continue; }
    echo "$(md5sum < "$f" | cut -d' ' -f1) $f"
  done
}

# made <stamp> <output> <inputs...> -- <command...>: true (and logs the stamp's folder) when <output> exists,
# is newer than every input and <stamp> holds this command and these inputs' checksums (written by
# stamp_made); else the stamp is removed, before the work it vouched for is redone.
made() {
  local stamp=$1 out=$2 arg
  shift 2
  if [ -e "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$(_stamp_text "$@")" ]; then
    for arg in "$@"; do
      [ "$arg" = -- ] && { log "$(dirname "$stamp") is up to date"; return 0; }
      [ "$out" -nt "$arg" ] || break
    done
  fi
  rm -f "$stamp"
  return 1
}

# stamp_made <stamp> <inputs...> -- <command...>: remember what made an output, once the command succeeded.
stamp_made() {
  local stamp=$1
  shift
  _stamp_text "$@" > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
}

# decoded <dir> <model> <command...>: true (and logs it) when <dir> holds a finished decode of <model> by
# exactly this command: <dir>/text newer than <model>, no failed utterance (<dir>/failed) and the command
# in <dir>/.options (written by stamp_decoded). Other options (e.g. --beam-size 1) decode again.
decoded() {
  local dir=$1 model=$2
  shift 2
  if [ -s "$dir/text" ] && [ ! -e "$dir/failed" ] && [ "$dir/text" -nt "$model" ] \
    && [ "$(cat "$dir/.options" 2>/dev/null)" = "$(printf '%q ' "$@")" ]; then
    log "$dir is up to date"
    return 0
  fi
  rm -f "$dir/.options"  # the stamp goes before the work it vouches for is redone
  return 1
}

# stamp_decoded <dir> <command...>: remember the command of a decode that succeeded.
stamp_decoded() {
  local dir=$1
  shift
  printf '%q ' "$@" > "$dir/.options"
}

# decode_into <dir> <command...>: decode $asr_exp/$inference_model under $decode_cmd (log <dir>/decode.log)
# unless decoded; the stamp is written only when the decoder succeeded.
decode_into() {
  local dir=$1
  shift
  decoded "$dir" "$asr_exp/$inference_model" "$@" && return 0
  ${decode_cmd} "$dir/decode.log" "$@"
  stamp_decoded "$dir" "$@"
}

# stage_chunk_decode <module> <input option> <input path with SET for the set> [options...]: batch decoding
# of every $test_sets set at every $decode_chunks size into $asr_exp/decode_<set>/offline_<chunk>.
stage_chunk_decode() {
  local module=$1 opt=$2 path=$3 s c dir
  shift 3
  for s in $test_sets; do
    for c in $decode_chunks; do
      dir=$asr_exp/decode_$s/offline_$c
      decode_into "$dir" python -m "$module" "${model_args[@]}" --num-threads 1 \
        "$opt" "${path//SET/$s}" --chunk-ms "$c" --output-dir "$dir" "$@"
    done
  done
}

# stage_stream_decode <module>: true streaming decoding of every $test_sets set (data/<set>/wav.scp and
# segments) at every $stream_chunks size into $asr_exp/decode_<set>/stream_<chunk>.
stage_stream_decode() {
  local module=$1 s c dir seg
  for s in $test_sets; do
    seg=()
    [ -f "data/$s/segments" ] && seg=(--segments "data/$s/segments")
    for c in $stream_chunks; do
      dir=$asr_exp/decode_$s/stream_$c
      decode_into "$dir" python -m "$module" "${model_args[@]}" --num-threads 1 \
        --wav-scp "data/$s/wav.scp" "${seg[@]}" --chunk-ms "$c" --output-dir "$dir"
    done
  done
}

# stage_score: WER of every decode dir of $asr_exp against $fb/<set>/text, then $asr_exp/RESULTS.md and
# its WER-vs-chunk plot (tag $asr_tag, command $cmdline).
stage_score() {
  local s dir
  for s in $test_sets; do
    for dir in "$asr_exp/decode_$s"/*/; do
      [ -s "$dir/text" ] || continue
      python -m chunkssl.bin.score_asr --ref "$fb/$s/text" --hyp "$dir/text" --out-dir "$dir/score" --name "$s" \
        | grep -E "WER|CER" | sed "s|^|$(basename "$dir"): |" >&2 || true
    done
  done
  python -m chunkssl.bin.asr_results --exp "$asr_tag=$asr_exp" --sets $test_sets --out "$asr_exp/RESULTS.md" \
    --plot "$asr_exp/wer_vs_chunk.png" --command "$cmdline"
}
