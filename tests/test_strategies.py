"""Evolution strategies: noise regeneration, estimators against known gradients, toy training, bad input."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn.network import NetworkConfig, forward, init_params
from eggroll_snn.errors import ConfigError, TrainingError
from eggroll_snn.perturbation import LowRank, is_low_rank, materialise
from eggroll_snn.strategies import METHODS, STRATEGIES, GenerationMetrics, make_strategy, raise_if_all_fitness_nan
from eggroll_snn.strategies import noise
from eggroll_snn.strategies.shaping import SHAPINGS, centered_ranks, z_scores
from eggroll_snn.training.evaluators import local_objective


def _options(name: str, **options) -> dict:
    """Options for strategy ``name``; ``rank`` only where it applies."""
    if name != "eggroll":
        options.pop("rank", None)
    return options


def _members_dense(params, perturbations, population_size):
    """Member i's perturbation of every leaf as a dense array (N, *shape)."""

    def dense(leaf, perturbation):
        members = jax.vmap(lambda member: materialise(jnp.zeros_like(leaf), member))(perturbation)
        assert members.shape == (population_size, *leaf.shape)
        return members

    return jax.tree_util.tree_map(dense, params, perturbations, is_leaf=is_low_rank)


PARAMS = {"layers": [{"weight": jnp.ones((6, 5)), "bias": jnp.zeros((6,))}]}


# -- noise ------------------------------------------------------------------------------------
def test_same_indices_regenerate_the_same_factors_and_different_ones_are_independent():
    key = jax.random.key(0)
    shape, rank = (200, 100), 40

    def factors(generation, pair, param_index):
        keys = noise.member_key(key, generation, pair, param_index)[None]
        a, b = noise.low_rank_factors(keys, shape, rank)
        return np.concatenate([np.ravel(a), np.ravel(b)])

    reference = factors(3, 5, 1)
    np.testing.assert_array_equal(reference, factors(3, 5, 1))
    assert abs(reference.mean()) < 0.02 and abs(reference.std() - 1.0) < 0.02  # standard normal
    bound = 4.0 / np.sqrt(reference.size)  # four standard errors of a correlation of independent draws
    for other in (factors(4, 5, 1), factors(3, 6, 1), factors(3, 5, 2)):
        assert not np.array_equal(reference, other)
        assert abs(np.corrcoef(reference, other)[0, 1]) < bound


def test_gaussian_pairs_do_not_depend_on_how_draws_are_batched(monkeypatch):
    keys = noise.pair_keys(jax.random.key(1), 0, 6, 0)
    together = noise.gaussian_pairs(keys, (30, 20))
    monkeypatch.setattr(noise, "DRAW_CHUNK_SIZE", 1)  # one draw at a time
    np.testing.assert_array_equal(together, noise.gaussian_pairs(keys, (30, 20)))
    np.testing.assert_array_equal(together[4], jax.random.normal(keys[4], (30, 20)))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_antithetic_partners_are_exact_negatives_and_pairs_differ(name):
    strategy = make_strategy(name, **_options(name, population_size=6, sigma=0.1, rank=2))
    state = strategy.init(jax.random.key(2), PARAMS)
    perturbations = jax.jit(strategy.ask)(state)
    if name == "eggroll":
        assert isinstance(perturbations["layers"][0]["weight"], LowRank)
        assert perturbations["layers"][0]["weight"].a.shape == (6, 6, 2)
    dense = _members_dense(PARAMS, perturbations, 6)
    for leaf in jax.tree_util.tree_leaves(dense):
        for pair in range(3):
            np.testing.assert_array_equal(leaf[2 * pair], -leaf[2 * pair + 1])
        assert not np.allclose(leaf[0], leaf[2])
        # Entries have standard deviation sigma, like dense Gaussian noise.
        assert 0.05 < float(jnp.std(leaf)) < 0.2
    # Same state -> same noise; next generation -> fresh noise.
    again = _members_dense(PARAMS, jax.jit(strategy.ask)(state), 6)
    later = _members_dense(PARAMS, jax.jit(strategy.ask)(state._replace(generation=state.generation + 1)), 6)
    for first, second, third in zip(*map(jax.tree_util.tree_leaves, (dense, again, later))):
        np.testing.assert_array_equal(first, second)
        assert not np.allclose(first, third)


@pytest.mark.parametrize("antithetic", [True, False])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_tell_regenerates_the_noise_of_ask(name, antithetic):
    population_size = 8
    strategy = make_strategy(
        name, **_options(name, population_size=population_size, sigma=0.3, rank=2, antithetic=antithetic)
    )
    state = strategy.init(jax.random.key(3), PARAMS)
    shaped = jnp.linspace(-0.5, 0.5, population_size) ** 3
    # Reference: g = 1 / (N sigma) sum_i f~_i E_i with E_i = (member i's perturbation) / sigma.
    dense = _members_dense(PARAMS, jax.jit(strategy.ask)(state), population_size)
    expected = jax.tree_util.tree_map(
        lambda leaf: jnp.tensordot(shaped, leaf, axes=1) / 0.3 / (population_size * 0.3), dense
    )
    actual = jax.jit(strategy.ascent_direction)(state, shaped)
    for got, want in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        assert float(jnp.abs(want).max()) > 0.01


# -- estimators against known gradients ----------------------------------------------------------
def _cosine(x, y):
    return float(jnp.vdot(x, y) / (jnp.linalg.norm(x) * jnp.linalg.norm(y)))


def _directions(strategy, params, fitness_of_weight, generations, shaping):
    """Mean ascent direction of the single weight ``params["w"]`` over ``generations`` generations."""
    state = strategy.init(jax.random.key(7), params)

    @jax.jit
    def one(generation):
        current = state._replace(generation=generation)
        members = _members_dense(params, strategy.ask(current), strategy.population_size)["w"] + params["w"]
        fitness = jax.vmap(fitness_of_weight)(members)
        return strategy.ascent_direction(current, shaping(fitness))["w"]

    return jax.lax.map(one, jnp.arange(generations))


def test_eggroll_cosine_to_the_true_gradient_rises_with_population_size():
    target = jax.random.normal(jax.random.key(8), (16, 12))
    params = {"w": jnp.zeros((16, 12))}
    true_gradient = 2.0 * target  # of f(W) = -||W - W*||^2 at W = 0
    fitness = lambda weight: -jnp.sum((weight - target) ** 2)  # noqa: E731
    cosines = []
    for population_size in (8, 32, 128, 512):
        strategy = make_strategy("eggroll", population_size=population_size, sigma=0.05, rank=1)
        directions = _directions(strategy, params, fitness, 8, centered_ranks)
        cosines.append(np.mean([_cosine(direction, true_gradient) for direction in directions]))
    assert all(later > earlier + 0.05 for earlier, later in zip(cosines, cosines[1:])), cosines
    assert cosines[-1] > 0.6, cosines


def test_eggroll_update_approaches_the_full_rank_update_as_rank_grows():
    # f(W) = sum_ij C_ij W_ij^3 at W = 0: the Gaussian-smoothed gradient sigma^-1 E[f(sigma E) E] is
    # 3 sigma^2 C for dense noise but (3 + 6 / r) sigma^2 C for EGGROLL (the fourth moment of an
    # entry of A B^T / sqrt(r) is 3 + 6 / r): the gap shrinks as 6 sigma^2 ||C|| / r.
    coefficients = jax.random.normal(jax.random.key(9), (8, 8))
    params = {"w": jnp.zeros((8, 8))}
    fitness = lambda weight: jnp.sum(coefficients * weight**3)  # noqa: E731
    raw = lambda values: values  # noqa: E731  (no shaping: the estimator itself)
    options = dict(population_size=8192, sigma=1.0, optimizer="sgd")
    full_rank = _directions(make_strategy("full_rank", **options), params, fitness, 4, raw).mean(axis=0)
    assert float(jnp.linalg.norm(full_rank - 3.0 * coefficients) / jnp.linalg.norm(3.0 * coefficients)) < 0.15
    distances = []
    for rank in (1, 2, 4, 8):
        eggroll = _directions(make_strategy("eggroll", rank=rank, **options), params, fitness, 4, raw).mean(axis=0)
        distances.append(float(jnp.linalg.norm(eggroll - full_rank)))
    theory = [6.0 * float(jnp.linalg.norm(coefficients)) / rank for rank in (1, 2, 4, 8)]
    assert all(later < 0.75 * earlier for earlier, later in zip(distances, distances[1:])), distances
    np.testing.assert_allclose(distances, theory, rtol=0.5)  # sampling noise adds ~10-30 % at r = 8


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_one_sgd_step_increases_a_linear_fitness(name):
    gradient = jax.tree_util.tree_map(lambda leaf: jax.random.normal(jax.random.key(10), leaf.shape), PARAMS)
    fitness = lambda params: sum(  # noqa: E731
        jnp.vdot(g, p) for g, p in zip(jax.tree_util.tree_leaves(gradient), jax.tree_util.tree_leaves(params))
    )
    strategy = make_strategy(name, **_options(name, population_size=64, sigma=0.1, learning_rate=0.05, rank=1, optimizer="sgd"))
    state = strategy.init(jax.random.key(11), PARAMS)
    dense = _members_dense(PARAMS, jax.jit(strategy.ask)(state), 64)
    member_fitness = jax.vmap(lambda delta: fitness(jax.tree_util.tree_map(jnp.add, PARAMS, delta)))(dense)
    new_state, info = jax.jit(strategy.tell)(state, member_fitness)
    assert float(fitness(new_state.params)) > float(fitness(PARAMS)) + 0.1
    assert int(new_state.generation) == 1 and not bool(info["all_fitness_nan"])


# -- training a tiny LIF network ------------------------------------------------------------------
NUM_CLASSES, GROUP, TIME_BINS = 4, 6, 8


def _toy_events(key, count):
    """Four separable classes of spike patterns ``(count, T, 24)``: class c makes channel group c
    fire with probability 0.5 per bin, every other channel with 0.05."""
    label_key, spike_key = jax.random.split(key)
    labels = jax.random.randint(label_key, (count,), 0, NUM_CLASSES)
    group = jnp.arange(NUM_CLASSES * GROUP) // GROUP
    rate = jnp.where(group[None, :] == labels[:, None], 0.5, 0.05)[:, None, :]
    spikes = jax.random.bernoulli(spike_key, rate, (count, TIME_BINS, NUM_CLASSES * GROUP))
    return spikes.astype(jnp.float32), labels


@pytest.fixture(params=sorted(METHODS))
def method_name(request) -> str:
    """Every registered training method: the evolution strategies and BPTT."""
    return request.param


def _method(name: str, **options):
    """Method ``name`` with those of ``options`` it has."""
    known = {field.name for field in dataclasses.fields(METHODS[name])}
    return make_strategy(name, **{key: value for key, value in options.items() if key in known})


def test_every_method_trains_a_tiny_lif_network_on_a_toy_event_task(method_name):
    config = NetworkConfig(input_size=NUM_CLASSES * GROUP, hidden_sizes=(16,), num_classes=NUM_CLASSES)
    method = _method(method_name, population_size=32, sigma=0.1, learning_rate=0.05, rank=1)
    state = method.init(jax.random.key(12), init_params(jax.random.key(13), config))
    objective = local_objective(config, method)
    test_inputs, test_labels = _toy_events(jax.random.key(14), 512)
    accuracy = lambda params: float(  # noqa: E731
        jnp.mean(forward(params, test_inputs, config).argmax(axis=-1) == test_labels)
    )

    @jax.jit
    def generation(state, key):
        inputs, labels = _toy_events(key, 64)
        return method.generation(state, inputs, labels, objective)

    assert accuracy(state.params) < 0.5
    for step in range(30):
        state, metrics = generation(state, jax.random.fold_in(jax.random.key(15), step))
        assert isinstance(metrics, GenerationMetrics) and not bool(metrics.all_fitness_nan)
    assert int(state.generation) == 30 and np.isfinite(float(metrics.train_loss))
    assert accuracy(state.params) >= 0.95


def test_the_registry_names_each_method_by_its_own_name():
    assert set(METHODS) == {"eggroll", "full_rank", "eggroll_integer", "bptt"}
    assert all(method.name == name for name, method in METHODS.items())
    assert set(STRATEGIES) == {"eggroll", "full_rank", "eggroll_integer"}  # the ones with a population


# -- fitness shaping and non-finite fitness ---------------------------------------------------------
def test_centered_ranks_share_ties_and_rank_nan_worst():
    np.testing.assert_allclose(centered_ranks(jnp.array([3.0, 1.0, 2.0, 0.0])), [0.5, -1 / 6, 1 / 6, -0.5], rtol=1e-6)
    np.testing.assert_allclose(centered_ranks(jnp.array([1.0, 1.0, 2.0, 0.0])), [0.0, 0.0, 0.5, -0.5])
    np.testing.assert_allclose(
        centered_ranks(jnp.array([5.0, jnp.nan, -9.0, jnp.inf])), [0.5, -1 / 3, 1 / 6, -1 / 3], rtol=1e-6
    )


def test_z_scores_treat_nan_as_the_worst_finite_fitness():
    np.testing.assert_allclose(z_scores(jnp.array([1.0, 3.0])), [-1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(z_scores(jnp.array([1.0, 3.0, jnp.nan, 1.0])), z_scores(jnp.array([1.0, 3.0, 1.0, 1.0])))
    np.testing.assert_array_equal(z_scores(jnp.full(4, jnp.nan)), np.zeros(4))
    assert set(SHAPINGS) == {"centered_rank", "zscore"}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_all_nan_fitness_keeps_the_state_and_reports_it(name):
    strategy = make_strategy(name, **_options(name, population_size=4, rank=1))
    state = strategy.init(jax.random.key(16), PARAMS)
    new_state, info = jax.jit(strategy.tell)(state, jnp.full(4, jnp.nan))
    assert bool(info["all_fitness_nan"]) and int(info["invalid_fitness"]) == 4
    unchanged = (state.params, state.opt_state, state.generation)
    for old, new in zip(*map(jax.tree_util.tree_leaves, (unchanged, (new_state.params, new_state.opt_state, new_state.generation)))):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(TrainingError, match="generation 7"):
        raise_if_all_fitness_nan(info, generation=7)
    # One NaN member among finite ones is only ranked last; training goes on.
    stepped, info = jax.jit(strategy.tell)(state, jnp.array([1.0, jnp.nan, 0.5, 2.0]))
    assert not bool(info["all_fitness_nan"]) and int(info["invalid_fitness"]) == 1
    assert int(stepped.generation) == 1 and np.all(np.isfinite(stepped.params["layers"][0]["weight"]))
    raise_if_all_fitness_nan(info)


# -- schedules, optimiser, weight decay ----------------------------------------------------------
def test_sigma_and_learning_rate_schedules_decay_to_their_final_fraction():
    strategy = make_strategy(
        "eggroll", sigma=0.2, learning_rate=0.01, sigma_schedule="linear", learning_rate_schedule="cosine",
        sigma_final_fraction=0.25, learning_rate_final_fraction=0.0, total_generations=100,
    )
    np.testing.assert_allclose([strategy.sigma_at(g) for g in (0, 50, 100, 200)], [0.2, 0.125, 0.05, 0.05], rtol=1e-6)
    np.testing.assert_allclose([strategy.learning_rate_at(g) for g in (0, 50, 100)], [0.01, 0.005, 0.0], atol=1e-8)
    constant = make_strategy("full_rank", sigma=0.2)
    assert float(constant.sigma_at(10**6)) == pytest.approx(0.2)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_weight_decay_shrinks_weights_only(name):
    strategy = make_strategy(
        name, **_options(name, population_size=4, learning_rate=0.1, optimizer="sgd", weight_decay=0.5, rank=1)
    )
    params = {"layers": [{"weight": jnp.ones((6, 5)), "bias": jnp.ones((6,))}]}
    state = strategy.init(jax.random.key(17), params)
    new_state, _ = jax.jit(strategy.tell)(state, jnp.zeros(4))  # equal fitness: no ascent direction at all
    np.testing.assert_allclose(new_state.params["layers"][0]["weight"], 0.95, rtol=1e-6)
    np.testing.assert_array_equal(new_state.params["layers"][0]["bias"], 1.0)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "option"),
    [
        ("eggroll", {"population_size": 7}, "population_size"),
        ("full_rank", {"population_size": 7}, "population_size"),
        ("eggroll", {"population_size": 1, "antithetic": False}, "population_size"),
        ("eggroll", {"sigma": 0.0}, "sigma"),
        ("full_rank", {"sigma": -0.1}, "sigma"),
        ("eggroll", {"learning_rate": 0.0}, "learning_rate"),
        ("full_rank", {"learning_rate": -1.0}, "learning_rate"),
        ("eggroll", {"rank": 0}, "rank"),
        ("full_rank", {"rank": 2}, "rank"),
        ("eggroll", {"optimizer": "rmsprop"}, "optimizer"),
        ("eggroll", {"fitness_shaping": "raw"}, "fitness_shaping"),
        ("eggroll", {"weight_decay": -0.1}, "weight_decay"),
        ("eggroll", {"sigma_schedule": "cosine"}, "total_generations"),
        ("eggroll", {"learning_rate_schedule": "step", "total_generations": 10}, "learning_rate_schedule"),
        ("evosax", {}, "method"),
    ],
)
def test_bad_strategy_option_names_the_option(name, options, option):
    with pytest.raises(ConfigError, match=option):
        make_strategy(name, **options)


def test_a_weight_narrower_than_the_rank_uses_its_full_rank():
    params = {"narrow": jnp.zeros((6, 5)), "wide": jnp.zeros((9, 8))}
    clipped, exact = make_strategy("eggroll", rank=8), make_strategy("eggroll", rank=5)
    assert (clipped.layer_rank((6, 5)), clipped.layer_rank((9, 8)), clipped.layer_rank((10, 128))) == (5, 8, 8)
    dense = {
        rank: _members_dense(params, strategy.ask(strategy.init(jax.random.key(18), params)), strategy.population_size)
        for rank, strategy in ((8, clipped), (5, exact))
    }
    # The 6 x 5 weight gets the rank-5 factors under both ranks; the 9 x 8 weight does not.
    np.testing.assert_array_equal(dense[8]["narrow"], dense[5]["narrow"])
    assert not np.allclose(dense[8]["wide"], dense[5]["wide"])
    ranks = np.linalg.matrix_rank(np.asarray(dense[8]["wide"][:4]))
    np.testing.assert_array_equal(ranks, [8, 8, 8, 8])
    # Entries keep unit variance (over members) after clipping: E = A B^T / sqrt(min(r, m, n)).
    big = make_strategy("eggroll", rank=8, population_size=4096, sigma=1.0)
    members = _members_dense(params, big.ask(big.init(jax.random.key(19), params)), 4096)["narrow"]
    assert 0.93 < float(jnp.var(members)) < 1.07


def test_every_antithetic_strategy_shares_the_pair_product(method_name):
    # Members 2k, 2k+1 are +E_k, -E_k: the fast forward forms the pair's first-layer term once.
    method = _method(method_name, population_size=8)
    if not method.has_population:
        return
    assert method.shares_pairs
    assert not _method(method_name, antithetic=False, population_size=7).shares_pairs


def test_rank_above_every_weight_dimension_is_refused_at_init():
    strategy = make_strategy("eggroll", rank=6)
    with pytest.raises(ConfigError, match=r"strategy.rank = 6 is out of range: at most 5, the largest min\(m, n\) .*\(6x5;"):
        strategy.init(jax.random.key(18), PARAMS)
    make_strategy("eggroll", rank=5).init(jax.random.key(18), PARAMS)  # the largest valid rank


def test_fitness_of_the_wrong_shape_is_refused():
    strategy = make_strategy("eggroll", population_size=4)
    with pytest.raises(ConfigError, match="population_size=4"):
        strategy.tell(strategy.init(jax.random.key(19), PARAMS), jnp.zeros(5))
