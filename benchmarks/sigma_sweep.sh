#!/usr/bin/env bash
# The noise scale sigma on the built-in simulated N-MNIST (2-core CPU): the commands behind
# docs/results.md's "Noise scale" table. Every run is the default network (with the leaky read-out
# integrator, readout_beta 0.9, the default when it was measured) and strategy (EGGROLL r=4, N=512,
# 578 -> 128 -> 10) cut to 500 generations (the learning rate's cosine decay follows the shorter
# run); the model is selected on the 450 validation recordings and each run reads the test split
# once at the end. About 25 minutes on a quiet 2-core CPU.
#
#   bash benchmarks/sigma_sweep.sh OUT_DIR
set -euo pipefail
out=${1:?usage: sigma_sweep.sh OUT_DIR}
mkdir -p "$out"
source "$(dirname "$0")/old_defaults.sh"
short=(--no-progress --generations 500 --set network.readout_beta=0.9 "${old_defaults[@]}")  # the leaky read-out of these figures

for seed in 0 1 2; do
  for sigma in 0.02 0.05; do
    eggroll-snn train "${short[@]}" --sigma $sigma --seed $seed --out "$out/sigma-$sigma-seed$seed"
  done
done
eggroll-snn train "${short[@]}" --sigma 0.01 --out "$out/sigma-0.01-seed0"
eggroll-snn train "${short[@]}" --set strategy.sigma_schedule=cosine --set strategy.sigma_final_fraction=0.2 \
  --out "$out/sigma-0.05-cosine-to-0.01-seed0"
eggroll-snn train "${short[@]}" --sigma 0.02 --learning-rate 0.02 --out "$out/sigma-0.02-lr-0.02-seed0"
python3 benchmarks/print_runs.py "$out"/*/summary.json
