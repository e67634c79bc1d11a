"""What every evolution strategy here shares: config, state, and the ask/tell plumbing.

We **maximise** fitness. One generation is::

    perturbations = strategy.ask(state)                 # sigma * E_i for members i = 1..N
    fitness = f(params + sigma * E_i)  for each i        # (N,), higher is better
    state, info = strategy.tell(state, fitness)

``tell`` shapes the fitness (``f~``) and estimates the ascent direction of the Gaussian-smoothed
fitness (OpenAI-ES)::

    g = 1 / (N sigma) * sum_i f~_i E_i

where ``E_i`` is member ``i``'s *unit-scale* noise direction (``epsilon_i`` for dense noise,
``+-A_k B_k^T / sqrt(r)`` for EGGROLL) and member ``i`` was evaluated at ``params + sigma E_i``.
Optax minimises, so ``-g`` goes to the optimiser as its "gradient" and the update climbs the
fitness.

Subclasses only say how a 2-D weight is perturbed (:meth:`EvolutionStrategy._weight_perturbations`)
and how ``sum_k w_k E_k`` is formed for it (:meth:`EvolutionStrategy._weight_direction`); every
other parameter (biases, learned leaks, thresholds) gets dense Gaussian noise here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eggroll_snn.errors import ConfigError, TrainingError
from eggroll_snn.perturbation import check_population_size
from eggroll_snn.strategies import noise
from eggroll_snn.strategies.shaping import SHAPINGS

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")


class StrategyState(NamedTuple):
    """Everything that changes between generations (a pytree; checkpoint it whole).

    Attributes:
      params: the current mean parameters (the pytree given to ``init``).
      opt_state: the optax optimiser state.
      key: the run's PRNG key as given to ``init`` (constant: fresh noise each generation comes
        from folding in ``generation``; serialise with ``jax.random.key_data`` if it is typed).
      generation: int32 scalar, generations told so far.
    """

    params: Any
    opt_state: Any
    key: jax.Array
    generation: jax.Array


class Objective(NamedTuple):
    """What a method improves on a minibatch (static: closed over by the compiled step).

    Attributes:
      network: the :class:`~eggroll_snn.network.NetworkConfig` (a gradient method differentiates
        through it).
      evaluate: ``(params, perturbations, inputs, labels) -> (loss (n,), accuracy (n,))`` of the
        population members (the trainer's: :func:`eggroll_snn.training.evaluators.population_evaluator`).
      fitness: ``"cross_entropy"`` (fitness = minus the member's mean cross-entropy) or
        ``"accuracy"`` (its minibatch accuracy); maximised.
    """

    network: Any
    evaluate: Callable
    fitness: str = "cross_entropy"


class GenerationMetrics(NamedTuple):
    """What one generation of any method reports (scalars; the run folder logs the first seven).

    Attributes:
      fitness_mean, fitness_max: mean and best fitness of the members with a finite fitness
        (a gradient method: ``-loss`` of its parameters).
      train_loss, train_accuracy: the members' mean minibatch cross-entropy and accuracy.
      invalid_fitness: members whose fitness was not finite.
      sigma, learning_rate: the noise scale and step size used this generation.
      all_fitness_nan: no member had a finite fitness: the state was kept and training must stop.
    """

    fitness_mean: jax.Array
    fitness_max: jax.Array
    train_loss: jax.Array
    train_accuracy: jax.Array
    invalid_fitness: jax.Array
    sigma: jax.Array
    learning_rate: jax.Array
    all_fitness_nan: jax.Array


def _finite_mean(values: jax.Array, finite: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(finite, values, 0.0)) / jnp.maximum(jnp.sum(finite), 1)


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimiser that turns an ascent direction (ES) or a gradient (BPTT) into an update.

    These defaults are the project's: ``eggroll_snn.config``'s ``[strategy]`` section takes its
    defaults from these classes, so the library and the command line start from the same values.

    Attributes:
      learning_rate: optimiser step size (> 0).
      optimizer: ``"adam"`` (default) or ``"sgd"``.
      weight_decay: decoupled decay of the 2-D weights per step, as a fraction of
        ``learning_rate`` (AdamW convention); 0 disables it.
      learning_rate_schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` decay from
        ``learning_rate`` to ``learning_rate_final_fraction`` of it over ``total_generations``.
        (Constant here, where the run length is unknown; the training config decays it by cosine
        over ``train.generations``.)
      learning_rate_final_fraction: end value / start value, in [0, 1].
      total_generations: length of a decaying schedule (required for non-constant schedules).
    """

    learning_rate: float = 0.01
    optimizer: str = "adam"
    weight_decay: float = 0.0
    learning_rate_schedule: str = "constant"
    learning_rate_final_fraction: float = 0.05
    total_generations: int | None = None

    def __post_init__(self):
        if not (isinstance(self.learning_rate, (int, float)) and np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning_rate={self.learning_rate!r} must be a finite number > 0")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay={self.weight_decay!r} must be a number >= 0")
        _require_choice("optimizer", self.optimizer, OPTIMIZERS)
        self._check_schedule("learning_rate")

    def _check_schedule(self, prefix: str) -> None:
        schedule = getattr(self, f"{prefix}_schedule")
        _require_choice(f"{prefix}_schedule", schedule, SCHEDULES)
        fraction = getattr(self, f"{prefix}_final_fraction")
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"{prefix}_final_fraction={fraction!r} must lie in [0, 1]")
        if schedule != "constant" and (
            isinstance(self.total_generations, bool)
            or not isinstance(self.total_generations, int)
            or self.total_generations < 1
        ):
            raise ConfigError(
                f"{prefix}_schedule={schedule!r} decays over total_generations, which is "
                f"{self.total_generations!r}; set total_generations to a positive integer"
            )

    def _schedule(self, prefix: str) -> optax.Schedule:
        start = float(getattr(self, prefix))
        kind = getattr(self, f"{prefix}_schedule")
        end_fraction = float(getattr(self, f"{prefix}_final_fraction"))
        if kind == "constant":
            return optax.constant_schedule(start)
        if kind == "linear":
            return optax.linear_schedule(start, start * end_fraction, self.total_generations)
        return optax.cosine_decay_schedule(start, self.total_generations, alpha=end_fraction)

    def learning_rate_at(self, generation) -> jax.Array:
        """The learning rate used in ``generation`` (a scalar; ``generation`` may be traced)."""
        return jnp.asarray(self._schedule("learning_rate")(generation), jnp.float32)

    def optimizer_transform(self) -> optax.GradientTransformation:
        """The optax transform that receives ``-g`` (a descent convention) each generation."""
        learning_rate = self._schedule("learning_rate")
        # Decay only weight matrices: pulling leaks or thresholds towards 0 would change the neuron model.
        matrices = lambda params: jax.tree_util.tree_map(lambda leaf: leaf.ndim >= 2, params)  # noqa: E731
        if self.optimizer == "adam":
            return optax.adamw(learning_rate, weight_decay=self.weight_decay, mask=matrices)
        decay = optax.add_decayed_weights(self.weight_decay, mask=matrices)
        return optax.chain(decay, optax.sgd(learning_rate))


@dataclass(frozen=True)
class StrategyConfig(OptimizerConfig):
    """Static options shared by every evolution strategy (validated on construction, hashable).

    Attributes (besides the optimiser's, see :class:`OptimizerConfig`):
      population_size: members N per generation; even when ``antithetic``.
      sigma: noise scale (> 0): member ``i`` is evaluated at ``params + sigma * E_i``.
      fitness_shaping: ``"centered_rank"`` (default) or ``"zscore"``.
      antithetic: evaluate each noise draw with both signs (members 2k, 2k+1).
      sigma_schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` decay from ``sigma`` to
        ``sigma_final_fraction`` of it over ``total_generations``.
      sigma_final_fraction: end value / start value, in [0, 1].
    """

    population_size: int = 1024
    sigma: float = 0.1  # validated above 0.05 at the defaults' length on 3 seeds (docs/results.md)
    fitness_shaping: str = "centered_rank"
    antithetic: bool = True
    sigma_schedule: str = "constant"
    sigma_final_fraction: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check_population_size(self.population_size, self.antithetic)
        if not (isinstance(self.sigma, (int, float)) and np.isfinite(self.sigma) and self.sigma > 0):
            raise ConfigError(f"sigma={self.sigma!r} must be a finite number > 0")
        _require_choice("fitness_shaping", self.fitness_shaping, tuple(SHAPINGS))
        self._check_schedule("sigma")

    def sigma_at(self, generation) -> jax.Array:
        """The noise scale used in ``generation`` (a scalar; ``generation`` may be traced)."""
        return jnp.asarray(self._schedule("sigma")(generation), jnp.float32)


def _require_choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(allowed)}")


class EvolutionStrategy(StrategyConfig):
    """ask/tell for antithetic Gaussian ES; subclasses choose the noise of 2-D weights.

    Subclasses are frozen dataclasses; their instances hold only static configuration and can be
    closed over by (or passed statically to) ``jax.jit``.
    """

    name: ClassVar[str] = "base"
    #: Members that :meth:`generation` evaluates (the trainer may split them over devices).
    has_population: ClassVar[bool] = True
    @property
    def shares_pairs(self) -> bool:
        """Members ``2k``, ``2k + 1`` are ``+E_k``, ``-E_k``, so the population forward can share the
        pair's first-layer product (``population.population_logits(..., antithetic_pairs=True)``)."""
        return self.antithetic

    # -- hooks ------------------------------------------------------------------------------
    def _check_params(self, params) -> None:
        """Raise ConfigError when ``params`` do not suit this strategy (called by ``init``)."""

    def _weight_perturbations(self, keys: jax.Array, shape: tuple[int, int], member_scales: jax.Array):
        """Per-member perturbations of an (m, n) weight: ``member_scales[i] * E_{pair(i)}``.

        Args:
          keys: ``(K,)`` keys of the noise pairs of this weight.
          shape: ``(m, n)``.
          member_scales: ``(N,)`` ``+-sigma`` per member.
        """
        raise NotImplementedError

    def _weight_direction(self, keys: jax.Array, shape: tuple[int, int], pair_weights: jax.Array, sigma) -> jax.Array:
        """``sum_k pair_weights[k] E_k`` as one (m, n) array, from the pair keys (K,); ``sigma`` of the generation."""
        raise NotImplementedError

    def _vector_noise(self, keys: jax.Array, shape: tuple[int, ...], sigma) -> jax.Array:
        """Unit-scale noise ``(K, *shape)`` of a non-matrix parameter (members use ``+-sigma`` times it)."""
        return noise.gaussian_pairs(keys, shape)

    # -- shared plumbing --------------------------------------------------------------------
    def init(self, key: jax.Array, params) -> StrategyState:
        """The state of generation 0 around ``params`` (raises ConfigError for unsuitable shapes)."""
        self._check_params(params)
        return StrategyState(
            params=params,
            opt_state=self.optimizer_transform().init(params),
            key=key,
            generation=jnp.zeros((), jnp.int32),
        )

    def _pair_keys(self, state: StrategyState, param_index: int) -> jax.Array:
        pairs = noise.num_pairs(self.population_size, self.antithetic)
        return noise.pair_keys(state.key, state.generation, pairs, param_index)

    def ask(self, state: StrategyState):
        """Perturbations ``sigma * E_i`` of every member: ``params``' structure, leading axis N.

        2-D weights get the subclass's perturbation type, other leaves dense ``(N, *shape)`` arrays.
        """
        sigma = self.sigma_at(state.generation)
        member_scales = sigma * noise.member_signs(self.population_size, self.antithetic)
        leaves, treedef = jax.tree_util.tree_flatten(state.params)
        perturbations = []
        for index, leaf in enumerate(leaves):
            keys = self._pair_keys(state, index)
            if leaf.ndim == 2:
                perturbations.append(self._weight_perturbations(keys, leaf.shape, member_scales))
            else:
                draws = self._vector_noise(keys, leaf.shape, sigma)
                members = draws[noise.member_pairs(self.population_size, self.antithetic)]
                perturbations.append(member_scales.reshape((-1,) + (1,) * leaf.ndim) * members)
        return jax.tree_util.tree_unflatten(treedef, perturbations)

    def ascent_direction(self, state: StrategyState, shaped_fitness: jax.Array):
        """``g = 1 / (N sigma) sum_i f~_i E_i`` per parameter (params' structure), noise regenerated."""
        sigma = self.sigma_at(state.generation)
        signed = shaped_fitness * noise.member_signs(self.population_size, self.antithetic)
        # Members of one pair share E_k up to sign: sum over the pair first (K weights, not N).
        pair_weights = jax.ops.segment_sum(
            signed,
            noise.member_pairs(self.population_size, self.antithetic),
            num_segments=noise.num_pairs(self.population_size, self.antithetic),
        )
        normaliser = 1.0 / (self.population_size * sigma)
        leaves, treedef = jax.tree_util.tree_flatten(state.params)
        directions = []
        for index, leaf in enumerate(leaves):
            keys = self._pair_keys(state, index)
            if leaf.ndim == 2:
                direction = self._weight_direction(keys, leaf.shape, pair_weights, sigma)
            else:
                direction = jnp.tensordot(pair_weights, self._vector_noise(keys, leaf.shape, sigma), axes=1)
            directions.append((normaliser * direction).astype(leaf.dtype))
        return jax.tree_util.tree_unflatten(treedef, directions)

    def tell(self, state: StrategyState, fitness: jax.Array) -> tuple[StrategyState, dict]:
        """Move the mean up the estimated fitness gradient (we maximise ``fitness``).

        Args:
          state: the state ``ask`` was called with.
          fitness: ``(N,)`` fitness of the members of ``ask(state)``, higher is better. Non-finite
            entries rank worst.

        Returns:
          ``(new_state, info)``; ``info`` holds scalars ``all_fitness_nan`` (bool: no member had a
          finite fitness; the state is then returned unchanged and training should stop, see
          :func:`raise_if_all_fitness_nan`), ``invalid_fitness`` (count of non-finite entries),
          ``sigma`` and ``learning_rate`` used this generation.
        """
        fitness = jnp.asarray(fitness, jnp.float32)
        if fitness.shape != (self.population_size,):
            raise ConfigError(
                f"tell got fitness of shape {fitness.shape}; expected (population_size={self.population_size},)"
            )
        finite = jnp.isfinite(fitness)
        shaped = SHAPINGS[self.fitness_shaping](fitness)
        ascent = self.ascent_direction(state, shaped)
        descent = jax.tree_util.tree_map(jnp.negative, ascent)
        updates, opt_state = self.optimizer_transform().update(descent, state.opt_state, state.params)
        stepped = StrategyState(
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
            key=state.key,
            generation=state.generation + 1,
        )
        all_nan = ~jnp.any(finite)
        # A generation without a single finite fitness carries no information: keep the old state.
        new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(all_nan, old, new), stepped, state)
        info = {
            "all_fitness_nan": all_nan,
            "invalid_fitness": jnp.sum(~finite),
            "sigma": self.sigma_at(state.generation),
            "learning_rate": self.learning_rate_at(state.generation),
        }
        return new_state, info


    def generation(self, state: StrategyState, inputs: jax.Array, labels: jax.Array, objective: Objective):
        """One generation on a minibatch: ask, evaluate every member, tell.

        Args:
          state: the strategy state.
          inputs: ``(B, T, input_size)`` float32, the minibatch all members share.
          labels: ``(B,)`` int.
          objective: the network, the population evaluation and the fitness.

        Returns:
          ``(new_state, GenerationMetrics)``.
        """
        perturbations = self.ask(state)
        losses, accuracies = objective.evaluate(state.params, perturbations, inputs, labels)
        member_fitness = -losses if objective.fitness == "cross_entropy" else accuracies
        new_state, info = self.tell(state, member_fitness)
        finite = jnp.isfinite(member_fitness)
        metrics = GenerationMetrics(
            fitness_mean=_finite_mean(member_fitness, finite),
            fitness_max=jnp.max(jnp.where(finite, member_fitness, -jnp.inf)),
            train_loss=_finite_mean(losses, finite),
            train_accuracy=_finite_mean(accuracies, finite),
            invalid_fitness=info["invalid_fitness"],
            sigma=info["sigma"],
            learning_rate=info["learning_rate"],
            all_fitness_nan=info["all_fitness_nan"],
        )
        return new_state, metrics

def all_fitness_nan_error(
    generation: int | None = None, kept: str = "the last good checkpoint is kept", options: str = "sigma or learning_rate"
) -> TrainingError:
    """The error of a generation in which no member had a finite fitness (``kept``: what survives)."""
    where = "" if generation is None else f" in generation {generation}"
    return TrainingError(
        f"every member's fitness was NaN or infinite{where}; the network diverged or the data "
        f"holds non-finite values. Training stopped; {kept}. Try a smaller {options}, or check the input frames."
    )


def raise_if_all_fitness_nan(info: dict, generation: int | None = None) -> None:
    """Raise :func:`all_fitness_nan_error` when ``tell`` reported that no member had a finite fitness.

    Call it outside ``jit`` on the ``info`` returned by ``tell``.
    """
    if bool(np.asarray(info["all_fitness_nan"])):
        raise all_fitness_nan_error(generation)


__all__ = [
    "OptimizerConfig",
    "StrategyConfig",
    "StrategyState",
    "EvolutionStrategy",
    "Objective",
    "GenerationMetrics",
    "all_fitness_nan_error",
    "raise_if_all_fitness_nan",
    "OPTIMIZERS",
    "SCHEDULES",
]
