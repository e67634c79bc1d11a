"""Convolutional LIF blocks: the network against a numpy reference written from the equations, the
low-rank conv forward against the dense kernel, and EGGROLL's estimator through a conv kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from eggroll_snn.network import NetworkConfig, input_features, forward, forward_with_state, init_params
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank, materialise, perturbed_linear
from eggroll_snn.strategies import make_strategy
from eggroll_snn.strategies.shaping import centered_ranks

CONFIG = NetworkConfig(
    input_size=2 * 9 * 9, input_shape=(2, 9, 9), conv_channels=(3, 4), conv_kernel=3, conv_pool=1,
    hidden_sizes=(6,), num_classes=5, threshold=0.5,
)


def _reference_conv(x, kernel, stride):
    """Valid cross-correlation of x (H, W, C_in) with kernel (C_out, C_in, k, k), plain loops."""
    height, width, _ = x.shape
    c_out, _, k, _ = kernel.shape
    out_h, out_w = (height - k) // stride + 1, (width - k) // stride + 1
    out = np.zeros((out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            window = x[i * stride : i * stride + k, j * stride : j * stride + k, :]  # (k, k, C_in)
            for o in range(c_out):
                out[i, j, o] = np.sum(window * np.transpose(kernel[o], (1, 2, 0)))
    return out


def _reference_forward(params, frames, config):
    """Logits of one recording frames (T, P, H, W), from the module docstring's equations."""
    layers = [{name: np.asarray(value, np.float64) for name, value in layer.items()} for layer in params["layers"]]
    k = config.conv_kernel
    steps = frames.shape[0]
    states = [None] * len(layers)
    readout_total = np.zeros(config.num_classes)
    readout_u = np.zeros(config.num_classes)
    for t in range(steps):
        activity = np.transpose(frames[t], (1, 2, 0)).astype(np.float64)  # (H, W, P)
        for index, layer in enumerate(layers[:-1]):
            if index < len(config.conv_channels):
                c_out = layer["weight"].shape[0]
                kernel = layer["weight"].reshape(c_out, -1, k, k)
                current = _reference_conv(activity, kernel, config.conv_stride) + layer["bias"]
            else:
                current = layer["weight"] @ activity.reshape(-1) + layer["bias"]
            v = current if states[index] is None else config.beta * states[index] + current
            spikes = (v >= config.threshold).astype(np.float64)
            states[index] = v - config.threshold * spikes
            if index < len(config.conv_channels):
                p = config.conv_pool
                h, w, c = spikes.shape
                spikes = spikes[: h // p * p, : w // p * p].reshape(h // p, p, w // p, p, c).sum(axis=(1, 3))
            activity = spikes
        readout_u = config.readout_beta * readout_u + layers[-1]["weight"] @ activity.reshape(-1) + layers[-1]["bias"]
        readout_total += readout_u
    return readout_total / steps


@pytest.mark.parametrize("pool, stride", [(1, 1), (2, 1), (1, 2)])
def test_conv_network_equals_a_numpy_reference_of_its_equations(pool, stride):
    config = CONFIG.__class__(**{**CONFIG.__dict__, "conv_pool": pool, "conv_stride": stride, "conv_channels": (3,) if pool == 2 else (3, 4)})
    params = init_params(jax.random.key(0), config)
    params["layers"][0]["weight"] = params["layers"][0]["weight"] * 3.0  # lively first block
    frames = jax.random.poisson(jax.random.key(1), 0.8, (3, 4, 2, 9, 9)).astype(jnp.float32)
    logits = forward(params, frames.reshape(3, 4, -1), config)
    reference = np.stack([_reference_forward(params, np.asarray(f), config) for f in frames])
    spikes = forward_with_state(params, frames.reshape(3, 4, -1), config)["spikes"][0]
    assert 0.02 < float(spikes.mean()) < 0.9  # the comparison exercises spiking, not silence
    np.testing.assert_allclose(np.asarray(logits), reference, rtol=1e-4, atol=1e-4)


def test_weight_shapes_follow_the_blocks():
    assert CONFIG.conv_shapes == ((7, 7, 3), (5, 5, 4))
    assert CONFIG.weight_shapes == ((3, 18), (4, 27), (6, 100), (5, 6))
    params = init_params(jax.random.key(0), CONFIG)
    assert [tuple(layer["weight"].shape) for layer in params["layers"]] == list(CONFIG.weight_shapes)


def test_low_rank_conv_forward_equals_the_dense_conv_with_the_materialised_kernel():
    params = init_params(jax.random.key(2), CONFIG)
    frames = jax.random.poisson(jax.random.key(3), 0.8, (2, 4, 2 * 9 * 9)).astype(jnp.float32)
    rank = 2
    perturbation = jax.tree_util.tree_map(lambda _: None, params)
    for index, layer in enumerate(params["layers"]):
        m, n = layer["weight"].shape
        keys = jax.random.split(jax.random.key(10 + index))
        perturbation["layers"][index]["weight"] = LowRank(
            jax.random.normal(keys[0], (m, rank)), jax.random.normal(keys[1], (n, rank)), jnp.asarray(0.3 / np.sqrt(rank))
        )
    low_rank = forward_with_state(params, frames, CONFIG, perturbation)
    dense_params = jax.tree_util.tree_map(lambda x: x, params)
    for index, layer in enumerate(dense_params["layers"]):
        layer["weight"] = materialise(layer["weight"], perturbation["layers"][index]["weight"])
    dense = forward_with_state(dense_params, frames, CONFIG)
    np.testing.assert_allclose(low_rank["logits"], dense["logits"], rtol=1e-4, atol=1e-4)
    for a, b in zip(low_rank["spikes"], dense["spikes"]):
        assert float(jnp.mean(a != b)) < 1e-3  # spikes equal up to float ties at the threshold
    # and the first block's currents are lax's own convolution of the frames with the kernel
    kernel = dense_params["layers"][0]["weight"].reshape(3, 2, 3, 3)
    lax_conv = jax.lax.conv_general_dilated(frames.reshape(8, 2, 9, 9), kernel, (1, 1), "VALID")  # (8, 3, 7, 7)
    ours = perturbed_linear(input_features(frames, CONFIG), params["layers"][0]["weight"], perturbation["layers"][0]["weight"])
    np.testing.assert_allclose(ours.reshape(8, 7, 7, 3), jnp.moveaxis(lax_conv, 1, -1), rtol=1e-4, atol=1e-4)


def _kernel_directions(strategy, weight, fitness_of_perturbation, generations):
    """Mean ascent directions for one conv kernel, the members evaluated through the conv forward."""
    params = {"w": weight}
    state = strategy.init(jax.random.key(7), params)

    @jax.jit
    def one(generation):
        current = state._replace(generation=generation)
        members = strategy.ask(current)["w"]
        fitness = jax.vmap(fitness_of_perturbation)(members)
        return strategy.ascent_direction(current, centered_ranks(fitness))["w"]

    return jax.lax.map(one, jnp.arange(generations))


def test_eggroll_through_a_conv_kernel_tracks_the_true_gradient_better_with_more_members():
    config = NetworkConfig(input_size=2 * 9 * 9, input_shape=(2, 9, 9), conv_channels=(8,), hidden_sizes=())
    frames = jax.random.poisson(jax.random.key(4), 0.8, (4, 2, 2 * 9 * 9)).astype(jnp.float32)
    patches = input_features(frames, config)  # (4, 2, 7, 7, 18)
    target = jax.random.normal(jax.random.key(5), (8, 18))
    wanted = perturbed_linear(patches, target)

    def fitness_of_weight(weight, perturbation=None):
        return -jnp.mean((perturbed_linear(patches, weight, perturbation) - wanted) ** 2)

    weight = jnp.zeros((8, 18))
    true_gradient = jax.grad(fitness_of_weight)(weight)
    cosines = []
    for population_size in (8, 64, 512):
        strategy = make_strategy("eggroll", population_size=population_size, sigma=0.05, rank=1)
        directions = _kernel_directions(strategy, weight, lambda member: fitness_of_weight(weight, member), 6)
        cosines.append(float(np.mean([
            jnp.vdot(d, true_gradient) / (jnp.linalg.norm(d) * jnp.linalg.norm(true_gradient)) for d in directions
        ])))
    assert all(later > earlier + 0.05 for earlier, later in zip(cosines, cosines[1:])), cosines
    assert cosines[-1] > 0.5, cosines


def test_eggroll_conv_kernel_update_approaches_full_rank_as_rank_grows():
    # f(K) = sum C * K^3 of a (C_out=8, C_in*k*k=2*3*3) kernel, the perturbed kernel read through the
    # same low-rank linear path the conv uses (eye @ (W + E)^T): the gap between EGGROLL's and dense
    # noise's smoothed gradients comes from the fourth moment of A B^T / sqrt(r) and shrinks ~ 1/r.
    coefficients = jax.random.normal(jax.random.key(9), (8, 18))
    weight = jnp.zeros((8, 18))

    def fitness(member):
        kernel = perturbed_linear(jnp.eye(18), weight, member).T  # (8, 18) = W + E
        return jnp.sum(coefficients * kernel**3)

    options = dict(population_size=8192, sigma=1.0, optimizer="sgd")

    def direction(strategy):
        state = strategy.init(jax.random.key(3), {"w": weight})

        @jax.jit
        def one(generation):
            current = state._replace(generation=generation)
            members = strategy.ask(current)["w"]
            return strategy.ascent_direction(current, jax.vmap(fitness)(members))["w"]

        return jax.lax.map(one, jnp.arange(4)).mean(axis=0)

    full_rank = direction(make_strategy("full_rank", **options))
    distances = [float(jnp.linalg.norm(direction(make_strategy("eggroll", rank=r, **options)) - full_rank)) for r in (1, 2, 4, 8)]
    assert all(later < 0.75 * earlier for earlier, later in zip(distances, distances[1:])), distances


def test_conv_blocks_that_leave_no_pixels_are_refused():
    # 9 x 9 -> 7 x 7 -> pooled 3 x 3 -> 1 x 1 -> pooled 0 x 0: one block fits, the second empties the map
    with pytest.raises(ConfigError, match=r"option network.conv_channels = \[4, 4, 4\] is out of range: at most 1 block\(s\) fit.*block 1 leaves no pixels"):
        NetworkConfig(input_size=2 * 9 * 9, input_shape=(2, 9, 9), conv_channels=(4, 4, 4), conv_kernel=3, conv_pool=2)
    with pytest.raises(ConfigError, match="input_shape"):
        NetworkConfig(input_size=162, conv_channels=(4,))


def test_spike_count_readout_counts_output_spikes():
    config = NetworkConfig(input_size=4, hidden_sizes=(), num_classes=2, readout="spike_count", beta=1.0, threshold=1.0)
    params = {"layers": [{"weight": jnp.asarray([[1.0, 0, 0, 0], [0.25, 0, 0, 0]]), "bias": jnp.zeros(2)}]}
    inputs = jnp.zeros((1, 8, 4)).at[0, :, 0].set(1.0)  # one unit of current per step into both neurons
    logits = forward(params, inputs, config)
    # neuron 0 reaches the threshold every step (8 spikes); neuron 1 every fourth step (2 spikes)
    np.testing.assert_array_equal(np.asarray(logits), [[8.0, 2.0]])
