"""The benchmarked methods: each one built as a call ready to compile, on the same random frames.

Every method runs on the same network, population size N, minibatch B, time bins T and the same
random event frames, and is one call per generation ``step(carry, *operands) -> (carry, output)``:

* ``eggroll_r{r}``: EGGROLL at rank r, one generation of the trainer's own compiled step
  (:func:`eggroll_snn.training.step.make_generation_step`: the minibatch drawn inside the step,
  ``ask -> population -> fitness -> tell``, the trainer's schedules);
* ``full_rank``: the same step with the dense-noise strategy (OpenAI-ES);
* ``evosax_open_es``: evosax's ``Open_ES`` (an outside implementation of OpenAI-ES) on the same
  fitness: it flattens the parameters, draws N dense parameter vectors and evaluates each member
  with its own weights (``vmap`` of :func:`eggroll_snn.network.forward`); skipped with a reason when
  evosax is not installed (``pip install 'eggroll-snn[bench]'``);
* ``reference_r{r}``: the same step with the readable reference population forward
  (:mod:`eggroll_snn.population.reference`) in place of the fast one;
* ``inference``: batched inference of the unperturbed network on N*B *distinct* samples (the
  EGGROLL paper's comparison: a generation's evaluations without any inputs shared between
  members), evaluated B samples at a time. It measures the cost of input traffic, not a ceiling;
* ``matmul``: the ceiling, XLA's own rate on a square float32 matrix product;
* ``population_sigma0``: our population forward alone with sigma = 0 (rank-1 factors whose scale
  is zero): no ask/tell bookkeeping, the same N*B member-evaluations;
* ``bptt``: the trainer's step of surrogate-gradient BPTT (:mod:`eggroll_snn.strategies.bptt`):
  one optimiser step on the B samples of the minibatch, as a reference (B samples, not N*B).

Data: Poisson(``event_rate``) counts clipped to 0..3 per pixel, polarity and bin, about the
density of N-MNIST frames (~4,000 events over 10 bins x 2 x 34 x 34), stored as uint8 and turned
into float32 inside the call, as the trainer does.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any, Callable, NamedTuple

import numpy as np

from eggroll_snn.bench.config import MATMUL_SIZE, REFERENCE_METHOD, BenchConfig, method_rank
from eggroll_snn.errors import ConfigError

#: The length of the trainer's decaying schedules in the timed steps (any length costs the same).
SCHEDULE_GENERATIONS = 3000



def make_frames(config: BenchConfig, count: int, seed_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random recordings: frames ``(count, T, P*H*W)`` uint8 in 0..3 and labels ``(count,)`` int32.

    Each count is ``min(Poisson(event_rate), 3)``, drawn as the number of Poisson CDF levels a
    uniform number exceeds, a block of recordings at a time (no int64 array of the whole set:
    the inference ceiling's N*B recordings are 380 MB as uint8 at the headline size).
    """
    rng = np.random.default_rng([config.seed, seed_offset])
    rate = config.event_rate
    levels = np.cumsum([math.exp(-rate) * rate**k / math.factorial(k) for k in range(3)]).astype(np.float32)
    frames = np.empty((count, config.time_bins, config.input_size), np.uint8)
    block = max(1, (1 << 24) // frames[0].size)
    for start in range(0, count, block):
        uniform = rng.random((min(block, count - start),) + frames.shape[1:], dtype=np.float32)
        frames[start : start + block] = sum((uniform >= level).view(np.uint8) for level in levels)
    return frames, rng.integers(0, config.num_classes, count).astype(np.int32)


class Prepared(NamedTuple):
    """One method ready to time: ``step(carry, *operands) -> (carry, output)``, ``carry`` donated,
    compiled with ``compiler_options`` (the trainer's for that method, :mod:`eggroll_snn.compilation`)."""

    step: Callable
    carry: Any
    operands: tuple
    compiler_options: dict = {}


def _training_set(config: BenchConfig):
    """The B recordings the generation step draws its minibatch from, shaped as the trainer holds
    its training part: frames ``(B, T, P, H, W)`` uint8 and labels ``(B,)`` int32, on the device."""
    import jax.numpy as jnp

    frames, labels = make_frames(config, config.batch_size)
    return jnp.asarray(frames.reshape((config.batch_size, config.time_bins) + config.input_shape)), jnp.asarray(labels)


def _minibatch(config: BenchConfig):
    import jax.numpy as jnp

    frames, labels = make_frames(config, config.batch_size)
    return jnp.asarray(frames), jnp.asarray(labels)


def make_strategy_for(config: BenchConfig, method: str):
    """The trainer's method behind ``method`` (``eggroll_r{r}``, ``reference_r{r}``, ``full_rank`` or
    ``bptt``), with the ``[strategy]`` section's defaults (the trainer's schedules included) at this N and rank."""
    from eggroll_snn.config import StrategySection
    from eggroll_snn.training.step import method_from_section

    if method.startswith(("eggroll_r", "reference_r")):
        section = StrategySection(method="eggroll", population_size=config.population_size, rank=method_rank(method))
    else:
        section = StrategySection(method=method, population_size=config.population_size)
    # The schedules' length only shapes the learning rate, not the work of a generation.
    return method_from_section(section.method, section, SCHEDULE_GENERATIONS)


def strategy_and_state(config: BenchConfig, method: str):
    """``(strategy, initial state)`` of ``method``: the network initialised from ``config.seed``."""
    import jax

    from eggroll_snn.network import init_params

    strategy = make_strategy_for(config, method)
    params = init_params(jax.random.key(config.seed), config.network())
    return strategy, strategy.init(jax.random.key(config.seed + 1), params)


def data_key(config: BenchConfig):
    """The key the timed generation step draws its minibatch indices from."""
    import jax

    return jax.random.key(config.seed + 2)


def _prepare_training_step(config: BenchConfig, method: str) -> Prepared:
    """One generation exactly as the trainer runs it: :func:`eggroll_snn.training.step.make_generation_step`
    (minibatch drawn inside the step, ask -> population -> fitness -> tell, or a BPTT step)."""
    from eggroll_snn.compilation import compiler_options
    from eggroll_snn.config import TrainSection
    from eggroll_snn.training.evaluators import local_objective
    from eggroll_snn.training.step import make_generation_step

    strategy, state = strategy_and_state(config, method)
    train = TrainSection(batch_size=config.batch_size)
    fast = not method.startswith("reference_r")
    objective = local_objective(config.network(), strategy, train.fitness, fast=fast)
    step = make_generation_step(strategy, objective, train, data_key(config))
    return Prepared(step, state, _training_set(config), compiler_options(fast and strategy.has_population))


def _prepare_sigma0(config: BenchConfig) -> Prepared:
    """The trainer's population forward and fitness alone (the fast path, antithetic pairs), on
    rank-1 factors with scale 0: the floor under every EGGROLL generation (no ask, no tell)."""
    import jax.numpy as jnp

    from eggroll_snn.compilation import compiler_options
    from eggroll_snn.perturbation import scaled
    from eggroll_snn.training.evaluators import local_evaluator

    strategy, state = strategy_and_state(config, REFERENCE_METHOD)
    evaluate = local_evaluator(config.network(), antithetic_pairs=True, fast=True)
    perturbations = scaled(strategy.ask(state), 0.0)

    def step(state, frames, labels):
        return state, -evaluate(state.params, perturbations, frames.astype(jnp.float32), labels)[0]

    return Prepared(step, state, _minibatch(config), compiler_options(True))


def _prepare_inference(config: BenchConfig) -> Prepared:
    """Unperturbed forward + cross-entropy on N*B distinct samples, B at a time (``lax.map``).

    B at a time because it was the fastest chunk measured at the headline size on CPU (figures in
    benchmarks/README.md): a chunk's activity then stays in cache across the time loop.
    """
    import jax
    import jax.numpy as jnp

    from eggroll_snn.network import forward, init_params
    from eggroll_snn.population import member_losses

    network = config.network()
    params = init_params(jax.random.key(config.seed), network)
    frames, labels = make_frames(config, config.member_evaluations, seed_offset=1)
    shape = (config.population_size, config.batch_size)

    def step(params, frames, labels):
        def chunk(batch):
            chunk_frames, chunk_labels = batch
            logits = forward(params, chunk_frames.astype(jnp.float32), network)
            return member_losses(logits[None], chunk_labels)[0][0]

        batches = (frames.reshape(shape + frames.shape[1:]), labels.reshape(shape))
        return params, jax.lax.map(chunk, batches)

    return Prepared(step, params, (jnp.asarray(frames), jnp.asarray(labels)))


def evosax_open_es():
    """evosax's ``Open_ES`` class, or ``None`` when evosax is not installed."""
    if importlib.util.find_spec("evosax") is None:
        return None
    from evosax.algorithms import Open_ES

    return Open_ES


def _prepare_evosax(config: BenchConfig) -> Prepared:
    """evosax OpenAI-ES on the same fitness (it minimises, so it gets the cross-entropy itself).

    Same sigma (0.05), Adam with the same learning rate (0.01), antithetic sampling and centred
    ranks as our strategies; every member is evaluated with its own materialised weights.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from eggroll_snn.network import forward, init_params
    from eggroll_snn.strategies import StrategyConfig
    from eggroll_snn.population import member_losses

    defaults = StrategyConfig()
    network = config.network()
    params = init_params(jax.random.key(config.seed), network)
    es = evosax_open_es()(
        population_size=config.population_size,
        solution=params,
        optimizer=optax.adam(defaults.learning_rate),
        std_schedule=optax.constant_schedule(defaults.sigma),
    )
    es_params = es.default_params
    key = jax.random.key(config.seed + 1)
    state = es.init(key, params, es_params)

    def step(carry, frames, labels):
        state, key = carry
        key, ask_key, tell_key = jax.random.split(key, 3)
        population, state = es.ask(ask_key, state, es_params)
        inputs = frames.astype(jnp.float32)
        logits = jax.vmap(lambda member: forward(member, inputs, network))(population)
        losses = member_losses(logits, labels)[0]
        state, _ = es.tell(tell_key, population, losses, state, es_params)
        return (state, key), losses

    return Prepared(step, (state, key), _minibatch(config))


def matmul_size() -> int:
    """Side of the ceiling's square matrices: :data:`MATMUL_SIZE` on CPU, 8 times it on an accelerator
    (a 1024-wide product is too small to load a GPU)."""
    import jax

    return MATMUL_SIZE if jax.default_backend() == "cpu" else 8 * MATMUL_SIZE


def _prepare_matmul(config: BenchConfig) -> Prepared:
    """The ceiling: a float32 product of two square matrices (:func:`matmul_size`), XLA's own rate."""
    import jax
    import jax.numpy as jnp

    size = matmul_size()
    matrix = jax.random.normal(jax.random.key(config.seed), (size, size), jnp.float32) / size**0.5

    def step(carry, matrix):
        return carry + 1, matrix @ matrix

    return Prepared(step, jnp.zeros((), jnp.int32), (matrix,))


def samples_per_call(config: BenchConfig, method: str) -> int | None:
    """Sample evaluations in one call of ``method``: N*B, except B for the BPTT step (none for matmul)."""
    if method == "matmul":
        return None
    return config.batch_size if method == "bptt" else config.member_evaluations


def flops_per_call(config: BenchConfig, method: str) -> int | None:
    """Floating-point operations a call counts for its GFLOP/s: the matrix product's ``2 n^3``, or
    :meth:`BenchConfig.forward_flops` of the population forward (the same model for the fast and
    the reference forward, so their GFLOP/s compare as their speeds); ``None`` for the rest."""
    if method == "matmul":
        return 2 * matmul_size() ** 3
    if method.startswith(("eggroll_r", "reference_r")):
        return config.forward_flops(method_rank(method))
    if method == "population_sigma0":
        return config.forward_flops(None)
    return None


def unavailable_reason(config: BenchConfig, method: str) -> str | None:
    """Why ``method`` cannot run here, or ``None`` when it can."""
    if method.startswith(("eggroll_r", "reference_r")):
        from eggroll_snn.strategies import check_rank

        try:  # the strategies' one rank rule
            check_rank(method_rank(method), config.network().weight_shapes, option=f"bench rank of {method}")
        except ConfigError as error:
            return f"not available for the {'-'.join(map(str, config.layer_sizes))} network: {error}"
    if method == "evosax_open_es" and evosax_open_es() is None:
        return "evosax is not installed (pip install 'eggroll-snn[bench]')"
    return None


def prepare(config: BenchConfig, method: str) -> Prepared:
    """Build the compiled-to-be call of ``method`` (one of :meth:`BenchConfig.method_names`)."""
    check_methods(config, (method,))
    reason = unavailable_reason(config, method)
    if reason is not None:
        raise ConfigError(f"bench method {method} cannot run: {reason}")
    if method.startswith(("eggroll_r", "reference_r")) or method in ("full_rank", "bptt"):
        return _prepare_training_step(config, method)
    builders = {
        "evosax_open_es": _prepare_evosax,
        "inference": _prepare_inference,
        "population_sigma0": _prepare_sigma0,
        "matmul": _prepare_matmul,
    }
    return builders[method](config)


def check_methods(config: BenchConfig, methods: tuple[str, ...]) -> None:
    names = config.method_names()
    for method in methods:
        if method not in names:
            raise ConfigError(f"bench method {method!r} is not one of: {', '.join(names)} (set --ranks for other EGGROLL ranks)")
