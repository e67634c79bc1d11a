#!/usr/bin/env bash
# The convolutional LIF network against the linear read-out on the built-in simulated N-MNIST,
# on a 2-core CPU (about 25 minutes in all): the commands behind docs/results.md's "Convolutional LIF
# blocks" table, seed 0 (the default), the model selected on validation, test read once per run.
#
#   bash benchmarks/conv_cpu.sh OUT_DIR
set -euo pipefail
out=${1:?usage: conv_cpu.sh OUT_DIR}
mkdir -p "$out"
conv8=(--set 'network.conv_channels=[8]' --set network.conv_kernel=5 --set network.conv_stride=2
       --set network.conv_pool=1 --set 'network.hidden_sizes=[]' --set network.readout_beta=0.9)
conv16_32=(--set 'network.conv_channels=[16,32]' --set network.conv_kernel=3 --set network.conv_pool=2
           --set 'network.hidden_sizes=[]' --set network.readout_beta=0.9)  # the leaky read-out of these figures
bptt=(--method bptt --learning-rate 0.003 --set strategy.surrogate_slope=2.0)
source "$(dirname "$0")/old_defaults.sh"

eggroll-snn baseline --set data.num_time_bins=8 --json > "$out/linear-simulated.json"
eggroll-snn baseline --config configs/nmnist-small.toml --data ../shared/data/nmnist-small --json > "$out/linear-real.json"
eggroll-snn train --no-progress "${old_defaults[@]}" --generations 500 --set train.eval_every=50 --set train.checkpoint_every=50 \
  "${conv8[@]}" --out "$out/eggroll-conv8-g500"
eggroll-snn train --no-progress "${old_defaults[@]}" "${bptt[@]}" --generations 2000 "${conv8[@]}" --out "$out/bptt-conv8"
eggroll-snn train --no-progress "${old_defaults[@]}" "${bptt[@]}" --generations 2000 "${conv16_32[@]}" --out "$out/bptt-conv16-32"
for method in eggroll full_rank; do  # equal wall clock on the conv8 network
  eggroll-snn train --no-progress "${old_defaults[@]}" --method "$method" --generations 2000 --max-seconds 150 \
    --set train.eval_every=20 --set train.checkpoint_every=20 "${conv8[@]}" --out "$out/equal-150s-$method"
done
for run in "$out"/*/summary.json; do
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(sys.argv[1], s["test_accuracy"], s["generations"], round(s["wall_time_s"], 1))' "$run"
done
