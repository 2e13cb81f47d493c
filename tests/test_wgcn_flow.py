"""The wGCN particle flow (implicit / JKO Langevin step): solvers, energy dissipation, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.wgcn import check_flow_args
from ebm_zoo.sampling.langevin import wgcn_flow
from ebm_zoo.utils.checks import EbmZooError

SEED = tf.constant([3, 7], tf.int32)


def _zero_score(x):
    """f = 0, so E(x) = ‖x‖²/(2σ²): the Gaussian reference alone."""
    return tf.zeros([tf.shape(x)[0]])


def _one_step(x, sigma, delta, solver, j, noise=1.0):
    r = wgcn_flow(
        _zero_score,
        x,
        ref_sigma=sigma,
        num_steps=1,
        step_size=delta,
        seed=SEED,
        noise_scale=noise,
        implicit_iters=j,
        solver=solver,
    )
    return r.samples.numpy()


def _closed_form(x, sigma, delta, noise=1.0):
    """x' = (x_k + √(2τ)·s·z)/(1 + τ/σ²): the exact implicit step on E = ‖x‖²/(2σ²)."""
    tau = delta**2 / 2
    z = distribute.global_normal(tf.shape(x), distribute.split_seed(SEED, 0)).numpy()
    return (x.numpy() + np.sqrt(2 * tau) * noise * z) / (1 + tau / sigma**2)


def test_fixed_point_converges_to_the_implicit_step_when_contractive():
    x = tf.random.stateless_normal([3, 4, 4, 2], [0, 1])
    sigma, delta = 1.0, 1.0  # τ/σ² = 0.5 < 1: the fixed-point map contracts by 0.5 per iteration
    exact = _closed_form(x, sigma, delta)
    errors = [np.abs(_one_step(x, sigma, delta, "fixed_point", j) - exact).max() for j in (1, 2, 4, 8, 24)]
    assert errors[0] > 0.1  # J = 1 (explicit Langevin) is not the implicit step
    assert all(b < a for a, b in zip(errors, errors[1:]))
    np.testing.assert_allclose(errors[1] / errors[0], 0.5, rtol=1e-3)  # geometric rate τ/σ²
    assert errors[-1] < 1e-5


def test_fixed_point_diverges_when_tau_over_sigma2_exceeds_one():
    """The documented limit of plain fixed-point iterations: more J makes it worse."""
    x = tf.random.stateless_normal([2, 3, 3, 1], [0, 2])
    sigma, delta = 1.0, 1.6  # τ/σ² = 1.28
    exact = _closed_form(x, sigma, delta)
    errors = [np.abs(_one_step(x, sigma, delta, "fixed_point", j) - exact).max() for j in (1, 4, 8)]
    assert errors[2] > errors[1] > errors[0]


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_split_solver_is_exact_on_the_reference_term(noise):
    x = tf.random.stateless_normal([3, 4, 4, 1], [0, 3])
    sigma, delta = 0.5, 2.0  # τ/σ² = 8: far beyond explicit stability
    got = _one_step(x, sigma, delta, "split", 1, noise)
    np.testing.assert_allclose(got, _closed_form(x, sigma, delta, noise), rtol=1e-5, atol=1e-6)


def test_zero_steps_returns_the_start_and_trace_has_k_plus_one_entries():
    x = tf.random.stateless_normal([2, 3, 3, 1], [0, 4])
    r0 = wgcn_flow(_zero_score, x, ref_sigma=1.0, num_steps=0, step_size=0.5, seed=SEED)
    np.testing.assert_array_equal(r0.samples.numpy(), x.numpy())
    np.testing.assert_allclose(
        r0.energy_trace.numpy(), [0.5 * np.mean(np.sum(x.numpy() ** 2, (1, 2, 3)))], rtol=1e-5
    )
    r = wgcn_flow(_zero_score, x, ref_sigma=1.0, num_steps=6, step_size=0.5, seed=SEED)
    assert r.energy_trace.shape == (7,)


def _stiff_net():
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 1))
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(y)
    out = keras.layers.Dense(1)(keras.layers.Flatten()(y))
    net = keras.Model(inp, out)
    return lambda x: net(x)[:, 0]


@pytest.mark.parametrize("net", ["quadratic", "relu_net"])
def test_implicit_flow_dissipates_where_explicit_langevin_blows_up(net):
    """Noise off, τ/σ² = 4 (explicit Langevin needs τ/σ² < 2 on the reference term)."""
    score = _zero_score if net == "quadratic" else _stiff_net()
    x0 = tf.random.stateless_uniform([8, 8, 8, 1], [0, 5], -1.0, 1.0)
    common = dict(ref_sigma=0.5, num_steps=12, step_size=np.sqrt(2.0), seed=SEED, noise_scale=0.0)
    explicit = wgcn_flow(score, x0, solver="fixed_point", implicit_iters=1, **common).energy_trace.numpy()
    implicit = wgcn_flow(score, x0, solver="split", implicit_iters=4, **common).energy_trace.numpy()
    e0 = implicit[0]
    assert explicit[-1] > 1e3 * e0  # |1 − τ/σ²| = 3: the explicit chain blows up
    assert np.all(np.diff(implicit) <= 1e-4 * abs(e0))  # monotone (up to float noise near the minimum)
    assert implicit[-1] < 0.01 * e0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(step_size=0.0), "step_size"),
        (dict(step_size=-0.1), "step_size"),
        (dict(implicit_iters=0), "implicit_iters"),
        (dict(num_steps=-1), "num_steps"),
        (dict(noise_scale=-1.0), "noise_scale"),
        (dict(solver="newton"), "solver"),
    ],
)
def test_bad_flow_arguments_raise_clear_errors(kwargs, match):
    args = dict(num_steps=3, step_size=0.1, implicit_iters=1, noise_scale=1.0, solver="split")
    args.update(kwargs)
    with pytest.raises(EbmZooError, match=match):
        check_flow_args(**args)


def test_flow_trace_metrics_points_and_rises():
    from ebm_zoo.models.wgcn import FlowTraceMetrics

    m = FlowTraceMetrics(num_steps=4, points=3)
    assert [t.name for t in m.metrics] == ["flow_e00", "flow_e02", "flow_e04", "flow_rises"]
    m.update(tf.constant([5.0, 4.0, 4.5, 3.0, 2.0]))
    values = {t.name: float(t.result()) for t in m.metrics}
    assert values == {"flow_e00": 5.0, "flow_e02": 4.5, "flow_e04": 2.0, "flow_rises": 0.25}
    assert FlowTraceMetrics(num_steps=0, points=5).metrics == []
