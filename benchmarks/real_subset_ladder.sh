#!/usr/bin/env bash
# One-change-at-a-time ladder on the real subset (../shared/data/nmnist-small), 2-core CPU: the
# commands behind docs/results.md's "Real subset: one change at a time" table. Every run starts from
# configs/nmnist-small.toml (578 -> 128 -> 10, EGGROLL r=4, N=512, 300 generations), seed 0 unless
# a seed is set; the model is selected on validation and each run reads the test split once at the
# end. About 50 minutes on a quiet 2-core CPU.
#
#   bash benchmarks/real_subset_ladder.sh OUT_DIR
set -euo pipefail
out=${1:?usage: real_subset_ladder.sh OUT_DIR}
mkdir -p "$out"
real=(--no-progress --config configs/nmnist-small.toml --data ../shared/data/nmnist-small --set train.generations=300)
conv8=(--set 'network.conv_channels=[8]' --set network.conv_kernel=5 --set network.conv_stride=2
       --set network.conv_pool=1 --set 'network.hidden_sizes=[]')

eggroll-snn train "${real[@]}" --out "$out/base"
eggroll-snn train "${real[@]}" --set network.threshold=0.5 --out "$out/threshold-0.5"
eggroll-snn train "${real[@]}" --set 'network.hidden_sizes=[256]' --out "$out/hidden-256"
eggroll-snn train "${real[@]}" --set train.augment_shift=2 --out "$out/shift-2"
eggroll-snn train "${real[@]}" --set network.recurrent=true --out "$out/recurrent"
eggroll-snn train "${real[@]}" "${conv8[@]}" --out "$out/conv8"
for seed in 1 2; do
  eggroll-snn train "${real[@]}" --set train.seed=$seed --out "$out/base-seed$seed"
  eggroll-snn train "${real[@]}" "${conv8[@]}" --set train.seed=$seed --out "$out/conv8-seed$seed"
done
# The gradient reference on the same two networks (surrogate-gradient BPTT, 2,000 Adam steps)
bptt=(--method bptt --learning-rate 0.003 --set strategy.surrogate_slope=2.0 --set train.generations=2000)
for seed in 0 1 2; do
  eggroll-snn train "${real[@]}" "${bptt[@]}" --set train.seed=$seed --out "$out/bptt-seed$seed"
  eggroll-snn train "${real[@]}" "${bptt[@]}" "${conv8[@]}" --set train.seed=$seed --out "$out/bptt-conv8-seed$seed"
done
eggroll-snn train "${real[@]}" --set 'network.hidden_sizes=[256]' --set network.threshold=0.5 \
  --set train.generations=1000 --out "$out/hidden-256-threshold-0.5-g1000"
for seed in 0 1 2; do
  eggroll-snn train "${real[@]}" --set train.generations=1000 --set train.seed=$seed --out "$out/g1000-seed$seed"
  eggroll-snn baseline --config configs/nmnist-small.toml --data ../shared/data/nmnist-small \
    --set train.seed=$seed --json > "$out/linear-seed$seed.json"
done
# Twice the population, and 4 time bins (half of a member's work per generation)
for seed in 0 1 2; do
  eggroll-snn train "${real[@]}" --set strategy.population_size=1024 --set train.seed=$seed --out "$out/n1024-seed$seed"
  eggroll-snn train "${real[@]}" --set data.num_time_bins=4 --set train.seed=$seed --out "$out/t4-seed$seed"
  eggroll-snn train "${real[@]}" --set data.num_time_bins=4 --set strategy.population_size=1024 \
    --set train.seed=$seed --out "$out/t4-n1024-seed$seed"
done
# The spike-count read-out (a graph without LI nodes, see the NIR export section)
for seed in 0 1 2; do
  eggroll-snn train "${real[@]}" --set network.readout=spike_count --set train.seed=$seed \
    --out "$out/spike-count-seed$seed"
  eggroll-snn train "${real[@]}" --set network.readout=spike_count --set network.threshold=0.5 \
    --set train.seed=$seed --out "$out/spike-count-threshold-0.5-seed$seed"
done
eggroll-snn train "${real[@]}" --set network.readout=spike_count --set network.init_gain=2.0 --out "$out/spike-count-gain-2"
eggroll-snn train "${real[@]}" --set network.readout=spike_count --set network.threshold=0.3 --out "$out/spike-count-threshold-0.3"
python3 benchmarks/print_runs.py "$out"/*/summary.json
for run in "$out"/linear-seed*.json; do
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(sys.argv[1], "validation", s["validation_accuracy"], "test", s["test_accuracy"])' "$run"
done
