#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter (espnet==202611 needs it), or fail saying where we looked.
set -u
candidates=()
for name in python3.12 python3.13; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for p in "$root"/versions/3.12.*/bin/python "$root"/versions/3.13.*/bin/python; do
    [ -x "$p" ] && candidates+=("$p")
  done
fi
p=$(command -v python3 2>/dev/null) && candidates+=("$p")
for p in "${candidates[@]}"; do
  if "$p" -c 'import sys, venv; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
    echo "$p"
    exit 0
  fi
done
echo "find_python.sh: no Python 3.12 or 3.13 found (looked for python3.12, python3.13, pyenv versions 3.12.*/3.13.*, python3)." >&2
echo "Install one (e.g. 'pyenv install 3.12' or your distribution's python3.12 with venv), or run: make install PYTHON=/path/to/python3.12" >&2
exit 1
