#!/usr/bin/env bash
# Issue 12's budget study: continue a shipped cpu run's last stage to 2x and then 4x its budget, in new run folders
# beside it (the shipped runs are never touched), and evaluate each on the three splits with 5 trials per object.
#   tools/extend_budget.sh OUT RUN PRESET STAGE_STEPS ENV_KWARGS...   (ENV_KWARGS as the run's command.txt has them)
# Each leg is `train -i <previous leg> -n <steps>` (weights and normalisation statistics carried, the step count
# continued) and is skipped when its final model exists, so the script resumes after a kill at leg granularity.
set -euo pipefail
out=$1 run=$2 preset=$3 stage_steps=$4; shift 4
python=${PYTHON:-python}
previous=$out/$run/ResDexHyper-v0.zip
for scale in 2x 4x; do
  leg=$out/$run-$scale
  if [ "$scale" = 2x ]; then steps=$stage_steps; else steps=$((2 * stage_steps)); fi
  if [ ! -f "$leg/ResDexHyper-v0.zip" ]; then
    rm -rf "$leg"  # a leg killed part-way restarts whole: its folder has no final model yet
    "$python" -m resdex_sb3.train --algo ppo --env ResDexHyper --preset "$preset" --run-dir "$leg" --seed 0 \
      -tb "$leg/tb" --env-kwargs "$@" -i "$previous" -n "$steps"
  fi
  for split in train unseen_obj unseen_cat; do
    json=$out/eval/$run-$scale-$split.json
    [ -f "$json" ] || "$python" -m resdex_sb3.evaluate --model "$leg" --split "$split" --trials 5 --json "$json"
  done
  previous=$leg/ResDexHyper-v0.zip
done
