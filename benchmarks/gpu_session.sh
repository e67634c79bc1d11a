#!/usr/bin/env bash
# One accelerator session (one NVIDIA H200, ~7 minutes): the GPU rows of docs/results.md.
#   1. the bench at N=4,096 and 16,384 (B=256, default network), fast and reference forward side by side;
#   2. the population/minibatch screen for the CPU default: each (N, B, rank) with the generation count
#      the 2-core CPU affords in its 570 s budget (measured there with eggroll-snn bench), seeds 0-2;
#   3. the GPU table: N=8,192, B=256, 2,700 generations, seeds 0-2; BPTT on the same network, seeds 0-2;
#      conv16-32 at N=8,192, B=256 under the memory budget (a few generations: no out-of-memory);
#   4. alone, for timing: EGGROLL N=8,192 B=256 and BPTT, seed 0, time to BPTT's best validation.
# Needs nir and mlxtend as wheels in .whl/ (see the device notes); writes OUT/results.tgz and OUT/summary.md.
#   bash benchmarks/gpu_session.sh OUT
set -u
out=${1:?usage: gpu_session.sh OUT}
work=/tmp/gpu-session; mkdir -p "$work/runs" "$work/bench"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src EGGROLL_SNN_CACHE=/tmp/eggroll-cache XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
es="python3 -m eggroll_snn.cli"
tiny=${GPU_SESSION_TINY:-0}  # 1: every size and length cut down, to check the script on a CPU
start=$SECONDS
stamp() { echo "[$((SECONDS - start)) s] $*"; }

stamp "data"; timeout 120 python3 -c "
from eggroll_snn.config import TrainConfig
from eggroll_snn.data.source import load_frames
for split in ('train', 'test'):
    frames, labels = load_frames(TrainConfig().data, split)
    print(split, frames.shape)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

stamp "bench"
sizes="4096 16384"; [ "$tiny" = 1 ] && sizes="16 32"
for n in $sizes; do
  timeout 120 $es bench --quick --population-size $n --batch-size 256 --ranks 1 4 --no-rss \
    --methods eggroll_r1 eggroll_r4 reference_r1 reference_r4 population_sigma0 full_rank matmul \
    --out "$work/bench/n$n" > "$work/bench/n$n.log" 2>&1
  grep "^|\|x the" "$work/bench/n$n.log"
done

run() {  # name, then train options
  local name=$1; shift
  timeout 200 $es train --no-progress --set train.max_seconds=170 --set train.memory_budget_mb=6000 --out "$work/runs/$name" "$@" > "$work/runs/$name.log" 2>&1
  echo "$name: $(tail -1 "$work/runs/$name.log")"
}
export -f run
export work es
conv=(--set 'network.conv_channels=[16,32]' --set network.conv_kernel=3 --set network.conv_stride=1
      --set network.conv_pool=2 --set 'network.hidden_sizes=[]')
{
  for seed in 0 1 2; do
    # The CPU screen: (N, B, rank) -> the generations the 2-core CPU affords in its budget.
    echo "screen-n1024-b128-r4-s$seed --population-size 1024 --batch-size 128 --rank 4 --generations 5900 --seed $seed"
    echo "screen-n1024-b128-r1-s$seed --population-size 1024 --batch-size 128 --rank 1 --generations 8000 --seed $seed"
    echo "screen-n1024-b256-r1-s$seed --population-size 1024 --batch-size 256 --rank 1 --generations 3400 --seed $seed"
    echo "screen-n2048-b128-r1-s$seed --population-size 2048 --batch-size 128 --rank 1 --generations 3100 --seed $seed"
    echo "screen-n2048-b256-r1-s$seed --population-size 2048 --batch-size 256 --rank 1 --generations 1600 --seed $seed"
    echo "screen-n4096-b256-r1-s$seed --population-size 4096 --batch-size 256 --rank 1 --generations 800 --seed $seed"
    echo "screen-n8192-b128-r1-s$seed --population-size 8192 --batch-size 128 --rank 1 --generations 600 --seed $seed"
    # The GPU table and the gradient reference on the same network.
    echo "gpu-n8192-b256-r4-s$seed --population-size 8192 --batch-size 256 --rank 4 --generations 2700 --seed $seed"
    echo "bptt-s$seed --method bptt --generations 3000 --seed $seed"
  done
} > "$work/jobs.txt"
if [ "$tiny" = 1 ]; then
  sed -i -E 's/--population-size [0-9]+/--population-size 16/; s/--generations [0-9]+/--generations 10 --set train.eval_every=10 --set train.checkpoint_every=10/' "$work/jobs.txt"
  head -4 "$work/jobs.txt" > "$work/jobs.tmp" && mv "$work/jobs.tmp" "$work/jobs.txt"
fi
big="--population-size 8192 --batch-size 256"; gens=2700; [ "$tiny" = 1 ] && big="--population-size 16 --batch-size 16" && gens=10
stamp "training waves ($(wc -l < "$work/jobs.txt") runs, 14 at a time)"
xargs -P 14 -L 1 bash -c 'run "$@"' _ < "$work/jobs.txt"
stamp "conv16-32"
timeout 150 $es train --no-progress $big --generations 20 --set train.eval_every=10 \
  --set train.checkpoint_every=10 "${conv[@]}" --out "$work/runs/conv16-32-n8192-b256" > "$work/runs/conv16-32.log" 2>&1
tail -2 "$work/runs/conv16-32.log"
stamp "alone: time to accuracy"
timeout 120 $es train --no-progress $big --rank 4 --generations $gens --seed 0 \
  --out "$work/runs/alone-eggroll-n8192-b256-r4" > "$work/runs/alone-eggroll.log" 2>&1; tail -1 "$work/runs/alone-eggroll.log"
timeout 60 $es train --no-progress --method bptt --generations $((gens + 300)) --seed 0 --out "$work/runs/alone-bptt" > "$work/runs/alone-bptt.log" 2>&1
tail -1 "$work/runs/alone-bptt.log"
stamp "summary"
{
  echo "## Bench"; for n in $sizes; do grep "^N=\|^|\|x the\|GFLOP" "$work/bench/n$n.log"; echo; done
  echo "## Runs"; python3 benchmarks/runs_table.py "$work"/runs/*/ --bar 0.94
} > "$out/summary.md" 2>&1
find "$work/runs" -name checkpoints -type d -prune -exec rm -rf {} +
tar czf "$out/results.tgz" -C "$work" runs bench jobs.txt
stamp "done"; cat "$out/summary.md" | head -80
