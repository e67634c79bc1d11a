"""Full-rank ES per generation with and without the antithetic-pair first-layer sharing, side by side.

    python benchmarks/full_rank_pairs.py

One whole generation (ask, population forward, fitness, tell) at N=256, B=128, T=8, 578-128-10,
the comparison's setting; prints the median of 7 interleaved rounds.
"""

import time

import jax
import jax.numpy as jnp

from eggroll_snn import population

from eggroll_snn.network import NetworkConfig, init_params
from eggroll_snn.strategies import make_strategy

ROUNDS = 7


def main() -> None:
    network = NetworkConfig(input_size=578, hidden_sizes=(128,), num_classes=10)
    params = init_params(jax.random.key(0), network)
    inputs = jax.random.poisson(jax.random.key(1), 0.3, (128, 8, 578)).astype(jnp.float32)
    strategy = make_strategy("full_rank", population_size=256, sigma=0.05)
    state = strategy.init(jax.random.key(2), params)

    def generation(state, inputs, pairs):
        logits = population.population_logits(state.params, strategy.ask(state), inputs, network, antithetic_pairs=pairs)
        return strategy.tell(state, -logits.mean(axis=(1, 2)))[0].params

    calls = {pairs: jax.jit(lambda s, x, pairs=pairs: generation(s, x, pairs)) for pairs in (False, True)}
    for call in calls.values():
        jax.block_until_ready(call(state, inputs))
    times = {pairs: [] for pairs in calls}
    for _ in range(ROUNDS):
        for pairs, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call(state, inputs))
            times[pairs].append(time.perf_counter() - start)
    member, pair = (sorted(times[pairs])[ROUNDS // 2] for pairs in (False, True))
    print(
        f"full_rank generation N=256 B=128 T=8 578-128-10: per member {member * 1e3:.0f} ms, "
        f"per pair {pair * 1e3:.0f} ms, {member / pair:.2f}x"
    )


if __name__ == "__main__":
    main()
