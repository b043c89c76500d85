#!/usr/bin/env bash
# Download into .whl/ (ignored by git) the wheels that bench/gpu_check.sh installs on a GPU machine
# that has Python 3.12 and torch but neither espnet nor a network. Run it here, from any folder, on a
# machine that reaches PyPI:  bash bench/gpu_wheels.sh
#
# Versions come from constraints.txt (the venv's lock), so the GPU runs the code the tests ran.
# What is carried: espnet and those of its runtime requirements that such a machine lacks, the
# packages chunkssl imports on the paths gpu_check.py runs (kaldiio), and torchaudio, which
# gpu_check.sh installs only where the machine has none (chunkssl computes fbank with it).
# Not carried: torch and the nvidia-* / triton packages (the machine has them; they are GBs), the
# packages the machine's image already has (numpy, scipy, PyYAML, sentencepiece, tqdm, einops,
# filelock, packaging, huggingface-hub, numba, scikit-learn, ...), and hydra-core / omegaconf, which
# need antlr4-python3-runtime, published as a source archive only; no code path used here imports them.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$repo/.whl
python=${PYTHON:-python3}
max_mib=50

packages=(
  espnet configargparse typeguard humanfriendly omniio torch-complex espnet-model-zoo  # espnet's
  librosa decorator pooch platformdirs soxr                                           # librosa's
  soundfile cffi pycparser                                                            # soundfile's
  kaldiio                                                                             # chunkssl's
  torchaudio                                                                          # if missing
)

# NAME==VERSION from constraints.txt, matching names as pip does (case, '-', '_' and '.' alike)
pin() {
  awk -F'==' -v want="$1" '
    function norm(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s }
    !/^#/ && norm($1) == norm(want) { print $1 "==" $2; found = 1; exit }
    END { exit !found }' "$repo/constraints.txt" \
    || { echo "gpu_wheels.sh: $1 is not pinned in constraints.txt" >&2; exit 1; }
}

mkdir -p "$dest"
rm -f "$dest"/*.whl  # one version of each: two would stop the install on the GPU machine
for name in "${packages[@]}"; do
  spec=$(pin "$name")
  echo "downloading $spec"
  # --only-binary: wheels only (pure ones are py3-none-any and match these tags too)
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" "$spec" 2> >(grep -v "^WARNING: Location" >&2)
done

count=$(ls "$dest"/*.whl | wc -l)
if [ "$count" -ne "${#packages[@]}" ]; then
  echo "gpu_wheels.sh: expected ${#packages[@]} wheels in $dest, found $count" >&2
  exit 1
fi
kib=$(du -sk "$dest" | cut -f1)
echo "$count wheels, $((kib / 1024)) MiB in $dest"
if [ "$kib" -gt $((max_mib * 1024)) ]; then
  echo "gpu_wheels.sh: $dest is over $max_mib MiB; the working tree that travels to the GPU is limited to 64 MiB" >&2
  exit 1
fi
