#!/usr/bin/env bash
# Fewer time bins, a larger population at the same cost (built-in simulated N-MNIST, 2-core CPU,
# about 60 minutes on a quiet machine): the commands behind docs/results.md's "Time bins and population"
# table. A member's work grows with T (its LIF states and read-out run for every bin) while the
# shared first-layer product does not, so T = 4 bins of 79 ms cost about half of T = 8 per member
# and pay for twice the population.
# Short rows: 500 generations with the leaky read-out (readout_beta 0.9), paired with the
# sigma-0.05 rows of benchmarks/sigma_sweep.sh (T = 8, N = 512, the same seeds). Full rows: the
# default read-out (readout_beta 0) at full length. Every setting that defines a row is named
# here, so the rows do not move when the defaults do. The model is selected on the 450 validation
# recordings and each run reads the test split once.
#
#   bash benchmarks/time_bins.sh OUT_DIR
set -euo pipefail
out=${1:?usage: time_bins.sh OUT_DIR}
mkdir -p "$out"
short=(--no-progress --rank 4 --generations 500 --set network.readout_beta=0.9)  # rank 4: the defaults then
for seed in 0 1 2; do
  for population in 512 1024; do
    eggroll-snn train "${short[@]}" --seed $seed --set data.num_time_bins=4 --set strategy.population_size=$population \
      --out "$out/short-t4-n$population-seed$seed"
  done
done
for population in 512 1024; do
  eggroll-snn train "${short[@]}" --seed 0 --set data.num_time_bins=3 --set strategy.population_size=$population \
    --out "$out/short-t3-n$population-seed0"
done
full=(--no-progress --rank 4 --set network.readout_beta=0.0)
for seed in 0 1 2; do
  eggroll-snn train "${full[@]}" --seed $seed --set data.num_time_bins=8 --set strategy.population_size=512 \
    --generations 2000 --out "$out/full-t8-n512-g2000-seed$seed"
  eggroll-snn train "${full[@]}" --seed $seed --set data.num_time_bins=4 --set strategy.population_size=1024 \
    --generations 3000 --out "$out/full-t4-n1024-g3000-seed$seed"
done
for seed in 0 1 2; do  # which part buys the gain: the population at equal generations, or the length
  eggroll-snn train "${full[@]}" --seed $seed --set data.num_time_bins=4 --set strategy.population_size=1024 \
    --generations 2000 --out "$out/full-t4-n1024-g2000-seed$seed"
  eggroll-snn train "${full[@]}" --seed $seed --set data.num_time_bins=8 --set strategy.population_size=512 \
    --generations 3000 --out "$out/full-t8-n512-g3000-seed$seed"
done
for bins in 8 4; do
  eggroll-snn baseline --set data.num_time_bins=$bins > "$out/linear-t$bins.txt"
done
python3 benchmarks/print_runs.py "$out"/*/summary.json
tail -n 1 "$out"/linear-t*.txt
