#!/usr/bin/env bash
# One ES or neuron option at a time on the default network (built-in simulated N-MNIST, 2-core
# CPU): the commands behind docs/results.md's "Options on the default network" table. Short rows: 500
# generations with the leaky read-out (readout_beta 0.9), T = 4 bins, N = 1,024, 578 -> 128 -> 10,
# each option paired with the runs of no option (the same seeds, on the same machine: runs are
# reproducible on one machine, not across CPU models). Every setting that defines a row is named
# here, so the rows do not move when the defaults do. The model is selected on the 450 validation
# recordings and each run reads the test split once.
#
#   bash benchmarks/default_options.sh OUT_DIR
set -euo pipefail
out=${1:?usage: default_options.sh OUT_DIR}
mkdir -p "$out"
short=(--no-progress --rank 4 --sigma 0.05 --generations 500 --set network.readout_beta=0.9
       --set data.num_time_bins=4 --set strategy.population_size=1024)
# name, then the settings that make the row (the hidden width is in every row)
rows=("none                 network.hidden_sizes=[128]"
      "hidden_sizes-256     network.hidden_sizes=[256]"
      "hidden_sizes-512     network.hidden_sizes=[512]"
      "threshold-0.5        network.hidden_sizes=[128] network.threshold=0.5"
      "learning_rate-0.02   network.hidden_sizes=[128] strategy.learning_rate=0.02"
      "learning_rate-0.005  network.hidden_sizes=[128] strategy.learning_rate=0.005"
      "fitness_shaping-zscore network.hidden_sizes=[128] strategy.fitness_shaping=zscore")
for row in "${rows[@]}"; do
  read -r name settings <<< "$row"
  set_options=(); for setting in $settings; do set_options+=(--set "$setting"); done
  for seed in 0 1 2; do
    eggroll-snn train "${short[@]}" "${set_options[@]}" --seed $seed --out "$out/short-$name-seed$seed"
  done
done
python3 benchmarks/print_runs.py "$out"/*/summary.json
