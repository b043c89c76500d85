#!/usr/bin/env bash
# combine_groups.sh "NAME=SUB1,SUB2 NAME2=SUB3,SUB4": for each group, utils/combine_data.sh data/NAME from
# data/SUB1 data/SUB2 ... (subset names with '-' map to data dirs with '_', as the corpus preps write them).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
for group in $*; do
  name=${group%%=*}
  parts=${group#*=}
  if [ "$name" = "$group" ] || [ -z "$parts" ]; then
    echo "$0: --combine expects NAME=SUBSET1,SUBSET2,..., got '$group'" >&2
    exit 1
  fi
  dirs=()
  for s in ${parts//,/ }; do dirs+=("data/${s//-/_}"); done
  "$here/combine_data.sh" "data/$name" "${dirs[@]}"
done
