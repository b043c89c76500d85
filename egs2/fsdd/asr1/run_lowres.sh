#!/usr/bin/env bash
# Low-resource FSDD: fine-tune on 10 % of the train labels (240 random recordings of data/train) once
# from the Chunk SSL encoder of ../ssl1 (pre-trained on unlabelled FSDD train audio + Libri-Trans +
# synthetic speech) and once from scratch, with the same config and schedule; decode the test split
# offline, with 320/640 ms chunk masks and with the true streaming decoder at 320/640 ms; write
# exp/lowres_<labelled>_s<seed>/RESULTS.md and wer_vs_chunk_lowres.png. Runs ../ssl1/run.sh first
# (finished stages are skipped). Results and what was tried: RESULTS.md.
# Options: --labelled N --seed S --ft-opts "<ESPnet trainer options>", then any asr.sh option.
set -euo pipefail
. ./path.sh
labelled=240
seed=1
ft_opts="--max_epoch 80 --batch_size 16"
ssl_dir=../ssl1
ssl_tag=chunk_conformer_fsdd_6m
. utils/parse_options.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny models: see run.sh

sub=train_${labelled}_s$seed
tag=lowres_${labelled}_s$seed   # exp/asr_${tag}_{scratch,pretrained}
opts=(--valid-set dev --test-sets "test" --nj 2 --token-type bpe --nbpe 55
      --asr-config "$CHUNKSSL_ROOT/conf/asr/chunk_conformer_fsdd.yaml" --inference-model valid.acc.ave.pth
      --decode-chunks "320 640 full" --stream-chunks "320 640" --beam-size 4)

(cd "$ssl_dir" && ./run.sh)
ssl_model=$ssl_dir/exp/ssl_$ssl_tag/valid.acc.best.pth
ssl_cmvn=$ssl_dir/dump/fbank/train/cmvn_stats.npz

# Data and features of the full sets; the unit inventory (the ten digit words) from the full train text.
./asr.sh "${opts[@]}" --train-set train --stop-stage 3 "$@"
[ -d "data/$sub" ] || utils/subset_data_dir.sh --random "$labelled" --seed "$seed" data/train "data/$sub"
# fbank of the subset only (dev and test were made above)
./asr.sh "${opts[@]}" --train-set "$sub" --valid-set "$sub" --test-sets "$sub" --stage 2 --stop-stage 2 "$@"

./asr.sh "${opts[@]}" --train-set "$sub" --stage 4 --asr-tag "${tag}_scratch" --asr-train-opts "$ft_opts" "$@"
# The pre-trained encoder saw features normalised with the SSL corpus's statistics: keep them.
./asr.sh "${opts[@]}" --train-set "$sub" --stage 4 --asr-tag "${tag}_pretrained" --pretrained-model "$ssl_model" \
  --asr-train-opts "$ft_opts --normalize_conf stats_file=$ssl_cmvn" "$@"

mkdir -p exp/$tag
python -m chunkssl.bin.asr_results --exp "pretrained=exp/asr_${tag}_pretrained" --exp "scratch=exp/asr_${tag}_scratch" \
  --sets test --out "exp/$tag/RESULTS.md" --plot wer_vs_chunk_lowres.png \
  --command "cd egs2/fsdd/asr1 && ./run_lowres.sh${*:+ $*}"
echo "Results: $(pwd)/exp/$tag/RESULTS.md, $(pwd)/wer_vs_chunk_lowres.png"
