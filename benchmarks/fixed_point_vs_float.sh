#!/usr/bin/env bash
# Fixed-point (integer) network vs the float network of the same shape on the real N-MNIST subset:
# configs/nmnist-small.toml (578 -> 128 -> 10, T = 8, EGGROLL r = 4, N = 512, 300 generations), seeds 0 1 2.
# Usage: bash benchmarks/fixed_point_vs_float.sh OUT [DATA [SEEDS]]
#   DATA defaults to ../shared/data/nmnist-small; "simulated" uses the built-in simulated N-MNIST.
#   SEEDS defaults to "0 1 2".
set -euo pipefail
out=${1:?usage: fixed_point_vs_float.sh OUT [DATA [SEEDS]]}
data=${2:-../shared/data/nmnist-small}
seeds=${3:-0 1 2}
data_option=(--data "$data")
[ "$data" = simulated ] && data_option=()
mkdir -p "$out"
for seed in $seeds; do
  for neuron in fixed_point float; do
    [ -f "$out/$neuron-s$seed/summary.json" ] && continue
    eggroll-snn train --config configs/nmnist-small.toml "${data_option[@]}" --no-progress --generations 300 \
      --set network.neuron=$neuron --set train.seed=$seed --out "$out/$neuron-s$seed"
  done
done
python - "$out" $seeds <<'PY'
import json, pathlib, sys
out, seeds = pathlib.Path(sys.argv[1]), sys.argv[2:]
for neuron in ("fixed_point", "float"):
    rows = [json.loads((out / f"{neuron}-s{seed}" / "summary.json").read_text()) for seed in seeds]
    tests = [100 * r["test_accuracy"] for r in rows]
    vals = [100 * r["best_validation_accuracy"] for r in rows]
    print(f"{neuron}: test {[round(t, 1) for t in tests]} mean {sum(tests)/len(tests):.1f} %, validation {[round(v, 1) for v in vals]}, "
          f"s/generation {[round(r['seconds_per_generation'], 3) for r in rows]}")
PY
