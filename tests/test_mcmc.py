"""MALA / HMC / Langevin samplers on energies with known answers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.sampling import get_sampler, langevin, sampler_from_config
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import two_cpu_strategy

# A correlated 2-D Gaussian: Σ has eigenvalues 1.8 and 0.2 (precision eigenvalues 0.556 and 5).
MU = np.array([1.0, -1.0])
COV = np.array([[1.0, 0.8], [0.8, 1.0]])
PREC = np.linalg.inv(COV)


def gaussian_energy(x):
    d = x - tf.constant(MU, x.dtype)
    return 0.5 * tf.reduce_sum(tf.matmul(d, tf.constant(PREC, x.dtype)) * d, axis=1)


def ula_stationary_cov(delta):
    """Stationary covariance of x' = (I − τP)x + δz on this Gaussian: per precision eigenvalue λ,
    δ² / (1 − (1 − τλ)²) = 1 / (λ(1 − τλ/2)), τ = δ²/2 (exact for the unadjusted sampler)."""
    lam, v = np.linalg.eigh(PREC)
    tau = 0.5 * delta**2
    return v @ np.diag(1.0 / (lam * (1 - tau * lam / 2))) @ v.T


def final_states(sampler, n=10000, steps=150, seed=(1, 2)):
    run = tf.function(
        lambda: sampler.run(
            gaussian_energy, tf.zeros([n, 2]), num_steps=steps, seed=tf.constant(seed), trace=False
        )
    )
    res = run()
    return res.samples.numpy(), res


def cov_within_error(x, cov, k=5.0):
    """Each mean / covariance entry within k standard errors of the Gaussian truth (N iid rows)."""
    n = len(x)
    se_mean = np.sqrt(np.diag(cov) / n)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    return np.abs(x.mean(0) - MU) < k * se_mean, np.abs(np.cov(x.T) - cov) < k * se_cov


@pytest.mark.parametrize("name,settings", [("mala", {}), ("hmc", {"num_leapfrog_steps": 3})])
def test_adjusted_samplers_have_no_step_size_bias_where_langevin_has(name, settings):
    delta = 0.5
    # Unadjusted Langevin at this δ: the stationary covariance is its own closed form, and
    # measurably not Σ (variance along the short axis 0.29 instead of 0.2).
    x_ula, _ = final_states(get_sampler("langevin", step_size=delta))
    biased = ula_stationary_cov(delta)
    mean_ok, cov_ok = cov_within_error(x_ula, biased)
    assert mean_ok.all() and cov_ok.all()
    _, cov_at_truth = cov_within_error(x_ula, COV)
    assert not cov_at_truth.all()
    short_axis = np.linalg.eigh(COV)[1][:, 0]
    var_short = np.var(x_ula @ short_axis)
    assert var_short > 0.2 * (1 + 10 * np.sqrt(2 / len(x_ula)))  # > 10 se above the truth 0.2

    # The Metropolis-adjusted sampler at the same δ: exact.
    x, res = final_states(get_sampler(name, step_size=delta, **settings))
    mean_ok, cov_ok = cov_within_error(x, COV)
    assert mean_ok.all() and cov_ok.all(), (x.mean(0), np.cov(x.T))
    assert abs(np.var(x @ short_axis) - 0.2) < 5 * 0.2 * np.sqrt(2 / len(x))
    rate = res.accept_rate.numpy()
    assert rate.shape == (len(x),) and 0.5 < rate.mean() < 1.0  # some proposals were rejected


def mala_expected_acceptance_1d(delta):
    """E[min(1, α)] for MALA on N(0, 1) at stationarity, by numerical integration.

    With E = x²/2, x' = (1 − τ)x + δz and q(b|a) = N(b; (1 − τ)a, δ²), 1 − (1 − τ)² = δ²(1 − δ²/4),
    so log α = (x² − x'²)/2 − (x² − x'²)(1 − δ²/4)/2 = δ²(x² − x'²)/8.
    """
    g = np.linspace(-10, 10, 2001)
    x, z = np.meshgrid(g, g, indexing="ij")
    xp = (1 - delta**2 / 2) * x + delta * z
    alpha = np.minimum(1.0, np.exp(delta**2 * (x**2 - xp**2) / 8))
    w = np.exp(-(x**2 + z**2) / 2) / (2 * np.pi)
    return float(np.trapezoid(np.trapezoid(alpha * w, g, axis=1), g))


def test_mala_acceptance_rate_matches_closed_form():
    delta, n, steps = 1.6, 40000, 10
    expected = mala_expected_acceptance_1d(delta)
    assert 0.4 < expected < 0.9
    x0 = tf.random.stateless_normal([n, 1], [5, 5])  # exact stationary start
    sampler = get_sampler("mala", step_size=delta)
    energy = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=1)  # noqa: E731
    res = tf.function(lambda: sampler.run(energy, x0, num_steps=steps, seed=tf.constant([7, 7])))()
    measured = float(np.mean(res.accept_trace.numpy()))
    # Each step's mean over n chains has se ≤ sqrt(p(1-p)/n); the mean over steps no more.
    assert abs(measured - expected) < 5 * np.sqrt(expected * (1 - expected) / n), (measured, expected)
    # The chains stay N(0, 1).
    assert abs(np.var(res.samples.numpy()) - 1.0) < 5 * np.sqrt(2 / n)


def test_langevin_sampler_is_todays_langevin():
    def energy(x):
        return tf.reduce_sum(0.25 * x**4 - x**2, axis=[1, 2])

    x0 = tf.random.stateless_normal([6, 3, 2], [1, 1])
    seed = tf.constant([3, 9])
    ref = langevin(energy, x0, num_steps=7, step_size=0.2, seed=seed, clip=(-2.0, 2.0)).samples
    s = get_sampler("langevin", step_size=0.2, clip=(-2.0, 2.0))
    fast = s.run(energy, x0, num_steps=7, seed=seed, trace=False)
    traced = s.run(energy, x0, num_steps=tf.constant(7), max_steps=9, seed=seed, trace=True)
    np.testing.assert_array_equal(fast.samples.numpy(), ref.numpy())
    np.testing.assert_allclose(traced.samples.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    tr = traced.energy_trace.numpy()
    assert tr.shape == (10, 6)
    np.testing.assert_allclose(tr[0], energy(x0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(tr[7], energy(ref).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(tr[8], tr[7])  # padded past num_steps
    assert traced.grad_norm_trace.shape == (9,) and np.all(traced.accept_rate.numpy() == 1.0)


def test_traces_are_per_chain_and_padded():
    s = get_sampler("hmc", step_size=0.3, num_leapfrog_steps=2)
    x0 = tf.zeros([5, 2])
    res = tf.function(
        lambda n: s.run(gaussian_energy, x0, num_steps=n, max_steps=6, seed=tf.constant([1, 1]))
    )(tf.constant(4))
    e = res.energy_trace.numpy()
    assert e.shape == (7, 5)
    np.testing.assert_allclose(e[4], gaussian_energy(res.samples).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(e[5], e[4])
    acc = res.accept_trace.numpy()
    assert acc.shape == (6,) and acc[4] == acc[3]
    # accept_rate counts accepted proposals: the trace's mean over chains and steps agrees.
    np.testing.assert_allclose(res.accept_rate.numpy().mean(), acc[:4].mean(), rtol=1e-6)


def test_folded_normal_density_matches_a_long_image_sum():
    from ebm_zoo.sampling.mcmc import _log_folded_normal

    rng = np.random.default_rng(0)
    u = rng.uniform(size=8)
    m = rng.normal(size=8) * 5  # proposal means far outside the box too
    k = np.arange(-400, 401)[:, None]
    for s in (0.05, 0.3, 0.69, 0.71, 1.5, 4.0):
        mm = np.mod(m, 2.0)
        dens = np.exp(-0.5 * ((u - mm + 2 * k) / s) ** 2) + np.exp(-0.5 * ((-u - mm + 2 * k) / s) ** 2)
        ref = np.log(dens.sum(0) / (s * math.sqrt(2 * math.pi)))
        # Box [−1, 3] (width 4): the same law in box units.
        got = _log_folded_normal(
            tf.constant(4 * u[:, None] - 1, tf.float32),
            tf.constant(4 * m[:, None] - 1, tf.float32),
            tf.constant(4 * s, tf.float32),
            (-1.0, 3.0),
        ).numpy()
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "name,boundary,step",
    [
        ("mala", "reflect", 0.3),
        ("mala", "reflect", 3.0),
        ("hmc", "reflect", 0.3),
        ("mala", "reject", 0.3),
        ("hmc", "reject", 0.3),
    ],
)
def test_bounds_keep_chains_in_the_box_and_stay_exact(name, boundary, step):
    # A truncated exponential on [0, 1]^2: density ∝ exp(−3 x_i), mean 1/3 − e^{-3}/(1 − e^{-3}).
    extra = {"num_leapfrog_steps": 2} if name == "hmc" else {}
    # step 3.0 (3 box widths): proposals fold several times (the Fourier form of the density).
    s = get_sampler(name, step_size=step, bounds=(0.0, 1.0), boundary=boundary, **extra)
    energy = lambda x: 3.0 * tf.reduce_sum(x, axis=1)  # noqa: E731
    # Reflecting chains may start on a wall (as images clipped to [0, 1] do); rejecting ones inside.
    x0 = tf.zeros([20000, 2]) if boundary == "reflect" else tf.fill([20000, 2], 0.5)
    res = s.run(
        energy, x0, num_steps=40 if boundary == "reflect" else 150, seed=tf.constant([0, 3]), trace=False
    )
    x = res.samples.numpy()
    assert x.min() >= 0.0 and x.max() <= 1.0
    mean = 1 / 3 - math.exp(-3) / (1 - math.exp(-3))
    var = 1 / 9 - math.exp(-3) / (1 - math.exp(-3)) ** 2
    n = x.size
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / n), (x.mean(), mean)
    p_low = (1 - math.exp(-0.3)) / (1 - math.exp(-3))  # P(x < 0.1): the wall keeps its mass
    assert abs(np.mean(x < 0.1) - p_low) < 5 * math.sqrt(p_low * (1 - p_low) / n)
    # Rejecting at the walls is exact but slow (HMC ≈ 0.1 here); reflecting keeps acceptance up.
    assert res.accept_rate.numpy().mean() > (0.2 if boundary == "reflect" else 0.05)


def test_step_size_adaptation_reaches_target_acceptance():
    s = get_sampler("mala", step_size=3.0, target_accept=0.6, adapt_steps=300, adapt_rate=0.1)
    x0 = tf.random.stateless_normal([2000, 2], [1, 4]) * np.sqrt(np.diag(COV)) + MU
    res = tf.function(lambda: s.run(gaussian_energy, x0, num_steps=400, seed=tf.constant([4, 4])))()
    after = res.accept_trace.numpy()[300:].mean()  # fixed, adapted δ per chain after step 300
    assert abs(after - 0.6) < 0.05, after
    assert res.step_size.numpy().mean() < 2.0  # adapted down from 3.0


def test_two_replica_mala_and_hmc_equal_one_replica():
    strategy = two_cpu_strategy()

    def energy(x):  # a double well with coupling: rejections happen
        return tf.reduce_sum(x**4 - 2.0 * x**2, axis=1) + 0.5 * tf.reduce_sum(x, axis=1) ** 2

    x0 = tf.random.stateless_normal([8, 3], [6, 1])
    seed = tf.constant([2, 8])
    for name in ("mala", "hmc"):
        s = get_sampler(name, step_size=0.6, target_accept=0.5, adapt_steps=2)
        one = s.run(energy, x0, num_steps=5, seed=seed)

        @tf.function
        def per_replica(x, s=s):
            r = s.run(energy, x, num_steps=5, seed=seed)
            return r.samples, r.accept_rate, r.step_size

        dist_x = strategy.experimental_distribute_values_from_function(
            lambda ctx: x0[4 * ctx.replica_id_in_sync_group : 4 * (ctx.replica_id_in_sync_group + 1)]
        )
        out = strategy.run(per_replica, args=(dist_x,))
        parts = [np.concatenate([t.numpy() for t in strategy.experimental_local_results(o)]) for o in out]
        np.testing.assert_allclose(parts[0], one.samples.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(parts[1], one.accept_rate.numpy())
        np.testing.assert_allclose(parts[2], one.step_size.numpy(), rtol=1e-6)
        assert 0.0 < one.accept_rate.numpy().mean() < 1.0


def test_family_sampler_targets_what_the_familys_langevin_approximates():
    # A family with δ = 0.05, s = 0.5 on E = x²/2: its Langevin approximates exp(−E/s²) =
    # N(0, s²). MALA / HMC from family_sampler sample it exactly; langevin keeps (δ, s).
    from ebm_zoo.sampling import family_sampler

    energy = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=1)  # noqa: E731
    x0 = tf.zeros([20000, 1])
    lang = family_sampler("langevin", step_size=0.05, noise_scale=0.5, clip=(-3.0, 3.0))
    assert (lang.step_size, lang.noise_scale, lang.clip) == (0.05, 0.5, (-3.0, 3.0))
    for name in ("mala", "hmc"):
        s = family_sampler(name, step_size=2.0, noise_scale=0.5, clip=(-3.0, 3.0))
        assert s.step_size == 1.0 and s.temperature == 0.25 and s.bounds == (-3.0, 3.0)
        res = s.run(energy, x0, num_steps=30, seed=tf.constant([1, 5]))
        x = res.samples.numpy()
        n = len(x)
        assert abs(np.var(x) - 0.25) < 5 * 0.25 * np.sqrt(2 / n), np.var(x)
        # Energy traces are in units of E (not E/T).
        np.testing.assert_allclose(res.energy_trace.numpy()[-1], energy(res.samples).numpy(), rtol=1e-5)
    with pytest.raises(EbmZooError, match="noise_scale > 0"):
        family_sampler("mala", step_size=0.1, noise_scale=0.0)
    assert (
        family_sampler("hmc", step_size=0.1, num_leapfrog_steps=7, implicit_iters=3).num_leapfrog_steps == 7
    )
    assert family_sampler(None, step_size=0.1, implicit_iters=3).implicit_iters == 3


def test_get_sampler_names_settings_and_errors():
    s = get_sampler("hmc", step_size=0.2, num_leapfrog_steps=4, bounds=(0, 1))
    assert sampler_from_config(s.get_config()).get_config() == s.get_config()
    assert get_sampler(s) is s
    with pytest.raises(EbmZooError, match="nuts"):
        get_sampler("nuts")
    with pytest.raises(EbmZooError, match="num_leapfrog_steps"):
        get_sampler("mala", num_leapfrog_steps=3)
    with pytest.raises(EbmZooError, match="step_size"):
        get_sampler("mala", step_size=-1.0)
    with pytest.raises(EbmZooError, match="target_accept"):
        get_sampler("hmc", adapt_steps=10)
    with pytest.raises(EbmZooError, match="max_steps"):
        get_sampler("mala").run(
            gaussian_energy, tf.zeros([2, 2]), num_steps=tf.constant(3), seed=tf.constant([0, 0])
        )


def test_family_recipe_reproduces_a_descriptors_langevin_bit_for_bit():
    """The integration recipe (docs/sampling.md): a family's run_langevin through family_sampler."""
    from ebm_zoo.models.descriptor import Descriptor
    from ebm_zoo.sampling import family_sampler

    d = Descriptor(image_size=8, channels=1, mode="object", layers=[[4, 3, 2]], num_steps=5)
    d.build()
    x0 = d.chain_start(3, tf.constant([1, 2]), size=8)
    seed = tf.constant([3, 4])
    today = d.run_langevin(x0, seed).samples
    s = family_sampler("langevin", step_size=d.step_size, noise_scale=d.noise_scale, clip=d._clip())
    res = s.run(d._energy, x0, num_steps=5, max_steps=5, seed=seed, trace=False)
    np.testing.assert_array_equal(res.samples.numpy(), today.numpy())
    # The same family under MALA samples exp(−E/s²) (s = 1 here) inside the clip box.
    m = family_sampler("mala", step_size=d.step_size, noise_scale=d.noise_scale, clip=d._clip())
    out = m.run(d._energy, x0, num_steps=5, seed=seed)
    lo, hi = d._clip()
    assert out.samples.numpy().min() >= lo and out.samples.numpy().max() <= hi
    assert out.energy_trace.shape == (6, 3) and out.accept_rate.shape == (3,)
