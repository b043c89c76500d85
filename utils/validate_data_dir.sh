#!/usr/bin/env bash
# Check a Kaldi data dir (sorted unique ids, files agreeing, non-empty transcripts, readable audio,
# sane segments) and print every problem found.
# Usage: utils/validate_data_dir.sh [--no-audio] [--no-text] data/x
# Exit 0 with "validate_data_dir: data/x is OK (N utterances)", else 1.
# Uses `python` from PATH (path.sh puts the project's venv first).
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "Usage: $0 [--no-audio] [--no-text] <data-dir>" >&2
  [ $# -ge 1 ] && exit 0 || exit 1
fi
# Resolve symlinks (recipes link utils/ to the repo's) so chunkssl is importable from any directory.
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec python -m chunkssl.bin.validate_data_dir "$@"
