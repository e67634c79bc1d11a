#!/usr/bin/env bash
# Fixed-point (integer) network vs the float network of the same shape on the real N-MNIST subset:
# configs/nmnist-small.toml (578 -> 128 -> 10, T = 8, EGGROLL r = 4, N = 512, 300 generations), seeds 0 1 2.
# Usage: bash benchmarks/fixed_point_vs_float.sh OUT [DATA]   (DATA defaults to ../shared/data/nmnist-small)
set -euo pipefail
out=${1:?usage: fixed_point_vs_float.sh OUT [DATA]}
data=${2:-../shared/data/nmnist-small}
mkdir -p "$out"
for seed in 0 1 2; do
  for neuron in fixed_point float; do
    [ -f "$out/$neuron-s$seed/summary.json" ] && continue
    eggroll-snn train --config configs/nmnist-small.toml --data "$data" --no-progress \
      --set network.neuron=$neuron --set train.seed=$seed --out "$out/$neuron-s$seed"
  done
done
python - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for neuron in ("fixed_point", "float"):
    rows = [json.loads((out / f"{neuron}-s{seed}" / "summary.json").read_text()) for seed in (0, 1, 2)]
    tests = [100 * r["test_accuracy"] for r in rows]
    vals = [100 * r["best_validation_accuracy"] for r in rows]
    print(f"{neuron}: test {tests} mean {sum(tests)/3:.1f} %, validation {[round(v, 1) for v in vals]}, "
          f"s/generation {[round(r['seconds_per_generation'], 3) for r in rows]}")
PY
