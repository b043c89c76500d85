# Sourced by the synth_pool recipes' run.sh.
# timed <name> <command...>: run it, append its wall time and exit status to exp/timing.tsv (with the
# recipe's folder name, e.g. ssl1 or asr1) and say it on stderr; returns the command's status.
timed() {
  local name=$1 t0=$SECONDS rc=0 recipe
  shift
  recipe=$(basename "$PWD")
  "$@" || rc=$?
  mkdir -p exp
  printf '%s\t%s\t%d\t%d\t%s\n' "$recipe" "$name" $((SECONDS - t0)) "$rc" "$(date '+%F %T')" >> exp/timing.tsv
  echo "$(date '+%F %T') ($recipe/run.sh) $name: $((SECONDS - t0)) s, exit $rc" >&2
  return "$rc"
}
