#!/usr/bin/env bash
# Augmentation on the real N-MNIST subset (../shared/data/nmnist-small), 2-core CPU: the commands
# behind docs/results.md's "Augmentation on the real subset" tables.
#   1. each augmentation's 3-fold cross-validated accuracy on the training split (test not read),
#      configs/nmnist-small.toml (578 -> 128 -> 10, T = 8, N = 512, 300 generations), seed 0;
#   2. the test split, read once per run, with and without the chosen augmentation, EGGROLL and
#      BPTT (2,000 steps), seeds 0, 1, 2.
#   bash benchmarks/augment_cv.sh OUT [CHOSEN_OPTIONS...]
set -euo pipefail
out=${1:?usage: augment_cv.sh OUT [--set train.augment_...=... ...]}; shift
chosen=("$@")
real=(--config configs/nmnist-small.toml --data ../shared/data/nmnist-small --no-progress --generations 300)
declare -A candidates=(
  [none]=""
  [drop-0.3]="--set train.augment_drop_event=0.3"
  [noise-200]="--set train.augment_noise_events=200"
  [flip-0.2]="--set train.augment_flip_polarity=0.2"
  [bins-0.125]="--set train.augment_drop_bins=0.125"
)
if [ ${#chosen[@]} -eq 0 ]; then
  for name in "${!candidates[@]}"; do
    # shellcheck disable=SC2086
    eggroll-snn crossval --folds 3 "${real[@]}" ${candidates[$name]} --out "$out/cv-$name" | tail -1
  done
  exit 0
fi
bptt=(--method bptt --learning-rate 0.003 --set strategy.surrogate_slope=2.0 --generations 2000)
for seed in 0 1 2; do
  eggroll-snn train "${real[@]}" --seed $seed --out "$out/eggroll-none-s$seed" | tail -1
  eggroll-snn train "${real[@]}" "${chosen[@]}" --seed $seed --out "$out/eggroll-augmented-s$seed" | tail -1
  eggroll-snn train "${real[@]}" "${bptt[@]}" --seed $seed --out "$out/bptt-none-s$seed" | tail -1
  eggroll-snn train "${real[@]}" "${bptt[@]}" "${chosen[@]}" --seed $seed --out "$out/bptt-augmented-s$seed" | tail -1
done
