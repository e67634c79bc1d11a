#!/usr/bin/env bash
# The default run and its baselines on one CPU (built-in simulated N-MNIST): the commands behind
# README's headline table and docs/results.md's "The default run on a 2-core CPU".
#   1. the defaults as a user runs them (train.time_budget_s = 570 s fixes the generation count
#      on this machine; each run's budget.json says what was measured), seeds 0, 1, 2;
#   2. the linear read-out on the same frames and splits, seeds 0, 1, 2;
#   3. a screen of population, minibatch and rank at a fixed generation count, seed 0: generation
#      counts chosen so that each row takes about the same 9-10 minutes on a 2-core AMD EPYC.
#   4. the screen's first row (rank 1, N = 1,024, B = 128, 8,000 generations) on seeds 1 and 2.
#   bash benchmarks/cpu_defaults.sh OUT [defaults|baseline|screen|rank1-seeds]...
set -euo pipefail
out=${1:?usage: cpu_defaults.sh OUT [defaults|baseline|screen|rank1-seeds]...}; shift
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(defaults baseline screen)
for part in "${parts[@]}"; do
  case $part in
    defaults)
      for seed in 0 1 2; do eggroll-snn train --seed $seed --no-progress --out "$out/default-s$seed" | tail -1; done ;;
    baseline)
      for seed in 0 1 2; do eggroll-snn baseline --set train.seed=$seed | tail -1; done ;;
    screen)
      while read -r name population batch rank generations; do
        eggroll-snn train --seed 0 --no-progress --population-size "$population" --batch-size "$batch" --rank "$rank" \
          --generations "$generations" --out "$out/screen-$name" | tail -1
      done <<'ROWS'
n1024-b128-r1 1024 128 1 8000
n1024-b256-r1 1024 256 1 3400
n2048-b128-r1 2048 128 1 3100
n4096-b256-r1 4096 256 1 800
ROWS
      ;;
    rank1-seeds)
      for seed in 1 2; do
        eggroll-snn train --seed $seed --no-progress --population-size 1024 --batch-size 128 --rank 1 --generations 8000 \
          --out "$out/screen-n1024-b128-r1-s$seed" | tail -1
      done ;;
    *) echo "cpu_defaults.sh: unknown part $part (defaults, baseline, screen or rank1-seeds)" >&2; exit 2 ;;
  esac
done
