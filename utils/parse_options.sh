# Kaldi-style option parsing, meant to be *sourced* after a script sets its defaults:
#
#   stage=1; stop_stage=100; nj=4
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#
# Leading "--name value" or "--name=value" arguments set the shell variable "name"
# (dashes map to underscores, so --stop-stage sets stop_stage).  Only variables the
# script already defined are accepted, so a typo is an error instead of a silent no-op.
# A variable whose default is true/false only takes true/false.  "--config FILE"
# sources FILE (name=value lines) before the other options are applied, so options on
# the command line win.  "--help"/"-h" prints help_message and the current defaults.
# Parsing stops at the first argument not starting with "--" or at "--"; what is left
# stays in "$@".  Every helper variable here starts with __po_ and is unset afterwards.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "parse_options.sh: this file must be sourced (. utils/parse_options.sh), not run" >&2
  exit 1
fi

__po_prog=$(basename -- "$0")
__po_caller=${BASH_SOURCE[1]:-$0}

# Names of variables the calling script assigns before sourcing us, for --help.
__po_list_defaults() {
  local __po_line __po_word __po_words
  [[ -r "$__po_caller" ]] || return 0
  while IFS= read -r __po_line || [[ -n "$__po_line" ]]; do
    [[ "$__po_line" =~ ^[[:space:]]*# ]] && continue
    # Assignments on the same line as the source command (a=1; . parse_options.sh) count.
    read -ra __po_words <<< "${__po_line//;/ }"
    for __po_word in "${__po_words[@]}"; do
      [[ "$__po_word" =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]] && echo "${BASH_REMATCH[1]}"
    done
    [[ "$__po_line" == *parse_options.sh* ]] && break
  done < "$__po_caller"
}

# Locals carry the __po_ prefix so they never shadow the caller's variable being printed.
__po_help() {
  local __po_n __po_seen=" "
  if [[ -n "${help_message:-}" ]]; then
    printf '%s\n' "$help_message"
  else
    echo "Usage: $__po_prog [options] ..."
  fi
  echo "Options (current values):"
  while IFS= read -r __po_n; do
    [[ "$__po_n" == help_message || "$__po_seen" == *" $__po_n "* ]] && continue
    __po_seen+="$__po_n "
    declare -p "$__po_n" >/dev/null 2>&1 || continue
    printf '  --%-24s %s\n' "${__po_n//_/-}" "'${!__po_n-}'"
  done < <(__po_list_defaults)
  echo "  --config FILE              sources FILE (name=value lines) before the other options"
  echo "  --help                     prints this message"
}

__po_die() {
  echo "$__po_prog: $*" >&2
  exit 1
}

# First pass: split the leading options into name/value pairs without touching any variable,
# so --config can be applied before the rest regardless of its position.
__po_names=()
__po_values=()
__po_consumed=0
__po_args=("$@")
__po_i=0
while (( __po_i < ${#__po_args[@]} )); do
  __po_arg=${__po_args[__po_i]}
  case "$__po_arg" in
    --help|-h)
      __po_help
      exit 0
      ;;
    --)
      __po_consumed=$(( __po_i + 1 ))
      break
      ;;
    --?*=*)
      __po_name=${__po_arg%%=*}
      __po_names+=("${__po_name#--}")
      __po_values+=("${__po_arg#*=}")
      __po_i=$(( __po_i + 1 ))
      ;;
    --?*)
      if (( __po_i + 1 >= ${#__po_args[@]} )); then
        __po_die "option $__po_arg needs a value (see --help)"
      fi
      __po_names+=("${__po_arg#--}")
      __po_values+=("${__po_args[__po_i + 1]}")
      __po_i=$(( __po_i + 2 ))
      ;;
    *)
      break
      ;;
  esac
  __po_consumed=$__po_i
done

for __po_i in "${!__po_names[@]}"; do
  if [[ "${__po_names[__po_i]}" == config ]]; then
    __po_value=${__po_values[__po_i]}
    [[ -f "$__po_value" ]] || __po_die "config file '$__po_value' given with --config does not exist"
    # shellcheck disable=SC1090
    . "$__po_value"
  fi
done

for __po_i in "${!__po_names[@]}"; do
  __po_opt=${__po_names[__po_i]}
  [[ "$__po_opt" == config ]] && continue
  __po_name=${__po_opt//-/_}
  __po_value=${__po_values[__po_i]}
  if [[ ! "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    __po_die "invalid option --$__po_opt (option names are letters, digits, '-' and '_')"
  fi
  if ! declare -p "$__po_name" >/dev/null 2>&1 || [[ "$__po_name" == help_message ]]; then
    __po_die "unknown option --$__po_opt (the script defines no variable '$__po_name'; see --help)"
  fi
  case "${!__po_name-}" in
    true|false)
      case "$__po_value" in
        true|false) ;;
        *) __po_die "option --$__po_opt is boolean: give true or false, not '$__po_value'" ;;
      esac
      ;;
  esac
  printf -v "$__po_name" '%s' "$__po_value"
done

shift "$__po_consumed"

unset -f __po_list_defaults __po_help __po_die
unset __po_prog __po_caller __po_names __po_values __po_consumed __po_args __po_i __po_arg \
  __po_name __po_opt __po_value
true
