#!/usr/bin/env bash
# The GPU check in one script, for a GPU machine with Python 3.12 and torch but no espnet and no
# network: installs the wheels carried in .whl/ (made here by bench/gpu_wheels.sh), then runs
# bench/gpu_check.py (SSL and ASR training steps, streaming decoding, CPU comparisons, throughput)
# under a time limit. Run from anywhere on that machine:
#
#   bash bench/gpu_check.sh [gpu_check.py options, e.g. --steps 20 --batch-seconds 600]
#
# Writes gpu_check.log and gpu_check.json to $OUT when it is set, else to a new folder under /tmp.
# Environment: GPU_CHECK_LIMIT_S (default 470: all of it, the install included, stays under 8 minutes),
# DEVICE (default cuda), PYTHON (default python3), SITE (where the wheels go, default /tmp/site).
set -uo pipefail

start=$SECONDS
limit=${GPU_CHECK_LIMIT_S:-470}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
site=${SITE:-/tmp/site}
out=${OUT:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$out"
log=$out/gpu_check.log
cd "$repo" || exit 1

shopt -s nullglob
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
  if "$python" -c "import torchaudio.compliance.kaldi" 2>/dev/null; then
    # the machine's torchaudio is built for its torch; the carried one is only for machines without
    keep=()
    for w in "${wheels[@]}"; do [[ $w == .whl/torchaudio-* ]] || keep+=("$w"); done
    wheels=("${keep[@]}")
  fi
  echo "installing ${#wheels[@]} carried wheels into $site" | tee "$log"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "${wheels[@]}" 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "gpu_check.sh: installing the wheels failed" | tee -a "$log"; exit 1; }
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
elif ! "$python" -c "import espnet" 2>/dev/null; then
  echo "gpu_check.sh: espnet is not installed and no wheels are in $repo/.whl:" \
       "run 'bash bench/gpu_wheels.sh' where PyPI is reachable and carry .whl along" | tee "$log"
  exit 1
fi
export PYTHONPATH=$repo:$PYTHONPATH PYTHONUNBUFFERED=1

command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee -a "$log"
left=$((limit - (SECONDS - start)))
timeout --kill-after=10 "$left" "$python" bench/gpu_check.py --device "${DEVICE:-cuda}" \
  --json "$out/gpu_check.json" "$@" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "gpu_check.sh: stopped at the time limit (${limit} s in all); the lines above are what finished" | tee -a "$log"
fi
echo "gpu_check.sh: exit status $rc after $((SECONDS - start)) s; log in $log" | tee -a "$log"
exit "$rc"
