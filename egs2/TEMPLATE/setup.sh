#!/usr/bin/env bash
# Create a recipe folder: egs2/TEMPLATE/setup.sh egs2/<corpus>/<task>   (task: asr1, ssl1, st1, asr2)
# It links the shared scripts; you then write local/data.sh and a run.sh that calls the stage script.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "Usage: $0 egs2/<corpus>/<task>   (task is one of: $(ls -d "$(dirname "$0")"/*/ | xargs -n1 basename | tr '\n' ' '))" >&2
  exit 1
fi
template=$(cd "$(dirname "$0")" && pwd)
dir=$1
task=$(basename "$dir")
if [ ! -d "$template/$task" ]; then
  echo "$0: unknown task '$task' in '$dir': the last folder must be one of: $(ls -d "$template"/*/ | xargs -n1 basename | tr '\n' ' ')" >&2
  exit 1
fi
mkdir -p "$dir/local" "$dir/conf"
dir=$(cd "$dir" && pwd)
rel() { python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$1" "$dir"; }
link() {  # link <target> <name>: replace a stale link, never a real file
  if [ -e "$dir/$2" ] && [ ! -L "$dir/$2" ]; then
    echo "$0: $dir/$2 exists and is not a link; leaving it" >&2
  else
    ln -sfn "$(rel "$1")" "$dir/$2"
  fi
}
link "$template/path.sh" path.sh
link "$template/cmd.sh" cmd.sh
link "$template/db.sh" db.sh
link "$template/../../utils" utils
for f in "$template/$task"/*.sh; do
  [ -e "$f" ] && link "$f" "$(basename "$f")"
done
if [ "$task" = st1 ]; then  # an ST encoder starts from an English ASR (asr.sh) or Chunk SSL (ssl.sh) model
  link "$template/asr1/asr.sh" asr.sh
  link "$template/ssl1/ssl.sh" ssl.sh
fi
if [ ! -e "$dir/local/data.sh" ]; then
  cat > "$dir/local/data.sh" <<'EOS'
#!/usr/bin/env bash
# Write Kaldi data dirs data/<set>/{wav.scp,text,utt2spk,spk2utt} for this corpus.
set -euo pipefail
. ./db.sh
echo "local/data.sh: write the data preparation for this corpus" >&2
exit 1
EOS
  chmod +x "$dir/local/data.sh"
fi
echo "Created $dir (now write local/data.sh and run.sh)"
