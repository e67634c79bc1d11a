#!/usr/bin/env bash
# The accuracy ladder on the built-in simulated N-MNIST: from the default run, one change at a
# time (population, shift augmentation, width), each EGGROLL step trained once and its test
# accuracy read once for the model selected on validation; BPTT on the smallest and the largest
# network as the gradient reference. Sized for one GPU (a few minutes in all); on a CPU expect hours.
#
#   bash benchmarks/accuracy_ladder.sh OUT_DIR [extra train options...]
#
# Every run writes OUT_DIR/runs/<step>/ (summary.json holds the test accuracy) and one line of
# OUT_DIR/ladder.tsv. Each step has a wall-clock guard (--max-seconds), so a slower machine stops
# early rather than overrunning; ladder.tsv then shows fewer generations than asked for.
set -euo pipefail
out=${1:?usage: accuracy_ladder.sh OUT_DIR [extra train options...]}
shift
extra=(--set network.readout_beta=0.9 --set data.num_time_bins=8 --set strategy.rank=4 --set strategy.sigma=0.05 "$@")  # the leaky read-out, 8 bins, rank 4 and sigma 0.05 the ladder was measured with
train=(${EGGROLL_SNN_TRAIN:-eggroll-snn train})
mkdir -p "$out/runs"
printf 'step\tmethod\thidden\tpopulation\taugment_shift\tgenerations\tbest_validation\ttest\ts_per_generation\twall_s\n' > "$out/ladder.tsv"

step() {  # step NAME MAX_SECONDS train-options...
  local name=$1 guard=$2
  shift 2
  "${train[@]}" --out "$out/runs/$name" --no-progress --max-seconds "$guard" "$@" "${extra[@]}"
  python3 - "$out" "$name" <<'PY'
import json, sys, tomllib
out, name = sys.argv[1], sys.argv[2]
run = f"{out}/runs/{name}"
summary = json.load(open(f"{run}/summary.json"))
config = tomllib.load(open(f"{run}/config.toml", "rb"))
row = [name, config["strategy"]["method"], "x".join(map(str, config["network"]["hidden_sizes"])),
       config["strategy"]["population_size"], config["train"]["augment_shift"], summary["generations"],
       f'{summary["best_validation_accuracy"]:.4f}', f'{summary["test_accuracy"]:.4f}',
       f'{summary["seconds_per_generation"]:.5f}', f'{summary["wall_time_s"]:.1f}']
line = "\t".join(map(str, row))
open(f"{out}/ladder.tsv", "a").write(line + "\n")
print("LADDER", line, flush=True)
PY
}

bptt=(--method bptt --learning-rate 0.003 --set strategy.surrogate_slope=2.0 --generations 3000)
step s0-default 40 --population-size 512 --generations 2000  # superseded defaults
step s1-population-1024 40 --population-size 1024 --generations 3000
step s2-augment 40 --population-size 1024 --generations 3000 --set train.augment_shift=1
step b0-bptt-128 30 "${bptt[@]}"
step s3-width-512 60 --population-size 1024 --generations 3000 --set train.augment_shift=1 --hidden 512
step b3-bptt-512 30 "${bptt[@]}" --set train.augment_shift=1 --hidden 512
step s4-width-1024 60 --population-size 1024 --generations 3000 --set train.augment_shift=1 --hidden 1024
column -t "$out/ladder.tsv"
