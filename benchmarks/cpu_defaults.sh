#!/usr/bin/env bash
# The default run and its baselines on one CPU (built-in simulated N-MNIST): the commands behind
# README's headline table and docs/results.md's "The default run on a 2-core CPU".
#   1. the defaults as a user runs them (train.time_budget_s = 570 s fixes the generation count
#      on this machine; each run's budget.json says what was measured), seeds 0, 1, 2;
#   2. the linear read-out on the same frames and splits, seeds 0, 1, 2;
#   3. a screen of population, minibatch and rank at a fixed generation count, seed 0: generation
#      counts chosen so that each row takes about the same 9-10 minutes on a 2-core AMD EPYC.
#   4. the screen's first row (rank 1, N = 1,024, B = 128, 8,000 generations) on seeds 1 and 2.
#   5. time-budgeted runs (570 s, as a user runs them) with the fast forward of 2026-12-05:
#      rank 1 at N = 1,024, 4,096 and 8,192 on seed 0 (budget-screen), then the chosen row on seeds 1
#      and 2 at seed 0's generation count (budget-seeds-nN).
#   6. the defaults with event drops (train.augment_drop_event = 0.3): seed 0 time-budgeted, seeds 1
#      and 2 at seed 0's generation count (budget-drop).
#   7. regularisers at the defaults' length (22,320 generations, what the budget fixed for the
#      defaults on a 2-core AMD EPYC), seed 0, test split not read (option selection): sigma 0.1
#      and 0.2, weight decay 0.1, and the defaults with every checkpoint kept (for
#      benchmarks/checkpoint_average.py) (regularise); then sigma 0.1 on seeds 1 and 2 (test read)
#      and the defaults on seeds 1 and 2 (test not read) for their validation curves (sigma-seeds).
#      benchmarks/runs_table.py OUT/reg-* prints the table.
#   bash benchmarks/cpu_defaults.sh OUT [defaults|defaults-r4|baseline|screen|rank1-seeds|budget-screen|budget-seeds-nN|budget-drop|regularise|sigma-seeds]...
set -euo pipefail
out=${1:?usage: cpu_defaults.sh OUT [part]...}; shift
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(defaults baseline screen)
# Every part but "defaults" was measured with sigma 0.05, the default before 2026-12-06: it is pinned.
old=(--sigma 0.05)
for part in "${parts[@]}"; do
  case $part in
    defaults)
      for seed in 0 1 2; do eggroll-snn train --seed $seed --no-progress --out "$out/default-s$seed" | tail -1; done ;;
    defaults-r4)  # the defaults before 2026-12-05 (rank 4)
      for seed in 0 1 2; do eggroll-snn train "${old[@]}" --seed $seed --no-progress --rank 4 --out "$out/default-r4-s$seed" | tail -1; done ;;
    baseline)
      for seed in 0 1 2; do eggroll-snn baseline --set train.seed=$seed | tail -1; done ;;
    screen)
      while read -r name population batch rank generations; do
        eggroll-snn train "${old[@]}" --seed 0 --no-progress --population-size "$population" --batch-size "$batch" --rank "$rank" \
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
        eggroll-snn train "${old[@]}" --seed $seed --no-progress --population-size 1024 --batch-size 128 --rank 1 --generations 8000 \
          --out "$out/screen-n1024-b128-r1-s$seed" | tail -1
      done ;;
    budget-screen)
      for population in 1024 4096 8192; do
        eggroll-snn train "${old[@]}" --seed 0 --no-progress --rank 1 --population-size $population --out "$out/budget-n$population-r1-s0" | tail -1
      done ;;
    budget-seeds-n*)  # N: a population of budget-screen
      # Seeds 1 and 2 at the generation count seed 0's budget fixed (its budget.json), so that a
      # noisy first measurement (another process starting beside it) does not change the length.
      population=${part#budget-seeds-n}
      generations=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['generations'])" "$out/budget-n$population-r1-s0/budget.json")
      for seed in 1 2; do
        eggroll-snn train "${old[@]}" --seed $seed --no-progress --rank 1 --population-size $population --generations "$generations" \
          --out "$out/budget-n$population-r1-s$seed" | tail -1
      done ;;
    budget-drop)
      drop=(--set train.augment_drop_event=0.3)
      eggroll-snn train "${old[@]}" --seed 0 --no-progress "${drop[@]}" --out "$out/budget-drop0.3-s0" | tail -1
      generations=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['generations'])" "$out/budget-drop0.3-s0/budget.json")
      for seed in 1 2; do
        eggroll-snn train "${old[@]}" --seed $seed --no-progress "${drop[@]}" --generations "$generations" --out "$out/budget-drop0.3-s$seed" | tail -1
      done ;;
    regularise)
      length=(--generations 22320 --no-progress --set train.evaluate_test=false)
      eggroll-snn train --seed 0 "${length[@]}" --sigma 0.1 --out "$out/reg-sigma0.1-s0" | tail -1
      eggroll-snn train --seed 0 "${length[@]}" --sigma 0.2 --out "$out/reg-sigma0.2-s0" | tail -1
      eggroll-snn train "${old[@]}" --seed 0 "${length[@]}" --set strategy.weight_decay=0.1 --out "$out/reg-wd0.1-s0" | tail -1
      eggroll-snn train "${old[@]}" --seed 0 "${length[@]}" --set train.keep_checkpoints=1000 --out "$out/reg-defaults-s0" | tail -1
      python3 benchmarks/checkpoint_average.py "$out/reg-defaults-s0" ;;
    sigma-seeds)
      for seed in 1 2; do
        eggroll-snn train --seed $seed --generations 22320 --no-progress --sigma 0.1 --out "$out/reg-sigma0.1-s$seed" | tail -1
      done
      for seed in 1 2; do
        eggroll-snn train "${old[@]}" --seed $seed --generations 22320 --no-progress --set train.evaluate_test=false \
          --out "$out/reg-defaults-s$seed" | tail -1
      done ;;
    *) echo "cpu_defaults.sh: unknown part $part (defaults, defaults-r4, baseline, screen, rank1-seeds, budget-screen, budget-seeds-nN, budget-drop, regularise or sigma-seeds)" >&2; exit 2 ;;
  esac
done
