"""Full-rank ES per generation with and without the antithetic-pair first-layer sharing, side by side.

    python benchmarks/full_rank_pairs.py

One whole generation (ask, population forward, fitness, tell) at N=256, B=128, T=8, 578-128-10,
the comparison's setting; prints the median of 7 interleaved rounds.
"""
import time, jax, jax.numpy as jnp
from eggroll_snn import snn
from eggroll_snn.strategies import make_strategy
net = snn.NetworkConfig(input_size=578, hidden_sizes=(128,), num_classes=10)
params = snn.init_params(jax.random.key(0), net)
x = jax.random.poisson(jax.random.key(1), 0.3, (128, 8, 578)).astype(jnp.float32)
st = make_strategy("full_rank", population_size=256, sigma=0.05)
state = st.init(jax.random.key(2), params)
def gen(s, x, p):
    return st.tell(s, -snn.population_logits(s.params, st.ask(s), x, net, antithetic_pairs=p).mean(axis=(1, 2)))[0].params
fns = {p: jax.jit(lambda s, x, p=p: gen(s, x, p)) for p in (False, True)}
for f in fns.values(): jax.block_until_ready(f(state, x))
times = {p: [] for p in fns}
for _ in range(7):
    for p, f in fns.items():
        t = time.perf_counter(); jax.block_until_ready(f(state, x)); times[p].append(time.perf_counter() - t)
a, b = sorted(times[False])[3], sorted(times[True])[3]
print(f"full_rank generation N=256 B=128 T=8 578-128-10: per member {a*1e3:.0f} ms, per pair {b*1e3:.0f} ms, {a/b:.2f}x")
