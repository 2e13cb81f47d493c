"""The shared sampler on energies with known answers."""

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.sampling import ReplayBuffer, langevin
from tests.helpers import two_cpu_strategy


def gaussian_energy(mu, sigma):
    return lambda x: tf.reduce_sum(tf.square(x - mu) / (2 * sigma**2), axis=list(range(1, len(x.shape))))


def test_langevin_reproduces_gaussian_mean_and_variance():
    mu, sigma, delta = 1.5, 0.7, 0.2
    n = 20000
    run = tf.function(
        lambda: langevin(
            gaussian_energy(mu, sigma),
            tf.zeros([n, 2]),
            num_steps=600,
            step_size=delta,
            seed=tf.constant([3, 4]),
        )
    )
    x = run().samples.numpy()
    # Unadjusted Langevin on a Gaussian has stationary variance σ²/(1 − δ²/(4σ²)) (exact for ULA).
    var_ula = sigma**2 / (1 - delta**2 / (4 * sigma**2))
    se_mean = np.sqrt(var_ula / n)
    assert abs(x.mean() - mu) < 5 * se_mean
    assert abs(x.var() - var_ula) < 5 * var_ula * np.sqrt(2 / (2 * n))
    # Independent coordinates stay uncorrelated.
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 5 / np.sqrt(n)


def test_noise_free_langevin_is_gradient_descent_to_the_mode():
    r = langevin(
        gaussian_energy(2.0, 1.0),
        tf.zeros([4, 3]),
        num_steps=400,
        step_size=0.3,
        seed=tf.constant([0, 0]),
        noise_scale=0.0,
    )
    np.testing.assert_allclose(r.samples.numpy(), 2.0, atol=1e-4)


def test_energy_trace_records_every_step_and_pads():
    e = gaussian_energy(0.0, 1.0)
    x0 = tf.fill([8, 2], 3.0)
    r = langevin(
        e, x0, num_steps=5, max_steps=8, step_size=0.5, seed=tf.constant([0, 0]), noise_scale=0.0, trace=True
    )
    tr = r.energy_trace.numpy()
    assert tr.shape == (9,)
    # Gradient descent on a quadratic: E_t = E_0 (1 − δ²/2)^(2t).
    expected = 9.0 * (1 - 0.125) ** (2 * np.arange(6))
    np.testing.assert_allclose(tr[:6], expected, rtol=1e-5)
    np.testing.assert_allclose(tr[6:], tr[5], rtol=1e-6)


def test_clip_and_mask():
    e = gaussian_energy(10.0, 1.0)
    x0 = tf.zeros([2, 4])
    mask = tf.constant([[1.0, 0.0, 1.0, 0.0]])
    r = langevin(e, x0, num_steps=50, step_size=0.5, seed=tf.constant([1, 1]), clip=(0.0, 1.0), mask=mask)
    x = r.samples.numpy()
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x[:, [1, 3]], 0.0)  # unmasked pixels never move
    assert np.all(x[:, [0, 2]] > 0.5)


def test_implicit_step_matches_closed_form_on_quadratic():
    # E = ‖x‖²/(2σ²): the proximal step solves x' = x − τ x'/σ² + δz  =>  x' = (x + δz)/(1 + τ/σ²).
    # The fixed-point iteration contracts when τ/σ² < 1.
    sigma, delta = 1.0, 0.8
    tau = delta**2 / 2
    x0 = tf.random.stateless_normal([5, 3], [1, 2])
    seed = tf.constant([9, 9])
    r = langevin(gaussian_energy(0.0, sigma), x0, num_steps=1, step_size=delta, seed=seed, implicit_iters=60)
    z = tf.random.stateless_normal([5, 3], distribute.split_seed(seed, 0))
    expected = (x0 + delta * z) / (1 + tau / sigma**2)
    np.testing.assert_allclose(r.samples.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    explicit = langevin(gaussian_energy(0.0, sigma), x0, num_steps=1, step_size=delta, seed=seed)
    assert not np.allclose(explicit.samples.numpy(), expected.numpy(), atol=1e-2)


def test_bad_arguments():
    e = gaussian_energy(0.0, 1.0)
    with pytest.raises(ValueError, match="max_steps"):
        langevin(e, tf.zeros([1, 1]), num_steps=5, max_steps=3, step_size=0.1, seed=tf.constant([0, 0]))
    with pytest.raises(ValueError, match="implicit_iters"):
        langevin(e, tf.zeros([1, 1]), num_steps=1, step_size=0.1, seed=tf.constant([0, 0]), implicit_iters=0)


def test_replay_buffer_sequential_and_random():
    buf = ReplayBuffer(4, (2, 2, 1), reinit_prob=0.0, mode="sequential")
    fresh = lambda n, s: tf.fill([n, 2, 2, 1], 7.0)  # noqa: E731
    x, idx = buf.draw(4, tf.constant([0, 0]), fresh)
    np.testing.assert_array_equal(x.numpy(), 7.0)  # unfilled slots are initialised fresh
    buf.update(idx, tf.reshape(tf.range(16, dtype=tf.float32), [4, 2, 2, 1]))
    x2, _ = buf.draw(4, tf.constant([0, 1]), fresh)
    np.testing.assert_array_equal(x2.numpy().ravel(), np.arange(16))
    rb = ReplayBuffer(100, (1,), reinit_prob=0.25, mode="random")
    rb.update(tf.range(100), tf.ones([100, 1]))
    x3, idx3 = rb.draw(4000, tf.constant([5, 5]), lambda n, s: tf.zeros([n, 1]))
    frac_fresh = 1.0 - x3.numpy().mean()
    assert abs(frac_fresh - 0.25) < 0.03
    assert idx3.numpy().min() >= 0 and idx3.numpy().max() < 100


def test_replicas_draw_different_noise_and_match_one_replica():
    strategy = two_cpu_strategy()
    seed = tf.constant([4, 2])

    @tf.function
    def per_replica():
        return distribute.global_normal([3, 2], seed)

    out = strategy.run(per_replica)
    parts = [t.numpy() for t in strategy.experimental_local_results(out)]
    assert not np.allclose(parts[0], parts[1])  # replicas never share noise
    np.testing.assert_allclose(np.concatenate(parts), tf.random.stateless_normal([6, 2], seed).numpy())
