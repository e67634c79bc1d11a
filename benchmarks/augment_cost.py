"""Seconds per generation of the trainer's step on the default network with each augmentation, interleaved
(compiled with the trainer's options for the fast population forward).

    python benchmarks/augment_cost.py
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from eggroll_snn.compilation import compiler_options
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.training.step import make_generation_step, strategy_from_config
from eggroll_snn.training.evaluators import local_objective
from eggroll_snn.network import init_params


def compare(named, rounds=11):
    compiled = []
    for name, fn, args in named:
        f = jax.jit(fn, compiler_options=compiler_options(True))
        jax.block_until_ready(f(*args))
        compiled.append((name, f, args, []))
    for _ in range(rounds):
        for name, f, args, times in compiled:
            start = time.perf_counter()
            jax.block_until_ready(f(*args))
            times.append(time.perf_counter() - start)
    for name, f, args, times in compiled:
        print(f"{name:40s} min {min(times) * 1e3:7.1f} ms  median {np.median(times) * 1e3:7.1f} ms")


rng = np.random.default_rng(0)
frames = jnp.asarray(np.minimum(rng.poisson(0.4, (4500, 4, 2, 17, 17)), 3).astype(np.uint8))
labels = jnp.asarray(rng.integers(0, 10, 4500).astype(np.int32))
named = []
for name, options in [("none", {}), ("drop 0.3", {"train.augment_drop_event": 0.3}), ("flip 0.2", {"train.augment_flip_polarity": 0.2}),
                      ("noise 200", {"train.augment_noise_events": 200}), ("bins 0.125", {"train.augment_drop_bins": 0.125}),
                      ("all four", {"train.augment_drop_event": 0.3, "train.augment_flip_polarity": 0.2, "train.augment_noise_events": 200, "train.augment_drop_bins": 0.125})]:
    config = apply_overrides(TrainConfig(), {"train.generations": 3000, **options})
    network = config.network_config()
    method = strategy_from_config(config)
    state = method.init(jax.random.key(1), init_params(jax.random.key(0), network))
    step = make_generation_step(method, local_objective(network, method), config.train, jax.random.key(2))
    named.append((f"default network, augment {name}", step, (state, frames, labels)))
compare(named, rounds=11)
