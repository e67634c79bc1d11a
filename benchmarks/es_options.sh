#!/usr/bin/env bash
# ES training options on the built-in simulated N-MNIST (2-core CPU, about 10 minutes): the
# commands behind docs/results.md's "ES training options" table. Each run is the network and strategy of
# benchmarks/sigma_sweep.sh (defaults with the leaky read-out, 500 generations, seeds 0, 1, 2) with
# one option changed; the sigma-0.05 rows of that script are the baseline. The model is selected
# on the 450 validation recordings and each run reads the test split once.
#
#   bash benchmarks/es_options.sh OUT_DIR
set -euo pipefail
out=${1:?usage: es_options.sh OUT_DIR}
mkdir -p "$out"
source "$(dirname "$0")/old_defaults.sh"
short=(--no-progress --generations 500 --set network.readout_beta=0.9 "${old_defaults[@]}")
for seed in 0 1 2; do
  eggroll-snn train "${short[@]}" --seed $seed --set train.batch_size=256 --out "$out/batch-256-seed$seed"
  eggroll-snn train "${short[@]}" --seed $seed --set strategy.weight_decay=0.1 --out "$out/decay-0.1-seed$seed"
done
python3 benchmarks/print_runs.py "$out"/*/summary.json
