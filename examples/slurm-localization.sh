#!/usr/bin/env bash
# A localization study as a Slurm job array: 8 shards, one GPU each, then a merge that needs no
# model and starts only once every shard succeeded. Submit with: bash examples/slurm-localization.sh
# Each shard finds its part from SLURM_ARRAY_TASK_ID/MIN/STEP/COUNT (--shard auto); a shard that
# is requeued resumes its own results file.
set -euo pipefail
SHARDS=${SHARDS:-8}
OUT=${OUT:-results/localization}
DENO=${DENO:-deno}
PERMISSIONS="--allow-read --allow-write --allow-env --allow-ffi --allow-sys"
mkdir -p "$OUT" logs

job=$(sbatch --parsable --array=0-$((SHARDS - 1)) --gres=gpu:1 --cpus-per-task=4 \
  --job-name=infodiff-localize --output=logs/localize-%A_%a.out \
  --wrap="$DENO run $PERMISSIONS examples/shard-study.ts --shard auto --out $OUT")

sbatch --dependency=afterok:"$job" --job-name=infodiff-merge --output=logs/merge-%j.out \
  --wrap="$DENO run $PERMISSIONS src/cli/main.ts merge $OUT/shard-*-of-$SHARDS.jsonl -o $OUT/all.jsonl"
echo "submitted shards as job $job and their merge after it"
