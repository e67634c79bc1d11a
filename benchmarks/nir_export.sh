#!/usr/bin/env bash
# The commands behind docs/results.md's "NIR export" figures (2-core CPU, about 15 minutes): models trained
# on the real N-MNIST subset with configs/nmnist-small.toml (leaky read-out, readout_beta 0.9), with
# the library's default read-out (readout_beta 0: an Affine read-out, no LI node) and with one option
# changed (reset to zero, spike-count read-out), seeds 0, 1, 2; their best validation accuracy; then each seed-0 model's
# export (and the other seeds' default models) run by our interpreter, Spyx, Norse and snnTorch on
# the 100 test recordings.
#
#   bash benchmarks/nir_export.sh OUT_DIR      (Spyx: the test extra; the norse and snntorch extras)
set -euo pipefail
out=${1:?usage: nir_export.sh OUT_DIR}
mkdir -p "$out"
data=../shared/data/nmnist-small
train=(eggroll-snn train --config configs/nmnist-small.toml --data "$data" --no-progress --generations 300)
affine=(--set network.readout_beta=0.0)  # the library's default read-out (configs/nmnist-small.toml keeps 0.9)
for seed in 0 1 2; do
  "${train[@]}" --seed "$seed" "${affine[@]}" --out "$out/affine-s$seed"
  "${train[@]}" --seed "$seed" --out "$out/default-s$seed"
  "${train[@]}" --seed "$seed" --set network.reset=zero --out "$out/zero-s$seed"
  "${train[@]}" --seed "$seed" --set network.readout=spike_count --out "$out/count-s$seed"
done
"${train[@]}" --seed 0 --set network.reset=zero --set network.readout=spike_count --out "$out/zero-count-s0"
"${train[@]}" --seed 0 --set network.reset=zero "${affine[@]}" --out "$out/zero-affine-s0"
python3 benchmarks/print_runs.py "$out"/*/summary.json
python benchmarks/nir_toolchains.py --data "$data" --split test \
  "$out/default-s0" "$out/zero-s0" "$out/count-s0" "$out/zero-count-s0" "$out/default-s1" "$out/default-s2" \
  "$out/affine-s0" "$out/affine-s1" "$out/affine-s2" "$out/zero-affine-s0"
