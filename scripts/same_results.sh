#!/usr/bin/env bash
# Short fixed-seed trainings whose metrics.jsonl (timing fields removed) and model.npz must stay
# byte-identical across a refactor that changes no behaviour. Run it on both commits and compare:
#
#   bash scripts/same_results.sh OUT_BEFORE; (check out the change); bash scripts/same_results.sh OUT_AFTER
#   bash scripts/same_results.sh --compare OUT_BEFORE OUT_AFTER
#
# Runs: the default network on the built-in simulated data, and on the real subset
# (../shared/data/nmnist-small) a conv network, a recurrent one, the fixed-point one, int8 weights,
# full-rank ES and BPTT; 30 generations each.
set -euo pipefail
if [[ ${1:-} == --compare ]]; then
  before=${2:?}; after=${3:?}; status=0
  for run in "$before"/*/; do
    name=$(basename "$run")
    for file in metrics.stripped.jsonl model.npz summary.stripped.json; do
      if cmp -s "$before/$name/$file" "$after/$name/$file"; then echo "same      $name/$file"
      else echo "DIFFERENT $name/$file"; status=1; fi
    done
  done
  exit $status
fi
out=${1:?usage: same_results.sh OUT_DIR | --compare BEFORE AFTER}
mkdir -p "$out"
real=(--no-progress --config configs/nmnist-small.toml --data ../shared/data/nmnist-small
      --generations 30 --population-size 64 --set train.eval_every=10 --set train.checkpoint_every=10)
conv=(--set 'network.conv_channels=[8]' --set network.conv_kernel=5 --set network.conv_stride=2
      --set network.conv_pool=1 --set 'network.hidden_sizes=[]')
eggroll-snn train --no-progress --generations 30 --set train.eval_every=10 --out "$out/default"
eggroll-snn train "${real[@]}" "${conv[@]}" --out "$out/conv"
eggroll-snn train "${real[@]}" --set network.recurrent=true --out "$out/recurrent"
eggroll-snn train "${real[@]}" --set network.neuron=fixed_point --out "$out/fixed-point"
eggroll-snn train "${real[@]}" --set network.weights=int8 --out "$out/int8"
eggroll-snn train "${real[@]}" --set network.readout=spike_count --set network.reset=zero --out "$out/spike-count"
eggroll-snn train "${real[@]}" --method full_rank --out "$out/full-rank"
eggroll-snn train "${real[@]}" --method bptt --out "$out/bptt"
for run in "$out"/*/; do
  python3 - "$run" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
timing = ("seconds_per_generation", "wall_time_s")
lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
(run / "metrics.stripped.jsonl").write_text("".join(json.dumps({k: v for k, v in line.items() if k not in timing}) + "\n" for line in lines))
summary = json.loads((run / "summary.json").read_text())
(run / "summary.stripped.json").write_text(json.dumps({k: v for k, v in summary.items() if k not in timing}, sort_keys=True))
PY
done
