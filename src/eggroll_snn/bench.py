"""Side-by-side per-generation benchmark: EGGROLL ranks, full-rank ES, an outside peer, the ceiling.

Every method runs on the same network, population size N, minibatch B, time bins T and the same
random event frames, in one process, and is timed as one compiled call per generation:

* ``eggroll_r{r}``: EGGROLL at rank r, one generation ``ask -> population_logits -> fitness ->
  tell`` in one ``jit`` (fitness = minus the mean cross-entropy of each member on the shared
  minibatch, as in :mod:`eggroll_snn.train`), the minibatch an input of the call;
* ``full_rank``: the same generation with the dense-noise strategy (OpenAI-ES);
* ``evosax_open_es``: evosax's ``Open_ES`` (an outside implementation of OpenAI-ES) on the same
  fitness: it flattens the parameters, draws N dense parameter vectors and evaluates each member
  with its own weights (``vmap`` of :func:`eggroll_snn.snn.forward`); skipped with a reason when
  evosax is not installed (``pip install 'eggroll-snn[bench]'``);
* ``inference``: the throughput ceiling of the EGGROLL paper, pure batched inference of the
  unperturbed network on N*B *distinct* samples (the work of one generation without any sharing
  of inputs between members), evaluated B samples at a time;
* ``population_sigma0``: our population forward alone with sigma = 0 (rank-1 factors whose scale
  is zero): no ask/tell bookkeeping, the same N*B member-evaluations;
* ``bptt``: one surrogate-gradient training step (:mod:`eggroll_snn.bptt`, the trainer's
  defaults) on the B samples of the minibatch, as a reference (it evaluates B samples, not N*B).

Per method: the median of ``repeats`` timed calls after ``warmup`` untimed ones
(``seconds_per_generation``), the compile time, the ratio to ``eggroll_r1``, member-evaluations
per second (``N*B / seconds``; ``B / seconds`` for ``bptt``), XLA's own account of the call's buffers (arguments + outputs +
temporaries, from ``Compiled.memory_analysis``: exact and noise-free) and, with ``rss=True``, the
peak memory of a fresh process that builds the same inputs, compiles and runs only that method
(peak RSS on CPU, ``peak_bytes_in_use`` of the device on accelerators), so a method never
inherits another's high-water mark.

Data: Poisson(``event_rate``) counts clipped to 0..3 per pixel, polarity and bin, about the
density of N-MNIST frames (~4,000 events over 10 bins x 2 x 34 x 34), stored as uint8 and turned
into float32 inside the call, as the trainer does.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from eggroll_snn.errors import ConfigError

#: Methods that are timed against the others (``eggroll_r{r}`` for each rank comes first).
OTHER_METHODS = ("full_rank", "evosax_open_es", "inference", "population_sigma0", "bptt")
#: The reference every ratio is taken against.
REFERENCE_METHOD = "eggroll_r1"
#: Methods that the sweeps time at every point by default.
SWEEP_METHODS = ("eggroll_r1", "full_rank", "inference")
#: Sweep grids of the issue (population, hidden width, input shape).
SWEEP_POPULATIONS = (64, 256, 1024, 4096)
SWEEP_HIDDEN_SIZES = (128, 512, 2048)
SWEEP_INPUT_SHAPES = ((2, 34, 34), (2, 17, 17))
#: Largest population the dense-noise methods and the inference ceiling get by default on CPU: at
#: N = 4096 full-rank ES at the headline size would hold ~10 GB of noise and take ~15 s/generation.
CPU_MAX_POPULATION = 1024
#: Dense-noise methods (per-member memory O(m n)) and the ceiling (N*B*T*input_size bytes of data).
CAPPED_METHODS = ("full_rank", "evosax_open_es", "inference")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark configuration (the headline one by default: N=256, B=64, T=10, 2312-128-10).

    Attributes:
      population_size: members N per generation (even: the strategies are antithetic).
      batch_size: recordings B in the minibatch every member is evaluated on.
      time_bins: time bins T per recording.
      input_shape: ``(P, H, W)`` of one frame; the network's input size is ``P*H*W``.
      hidden_sizes: LIF layer widths.
      num_classes: read-out units.
      ranks: EGGROLL ranks to time (``eggroll_r{r}``); must include 1, the reference.
      repeats: timed calls per method (the median is reported).
      warmup: untimed calls per method after compiling.
      seed: seed of the data, the initial parameters and the noise.
      event_rate: mean events per pixel, polarity and bin of the random frames.
    """

    population_size: int = 256
    batch_size: int = 64
    time_bins: int = 10
    input_shape: tuple[int, int, int] = (2, 34, 34)
    hidden_sizes: tuple[int, ...] = (128,)
    num_classes: int = 10
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16)
    repeats: int = 5
    warmup: int = 1
    seed: int = 0
    event_rate: float = 0.2

    def __post_init__(self):
        for name in ("input_shape", "hidden_sizes", "ranks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("population_size", "batch_size", "time_bins", "num_classes", "repeats"):
            _require_int(name, getattr(self, name), 1)
        _require_int("warmup", self.warmup, 0)
        if self.population_size % 2:
            raise ConfigError(
                f"bench population size {self.population_size} is odd; the strategies evaluate members in "
                "antithetic +/- pairs, so use an even --population-size"
            )
        if len(self.input_shape) != 3:
            raise ConfigError(f"bench input shape {self.input_shape} must be three numbers P H W (e.g. 2 34 34)")
        for name, values in (("input_shape", self.input_shape), ("hidden_sizes", self.hidden_sizes), ("ranks", self.ranks)):
            if not values:
                raise ConfigError(f"bench option {name} is empty; give at least one value")
            for value in values:
                _require_int(name, value, 1)
        if 1 not in self.ranks:
            raise ConfigError(f"bench ranks {self.ranks} must include 1: every ratio is taken against EGGROLL r=1")
        if not (isinstance(self.event_rate, (int, float)) and self.event_rate > 0):
            raise ConfigError(f"bench event_rate={self.event_rate!r} must be a number > 0")

    @property
    def input_size(self) -> int:
        """``P*H*W``: inputs per time bin."""
        return int(np.prod(self.input_shape))

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(input_size, *hidden_sizes, num_classes)``."""
        return (self.input_size, *self.hidden_sizes, self.num_classes)

    @property
    def member_evaluations(self) -> int:
        """``N*B``: sample evaluations per generation."""
        return self.population_size * self.batch_size

    def network(self):
        """The :class:`~eggroll_snn.snn.NetworkConfig` of this benchmark."""
        from eggroll_snn import snn

        return snn.NetworkConfig(input_size=self.input_size, hidden_sizes=self.hidden_sizes, num_classes=self.num_classes)

    def method_names(self) -> tuple[str, ...]:
        """Every method this configuration times, reference first."""
        return tuple(f"eggroll_r{rank}" for rank in sorted(self.ranks)) + OTHER_METHODS


def _rank(method: str) -> int:
    """r of the method name ``eggroll_r{r}``."""
    return int(method[len("eggroll_r") :])


def _require_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"bench option {name} has the value {value!r}; it must be an integer >= {minimum}")


# --------------------------------------------------------------------------------------------
# Data and the per-method compiled calls


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
    """One method ready to time: ``step(carry, *operands) -> (carry, output)``, ``carry`` donated."""

    step: Callable
    carry: Any
    operands: tuple


def _minibatch(config: BenchConfig):
    import jax.numpy as jnp

    frames, labels = make_frames(config, config.batch_size)
    return jnp.asarray(frames), jnp.asarray(labels)


def make_strategy_for(config: BenchConfig, method: str):
    """Our strategy behind ``method`` (``eggroll_r{r}`` or ``full_rank``) with the trainer's defaults."""
    from eggroll_snn.strategies import make_strategy

    if method.startswith("eggroll_r"):
        return make_strategy("eggroll", population_size=config.population_size, rank=_rank(method))
    return make_strategy(method, population_size=config.population_size)


def _strategy_and_state(config: BenchConfig, method: str):
    import jax

    from eggroll_snn import snn

    strategy = make_strategy_for(config, method)
    params = snn.init_params(jax.random.key(config.seed), config.network())
    return strategy, strategy.init(jax.random.key(config.seed + 1), params)


def _member_fitness(params, perturbations, frames, labels, network, antithetic_pairs=False):
    """``(N,)`` minus the mean cross-entropy of every member on the minibatch (the trainer's fitness)."""
    import jax.numpy as jnp

    from eggroll_snn import snn
    from eggroll_snn.train import member_losses

    logits = snn.population_logits(params, perturbations, frames.astype(jnp.float32), network, antithetic_pairs=antithetic_pairs)
    return -member_losses(logits, labels)[0]


def _prepare_strategy(config: BenchConfig, method: str) -> Prepared:
    """One whole generation of our strategy ``method`` (ask, population forward, fitness, tell)."""
    strategy, state = _strategy_and_state(config, method)
    network = config.network()

    def step(state, frames, labels):
        fitness = _member_fitness(state.params, strategy.ask(state), frames, labels, network, strategy.shares_pairs)
        return strategy.tell(state, fitness)

    return Prepared(step, state, _minibatch(config))


def zero_scale(perturbations):
    """The same perturbations with every scale (low-rank ``scale``, dense leaves) multiplied by 0."""
    from eggroll_snn.perturbation import scaled

    return scaled(perturbations, 0.0)


def _prepare_sigma0(config: BenchConfig) -> Prepared:
    """The population forward and fitness alone, rank-1 factors with scale 0 (no tell)."""
    strategy, state = _strategy_and_state(config, REFERENCE_METHOD)
    network = config.network()

    def step(state, frames, labels):
        return state, _member_fitness(state.params, zero_scale(strategy.ask(state)), frames, labels, network)

    return Prepared(step, state, _minibatch(config))


def _prepare_inference(config: BenchConfig) -> Prepared:
    """Unperturbed forward + cross-entropy on N*B distinct samples, B at a time (``lax.map``).

    B at a time because it was the fastest chunk measured at the headline size on 2 CPU cores
    (0.48 s for 16,384 samples vs 0.72 s in chunks of 256 and 1.23 s in chunks of 4,096): a
    chunk's activity then stays in cache across the time loop.
    """
    import jax
    import jax.numpy as jnp

    from eggroll_snn import snn
    from eggroll_snn.train import member_losses

    network = config.network()
    params = snn.init_params(jax.random.key(config.seed), network)
    frames, labels = make_frames(config, config.member_evaluations, seed_offset=1)
    shape = (config.population_size, config.batch_size)

    def step(params, frames, labels):
        def chunk(batch):
            chunk_frames, chunk_labels = batch
            logits = snn.forward(params, chunk_frames.astype(jnp.float32), network)
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

    from eggroll_snn import snn
    from eggroll_snn.strategies import StrategyConfig
    from eggroll_snn.train import member_losses

    defaults = StrategyConfig()
    network = config.network()
    params = snn.init_params(jax.random.key(config.seed), network)
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
        logits = jax.vmap(lambda member: snn.forward(member, inputs, network))(population)
        losses = member_losses(logits, labels)[0]
        state, _ = es.tell(tell_key, population, losses, state, es_params)
        return (state, key), losses

    return Prepared(step, (state, key), _minibatch(config))


def _prepare_bptt(config: BenchConfig) -> Prepared:
    """One surrogate-gradient optimiser step on the B samples of the minibatch (the trainer's defaults)."""
    import jax
    import jax.numpy as jnp

    from eggroll_snn import bptt, snn

    network = config.network()
    method = bptt.SurrogateGradient()
    state = method.init(jax.random.key(config.seed + 1), snn.init_params(jax.random.key(config.seed), network))

    def step(state, frames, labels):
        return method.step(state, frames.astype(jnp.float32), labels, network)

    return Prepared(step, state, _minibatch(config))


def samples_per_call(config: BenchConfig, method: str) -> int:
    """Sample evaluations in one call of ``method``: N*B, except B for the BPTT step."""
    return config.batch_size if method == "bptt" else config.member_evaluations


def unavailable_reason(config: BenchConfig, method: str) -> str | None:
    """Why ``method`` cannot run here, or ``None`` when it can."""
    sizes = config.layer_sizes
    widest = max(min(m, n) for m, n in zip(sizes[1:], sizes[:-1]))
    if method.startswith("eggroll_r") and _rank(method) > widest:
        # Each weight uses min(r, m, n); EggrollStrategy refuses an r that every weight would clip.
        return (
            f"not available: rank {_rank(method)} > {widest} = the largest min(m, n) of the weights "
            f"of {'-'.join(map(str, sizes))}; the strategy refuses it"
        )
    if method == "evosax_open_es" and evosax_open_es() is None:
        return "evosax is not installed (pip install 'eggroll-snn[bench]')"
    if method == "bptt" and importlib.util.find_spec("eggroll_snn.bptt") is None:
        return "not available: no surrogate-gradient baseline (eggroll_snn.bptt) in this version"
    return None


def prepare(config: BenchConfig, method: str) -> Prepared:
    """Build the compiled-to-be call of ``method`` (one of :meth:`BenchConfig.method_names`)."""
    _check_methods(config, (method,))
    reason = unavailable_reason(config, method)
    if reason is not None:
        raise ConfigError(f"bench method {method} cannot run: {reason}")
    if method.startswith("eggroll_r") or method == "full_rank":
        return _prepare_strategy(config, method)
    builders = {
        "evosax_open_es": _prepare_evosax,
        "inference": _prepare_inference,
        "population_sigma0": _prepare_sigma0,
        "bptt": _prepare_bptt,
    }
    return builders[method](config)


def _check_methods(config: BenchConfig, methods: tuple[str, ...]) -> None:
    names = config.method_names()
    for method in methods:
        if method not in names:
            raise ConfigError(f"bench method {method!r} is not one of: {', '.join(names)} (set --ranks for other EGGROLL ranks)")


# --------------------------------------------------------------------------------------------
# Timing and memory


def _compile(prepared: Prepared):
    import jax

    return jax.jit(prepared.step, donate_argnums=0).lower(prepared.carry, *prepared.operands).compile()


def xla_buffer_bytes(compiled) -> int | None:
    """Bytes of the call's arguments + outputs + temporaries (aliased outputs counted once), per XLA."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(
        stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes + stats.temp_size_in_bytes
    )


def time_methods(config: BenchConfig, methods: tuple[str, ...]) -> dict[str, dict]:
    """Compile every method, run ``warmup`` untimed generations of each, then ``repeats`` rounds.

    A round times one generation of every method in turn, so a change in the load of a shared
    machine falls on all methods alike and the ratios stay fair.

    Returns:
      ``{method: {"seconds_per_generation": median s, "seconds_min", "seconds_all": [...],
      "compile_seconds", "xla_buffer_bytes"}}``.
    """
    import jax

    compiled, carries, operands, timings = {}, {}, {}, {}
    for method in methods:
        prepared = prepare(config, method)
        start = time.perf_counter()
        compiled[method] = _compile(prepared)
        timings[method] = {
            "compile_seconds": time.perf_counter() - start,
            "xla_buffer_bytes": xla_buffer_bytes(compiled[method]),
            "seconds_all": [],
        }
        carries[method], operands[method] = prepared.carry, prepared.operands
        for _ in range(config.warmup):
            carries[method], _ = jax.block_until_ready(compiled[method](carries[method], *operands[method]))
    for _ in range(config.repeats):
        for method in methods:
            start = time.perf_counter()
            carries[method], _ = jax.block_until_ready(compiled[method](carries[method], *operands[method]))
            timings[method]["seconds_all"].append(time.perf_counter() - start)
    for timing in timings.values():
        timing["seconds_per_generation"] = float(np.median(timing["seconds_all"]))
        timing["seconds_min"] = float(np.min(timing["seconds_all"]))
    return timings


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _peak_rss_bytes() -> int:
    # VmHWM belongs to this process's own address space. ru_maxrss would not do: Linux carries it
    # over exec from the forking parent, so a fresh worker would report the benchmark's own peak.
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # KiB on Linux, bytes on macOS


def measure_memory(config: BenchConfig, method: str, generations: int = 2) -> dict:
    """Peak memory of ``method`` in this process (call it in a fresh one: see :func:`isolated_memory`).

    Returns:
      ``{"baseline_rss_bytes": RSS after importing JAX and starting its backend, before any data,
      "peak_rss_bytes": the process's peak RSS after building the data, compiling and running
      ``generations`` generations, "rss_growth_bytes": their difference, "device_peak_bytes":
      ``peak_bytes_in_use`` of the device (accelerators only, else None)}``.
    """
    import jax

    jax.devices()  # start the backend so its own memory is in the baseline
    gc.collect()
    baseline = _status_bytes("VmRSS")
    prepared = prepare(config, method)
    compiled = _compile(prepared)
    carry = prepared.carry
    for _ in range(generations):
        carry, _ = jax.block_until_ready(compiled(carry, *prepared.operands))
    peak = _peak_rss_bytes()
    device_stats = jax.local_devices()[0].memory_stats() or {}
    return {
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "rss_growth_bytes": None if baseline is None else peak - baseline,
        "device_peak_bytes": device_stats.get("peak_bytes_in_use"),
    }


def isolated_memory(config: BenchConfig, method: str, timeout_s: float = 1800.0) -> dict:
    """:func:`measure_memory` of ``method`` in a fresh Python process (its own high-water mark)."""
    spec = json.dumps({"config": dataclasses.asdict(config), "method": method})
    completed = subprocess.run(
        [sys.executable, "-m", "eggroll_snn.bench", spec], capture_output=True, text=True, timeout=timeout_s
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"memory_error": f"memory worker exited with {completed.returncode}: {' | '.join(tail)}"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Whole benchmark


def _environment() -> dict:
    import jax

    device = jax.local_devices()[0]
    return {
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def run_benchmark(
    config: BenchConfig = BenchConfig(),
    methods: tuple[str, ...] | None = None,
    rss: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Time every method of ``config`` (in this process) and measure its memory (in fresh ones).

    Args:
      config: the configuration (network, N, B, T, data).
      methods: subset of :meth:`BenchConfig.method_names` (default: all); ``eggroll_r1`` is
        always timed, since every ratio refers to it.
      rss: also measure each method's peak memory in a fresh process (:func:`isolated_memory`).
      log: called with one line per finished method (progress), or ``None``.

    Returns:
      ``{"config": {...}, "environment": {...}, "load_average_before"/"_after": [1, 5, 15 min],
      "methods": {name: {"available", "seconds_per_generation", "ratio_to_eggroll_r1",
      "member_evaluations_per_second", "compile_seconds", "xla_buffer_bytes", "peak_rss_bytes",
      ...} or {"available": False, "reason", "seconds_per_generation": None}},
      "speedup_full_rank_over_eggroll_r1", "throughput_fraction_of_inference"}``: the last two are
      ``full_rank / eggroll_r1`` seconds and eggroll_r1's member-evaluations per second over the
      inference ceiling's (``None`` when a method did not run).
    """
    methods = config.method_names() if methods is None else tuple(methods)
    _check_methods(config, methods)
    if REFERENCE_METHOD not in methods:
        methods = (REFERENCE_METHOD, *methods)
    result = {
        "config": dataclasses.asdict(config),
        "environment": _environment(),
        "load_average_before": _load_average(),
        "methods": {},
    }
    reasons = {method: unavailable_reason(config, method) for method in methods}
    runnable = tuple(method for method in methods if reasons[method] is None)
    timings = time_methods(config, runnable)
    gc.collect()
    for method in methods:
        if reasons[method] is not None:
            entry = {"available": False, "reason": reasons[method], "seconds_per_generation": None}
        else:
            entry = {"available": True, **timings[method]}
            entry["samples_per_generation"] = samples_per_call(config, method)
            entry["member_evaluations_per_second"] = entry["samples_per_generation"] / entry["seconds_per_generation"]
            if rss:
                entry.update(isolated_memory(config, method))
        result["methods"][method] = entry
        if log is not None:
            log(_progress_line(config, method, entry))
    result["load_average_after"] = _load_average()
    _add_ratios(result)
    return result


def _progress_line(config: BenchConfig, method: str, entry: dict) -> str:
    where = f"N={config.population_size} B={config.batch_size} T={config.time_bins} {'-'.join(map(str, config.layer_sizes))}"
    if not entry["available"]:
        return f"[bench] {where} {method}: skipped ({entry['reason']})"
    return (
        f"[bench] {where} {method}: {entry['seconds_per_generation'] * 1e3:.1f} ms/generation "
        f"(compile {entry['compile_seconds']:.1f} s)"
    )


def _add_ratios(result: dict) -> None:
    """Ratios to eggroll_r1 and the two headline figures, from the medians."""
    entries = result["methods"]
    reference = entries[REFERENCE_METHOD]["seconds_per_generation"]
    for entry in entries.values():
        seconds = entry["seconds_per_generation"]
        entry["ratio_to_eggroll_r1"] = None if seconds is None else seconds / reference
    full_rank = entries.get("full_rank", {}).get("seconds_per_generation")
    inference = entries.get("inference", {}).get("seconds_per_generation")
    result["speedup_full_rank_over_eggroll_r1"] = None if full_rank is None else full_rank / reference
    # Same N*B evaluations per call, so the throughput ratio is the inverse time ratio.
    result["throughput_fraction_of_inference"] = None if inference is None else inference / reference


# --------------------------------------------------------------------------------------------
# Sweeps


def expected_member_bytes(config: BenchConfig, method: str) -> int | None:
    """Bytes a method must hold per added member, by the count of per-member numbers (float32).

    EGGROLL rank r: its factors ``r (m + n)`` per weight, its bias noise and its logits
    ``B * C`` (the O(r(m+n)) of the paper); dense-noise ES: one ``m * n`` draw per weight instead.
    """
    sizes = config.layer_sizes
    shared = sum(sizes[1:]) + config.batch_size * config.num_classes
    if method.startswith("eggroll_r"):
        rank = _rank(method)
        return 4 * (rank * sum(m + n for n, m in zip(sizes[:-1], sizes[1:])) + shared)
    if method in ("full_rank", "evosax_open_es"):
        return 4 * (sum(m * n for n, m in zip(sizes[:-1], sizes[1:])) + shared)
    return None


def sweep_configs(
    base: BenchConfig,
    populations=SWEEP_POPULATIONS,
    hidden_sizes=SWEEP_HIDDEN_SIZES,
    input_shapes=SWEEP_INPUT_SHAPES,
) -> list[tuple[str, BenchConfig]]:
    """``(axis, config)`` for every sweep point: N at ``base``'s network, then hidden width and input
    shape at ``base``'s N (``base`` itself is the headline, not repeated)."""
    points = [("population", dataclasses.replace(base, population_size=n)) for n in populations]
    points += [("hidden", dataclasses.replace(base, hidden_sizes=(h,))) for h in hidden_sizes]
    points += [("input", dataclasses.replace(base, input_shape=tuple(s))) for s in input_shapes]
    return [(axis, config) for axis, config in points if config != base]


def run_sweep(
    base: BenchConfig,
    methods: tuple[str, ...] = SWEEP_METHODS,
    max_population: int | None = None,
    rss: bool = True,
    log: Callable[[str], None] | None = None,
    **grids,
) -> list[dict]:
    """:func:`run_benchmark` of ``methods`` at every point of :func:`sweep_configs`.

    Dense-noise methods and the inference ceiling (:data:`CAPPED_METHODS`) are skipped, with a
    reason, at populations above ``max_population`` (default: :data:`CPU_MAX_POPULATION` on CPU,
    no cap on accelerators). Each returned result carries its ``"axis"``.
    """
    if max_population is None:
        import jax

        max_population = CPU_MAX_POPULATION if jax.default_backend() == "cpu" else None
    results = []
    for axis, config in sweep_configs(base, **grids):
        capped = max_population is not None and config.population_size > max_population
        run = tuple(m for m in methods if not (capped and m in CAPPED_METHODS))
        result = run_benchmark(dataclasses.replace(config, ranks=(1,)), methods=run, rss=rss, log=log)
        for method in methods:
            if method not in result["methods"]:
                result["methods"][method] = {
                    "available": False,
                    "seconds_per_generation": None,
                    "ratio_to_eggroll_r1": None,
                    "reason": f"skipped: N={config.population_size} > --max-population {max_population}",
                }
        result["axis"] = axis
        results.append(result)
    return results


def memory_slopes(results: list[dict], key: str = "xla_buffer_bytes") -> dict:
    """Least-squares slope of ``key`` (bytes) against N per method, over results that differ only in N.

    Returns:
      ``{method: {"bytes_per_member": slope, "populations": [...], "points": n}}`` for methods with
      at least two measured populations.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    for result in results:
        population = result["config"]["population_size"]
        for method, entry in result["methods"].items():
            if entry.get(key) is not None:
                series.setdefault(method, []).append((population, float(entry[key])))
    slopes = {}
    for method, points in series.items():
        populations = sorted({n for n, _ in points})
        if len(populations) < 2:
            continue
        n, value = np.array(points).T
        slopes[method] = {
            "bytes_per_member": float(np.polyfit(n, value, 1)[0]),
            "populations": populations,
            "points": len(points),
        }
    return slopes


def population_series(headline: dict, sweep: list[dict]) -> list[dict]:
    """The headline and the sweep results that vary only N (same network), sorted by N."""
    series = [headline] + [result for result in sweep if result.get("axis") == "population"]
    return sorted(series, key=lambda result: result["config"]["population_size"])


def summarise_memory(headline: dict, sweep: list[dict]) -> dict:
    """Measured memory-vs-N slopes (XLA buffers and RSS) beside the expected per-member bytes."""
    series = population_series(headline, sweep)
    config = BenchConfig(**headline["config"])
    summary = {}
    for key in ("xla_buffer_bytes", "peak_rss_bytes"):
        for method, slope in memory_slopes(series, key).items():
            summary.setdefault(method, {"expected_bytes_per_member": expected_member_bytes(config, method)})
            summary[method][f"{key}_per_member"] = slope["bytes_per_member"]
            summary[method]["populations"] = slope["populations"]
    return summary


# --------------------------------------------------------------------------------------------
# Reports


def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def markdown_table(result: dict) -> str:
    """One configuration's results as a markdown table, with a line naming the configuration."""
    config = result["config"]
    sizes = "-".join(map(str, BenchConfig(**config).layer_sizes))
    lines = [
        f"N={config['population_size']}, B={config['batch_size']}, T={config['time_bins']}, network {sizes}, "
        f"{result['environment']['backend']} ({result['environment']['cpu_count']} CPUs), "
        f"load average {result['load_average_before']} -> {result['load_average_after']}",
        "",
        "| method | s / generation (median) | x eggroll_r1 | compile s | member-evals / s | XLA buffers MiB | peak RSS MiB | RSS growth MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, entry in result["methods"].items():
        if not entry["available"]:
            lines.append(f"| {method} | {entry['reason']} | | | | | | |")
            continue
        lines.append(
            f"| {method} | {entry['seconds_per_generation']:.4f} | {entry['ratio_to_eggroll_r1']:.2f} | "
            f"{entry['compile_seconds']:.1f} | {entry['member_evaluations_per_second']:,.0f} | "
            f"{_mib(entry.get('xla_buffer_bytes'))} | {_mib(entry.get('peak_rss_bytes'))} | {_mib(entry.get('rss_growth_bytes'))} |"
        )
    speedup, fraction = result["speedup_full_rank_over_eggroll_r1"], result["throughput_fraction_of_inference"]
    lines.append("")
    if result["methods"].get("bptt", {}).get("available"):
        lines.append("bptt is one surrogate-gradient step on the B samples: its member-evals / s counts B per step, not N*B.")
    if speedup is not None:
        lines.append(f"full_rank / eggroll_r1 = {speedup:.1f}x (speed-up of EGGROLL r=1 per generation)")
    if fraction is not None:
        lines.append(f"eggroll_r1 throughput = {100 * fraction:.0f} % of pure batched inference on N*B distinct samples")
    return "\n".join(lines)


def memory_table(summary: dict) -> str:
    """The memory-vs-N slopes as a markdown table."""
    lines = [
        "| method | XLA buffers, bytes / member | peak RSS, bytes / member | expected bytes / member | populations |",
        "|---|---:|---:|---:|---|",
    ]
    for method, entry in summary.items():
        cells = [entry.get("xla_buffer_bytes_per_member"), entry.get("peak_rss_bytes_per_member"), entry["expected_bytes_per_member"]]
        text = ["-" if value is None else f"{value:,.0f}" for value in cells]
        lines.append(f"| {method} | {' | '.join(text)} | {entry['populations']} |")
    return "\n".join(lines)


def markdown_report(report: dict) -> str:
    """The whole report (headline, sweep points, memory slopes) as markdown."""
    parts = ["## Headline", "", markdown_table(report["headline"])]
    for result in report.get("sweep", []):
        parts += ["", f"## Sweep ({result['axis']})", "", markdown_table(result)]
    if report.get("memory"):
        parts += ["", "## Memory per added member (slope over N)", "", memory_table(report["memory"])]
    return "\n".join(parts) + "\n"


def write_plots(report: dict, out_dir: Path) -> list[Path]:
    """PNG plots: time/generation vs rank (headline); vs N and memory vs N (when swept)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    headline = report["headline"]["methods"]
    ranks = sorted(_rank(name) for name, entry in headline.items() if name.startswith("eggroll_r") and entry["available"])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(ranks, [headline[f"eggroll_r{r}"]["seconds_per_generation"] for r in ranks], "o-", label="EGGROLL")
    for method, style in (("full_rank", "--"), ("evosax_open_es", ":"), ("inference", "-.")):
        if headline.get(method, {}).get("seconds_per_generation") is not None:
            axes.axhline(headline[method]["seconds_per_generation"], linestyle=style, color="grey", label=method)
    axes.set(xscale="log", yscale="log", xlabel="rank r", ylabel="seconds / generation", title="Time per generation vs rank")
    axes.set_xticks(ranks, [str(r) for r in ranks])
    axes.legend()
    paths.append(_save(figure, out_dir / "time_vs_rank.png"))

    series = population_series(report["headline"], report.get("sweep", []))
    if len(series) > 1:
        for key, ylabel, name in (
            ("seconds_per_generation", "seconds / generation", "time_vs_population.png"),
            ("xla_buffer_bytes", "XLA buffers (bytes)", "memory_vs_population.png"),
            ("peak_rss_bytes", "peak RSS (bytes)", "rss_vs_population.png"),
        ):
            lines = {}
            for method in SWEEP_METHODS:
                points = [
                    (result["config"]["population_size"], result["methods"].get(method, {}).get(key))
                    for result in series
                ]
                lines[method] = [(n, value) for n, value in points if value is not None]
            if not any(lines.values()):
                continue  # e.g. no RSS measured
            figure, axes = plt.subplots(figsize=(6, 4))
            for method, points in lines.items():
                if points:
                    axes.plot(*zip(*points), "o-", label=method)
            axes.set(xscale="log", yscale="log", xlabel="population size N", ylabel=ylabel, title=f"{ylabel} vs N")
            axes.legend()
            paths.append(_save(figure, out_dir / name))
    return paths


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and the PNG plots into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"bench output folder --out {out_dir} cannot be created ({error}); choose a writable folder") from error
    json_path, markdown_path = out_dir / "bench.json", out_dir / "bench.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path.write_text(markdown_report(report))
    return [json_path, markdown_path, *write_plots(report, out_dir)]


def benchmark_report(
    config: BenchConfig = BenchConfig(),
    methods: tuple[str, ...] | None = None,
    sweep: bool = False,
    sweep_methods: tuple[str, ...] = SWEEP_METHODS,
    max_population: int | None = None,
    rss: bool = True,
    log: Callable[[str], None] | None = None,
    **grids,
) -> dict:
    """The headline :func:`run_benchmark`, plus with ``sweep`` the sweeps and memory slopes.

    Returns:
      ``{"headline": result, "sweep": [result, ...], "memory": {...}, "methods": {name:
      seconds_per_generation}}`` (``methods`` repeats the headline medians for quick reading).
    """
    headline = run_benchmark(config, methods=methods, rss=rss, log=log)
    report = {"headline": headline, "sweep": [], "memory": {}}
    if sweep:
        report["sweep"] = run_sweep(config, sweep_methods, max_population=max_population, rss=rss, log=log, **grids)
        report["memory"] = summarise_memory(headline, report["sweep"])
    report["methods"] = {name: entry["seconds_per_generation"] for name, entry in headline["methods"].items()}
    return report


def _memory_worker(argv: list[str]) -> int:
    """``python -m eggroll_snn.bench SPEC``: print :func:`measure_memory` of one method as JSON."""
    spec = json.loads(argv[0])
    config = BenchConfig(**spec["config"])
    print(json.dumps(measure_memory(config, spec["method"])))
    return 0


__all__ = [
    "BenchConfig",
    "OTHER_METHODS",
    "SWEEP_METHODS",
    "CPU_MAX_POPULATION",
    "make_frames",
    "make_strategy_for",
    "prepare",
    "zero_scale",
    "time_methods",
    "measure_memory",
    "isolated_memory",
    "run_benchmark",
    "sweep_configs",
    "run_sweep",
    "memory_slopes",
    "expected_member_bytes",
    "summarise_memory",
    "markdown_table",
    "markdown_report",
    "write_report",
    "benchmark_report",
]


if __name__ == "__main__":
    sys.exit(_memory_worker(sys.argv[1:]))
