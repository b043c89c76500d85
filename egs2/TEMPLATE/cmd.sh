# How stages run their jobs. Pick the backend with CHUNKSSL_CMD_BACKEND=local|slurm (default local).
# Stages call e.g. `${train_cmd} JOB=1:4 log/x.JOB.log cmd ...`; options after the script name
# (--mem, --gpu, --num-threads, --time) are understood by both backends.
case "${CHUNKSSL_CMD_BACKEND:-local}" in
  local)
    train_cmd="run.pl"
    decode_cmd="run.pl"
    cuda_cmd="run.pl"
    ;;
  slurm)
    train_cmd="slurm.pl --mem 8G --num-threads 4"
    decode_cmd="slurm.pl --mem 4G"
    cuda_cmd="slurm.pl --gpu 1 --mem 16G --num-threads 8"
    ;;
  *)
    echo "cmd.sh: unknown CHUNKSSL_CMD_BACKEND='${CHUNKSSL_CMD_BACKEND}' (use local or slurm)" >&2
    return 1 2>/dev/null || exit 1
    ;;
esac
