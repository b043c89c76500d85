# Sourced by every recipe: the repo's .venv, utils/ on PATH, C collation for Kaldi-style sorting.
CHUNKSSL_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export CHUNKSSL_ROOT
if [ ! -x "$CHUNKSSL_ROOT/.venv/bin/python" ]; then
  echo "path.sh: $CHUNKSSL_ROOT/.venv is missing: run 'make install' in $CHUNKSSL_ROOT first" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH="$CHUNKSSL_ROOT/.venv/bin:$CHUNKSSL_ROOT/utils:$PATH"
export VIRTUAL_ENV="$CHUNKSSL_ROOT/.venv"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
