#!/usr/bin/env bash
# What the default read-out without leak (network.readout_beta = 0, an Affine read-out in NIR)
# costs against the leaky read-out integrator (readout_beta = 0.9) on the built-in simulated
# N-MNIST (2-core CPU, about 15 minutes): the commands behind the read-out table of docs/nir.md's
# "NIR export" section.
# The 500-generation runs pair with benchmarks/sigma_sweep.sh's sigma-0.05 rows (readout_beta 0.9,
# the same seeds); the model is selected on the 450 validation recordings, the test split read once.
#
#   bash benchmarks/readout_cost.sh OUT_DIR
set -euo pipefail
out=${1:?usage: readout_cost.sh OUT_DIR}
mkdir -p "$out"
source "$(dirname "$0")/old_defaults.sh"
for seed in 0 1 2; do
  eggroll-snn train --no-progress "${old_defaults[@]}" --generations 500 --set network.readout_beta=0.0 --seed $seed --out "$out/g500-beta0-seed$seed"
done
eggroll-snn train --no-progress "${old_defaults[@]}" --generations 2000 --out "$out/default"
eggroll-snn train --no-progress "${old_defaults[@]}" --generations 2000 --set network.readout_beta=0.9 --out "$out/default-beta0.9"
python3 benchmarks/print_runs.py "$out"/*/summary.json
