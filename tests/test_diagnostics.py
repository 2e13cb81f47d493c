"""Chain diagnostics and AIS on chains and energies with known answers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.sampling import get_sampler
from ebm_zoo.sampling.ais import GaussianReference, UniformReference, ais_log_z, bits_per_dim, log_mean_exp_se
from ebm_zoo.sampling.diagnostics import autocorrelation, diagnose, effective_sample_size, split_rhat
from ebm_zoo.utils.checks import EbmZooError


def ar1(n, chains, rho, seed=0, start=None):
    """x_t = ρ x_{t−1} + √(1 − ρ²) ε_t from stationarity (or from `start`): [n, chains]."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal([n, chains])
    x = np.empty([n, chains])
    x[0] = rng.standard_normal(chains) if start is None else start
    for t in range(1, n):
        x[t] = rho * x[t - 1] + math.sqrt(1 - rho**2) * eps[t]
    return x


def test_ess_of_ar1_matches_formula():
    n, rho = 4000, 0.7
    ess = effective_sample_size(ar1(n, 64, rho))
    expected = n * (1 - rho) / (1 + rho)  # 706 of 4000
    # The per-chain estimate scatters ~10% around its mean; the mean of 64 chains ~1.3%.
    assert abs(ess.mean() / expected - 1) < 0.05, (ess.mean(), expected)
    # The lag-k autocorrelation of an AR(1) is ρ^k.
    acf = autocorrelation(ar1(n, 64, rho, seed=1), 3)
    np.testing.assert_allclose(acf, rho ** np.arange(4), atol=0.03)
    # Independent draws: ESS ≈ n.
    assert abs(effective_sample_size(ar1(n, 64, 0.0, seed=2)).mean() / n - 1) < 0.05


def test_rhat_near_one_when_mixed_and_large_when_stuck_apart():
    mixed = ar1(1000, 4, 0.5, seed=3)
    assert abs(split_rhat(mixed) - 1.0) < 0.02
    # Four chains started at −6, −2, 2, 6 in separate wells they cannot leave: each an AR(1)
    # around its own centre.
    centres = np.array([-6.0, -2.0, 2.0, 6.0])
    stuck = ar1(1000, 4, 0.5, seed=4) + centres
    assert split_rhat(stuck) > 1.1
    # A single chain drifting between its halves is caught by the split.
    drift = ar1(1000, 1, 0.5, seed=5) + np.linspace(0, 5, 1000)[:, None]
    assert split_rhat(drift) > 1.1
    with pytest.raises(EbmZooError, match="T draws, K chains"):
        split_rhat(np.zeros(10))


def test_diagnose_reports_mixing_of_mala_on_a_gaussian():
    def energy(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=1)

    x0 = tf.random.stateless_normal([4, 3], [0, 1])
    sampler = get_sampler("mala", step_size=1.0, target_accept=0.6, adapt_steps=40)
    report, run = diagnose(
        energy, x0, sampler, num_steps=240, seed=tf.constant([1, 2]), burn_in=40, num_segments=4
    )
    assert run.energy_trace.shape == (241, 4)
    assert run.snapshots.shape == (6, 4, 3) and list(run.snapshot_steps) == [0, 40, 90, 140, 190, 240]
    np.testing.assert_allclose(run.snapshots[-1], run.snapshots[-1])
    # Energy of a 3-D standard Gaussian: mean d/2 = 1.5; R-hat ≈ 1 for these mixed chains.
    assert abs(report["energy"]["mean"] - 1.5) < 0.5
    assert report["energy"]["split_rhat"] < 1.1
    assert 0.4 < report["acceptance"]["mean"] < 0.85
    assert report["energy"]["draws"] == 200 and len(report["energy"]["ess_per_chain"]) == 4
    assert run.autocorrelation[0] == pytest.approx(1.0)


def gaussian_log_z(prec):
    d = prec.shape[0]
    return 0.5 * d * math.log(2 * math.pi) - 0.5 * math.log(np.linalg.det(prec))


@pytest.mark.parametrize("sampler", ["hmc", "mala"])
def test_ais_recovers_gaussian_log_z_within_its_standard_error(sampler):
    d = 4
    rng = np.random.default_rng(0)
    a = rng.standard_normal([d, d])
    prec = a @ a.T / d + 0.5 * np.eye(d)
    mu = np.array([1.0, -0.5, 0.3, 2.0])
    p, m = tf.constant(prec, tf.float32), tf.constant(mu, tf.float32)

    def energy(x):
        diff = x - m
        return 0.5 * tf.reduce_sum(tf.matmul(diff, p) * diff, axis=1) + 3.0  # + a constant offset

    truth = gaussian_log_z(prec) - 3.0
    settings = {"num_leapfrog_steps": 3} if sampler == "hmc" else {}
    res = ais_log_z(
        energy,
        GaussianReference([d], sigma=2.0),
        num_chains=500,
        num_temps=100,
        sampler=sampler,
        step_size=0.5,
        seed=tf.constant([1, 1]),
        **settings,
    )
    assert 0 < res.log_z_se < 0.1
    assert abs(res.log_z - truth) < 4 * res.log_z_se, (res.log_z, truth, res.log_z_se)
    assert res.weights_ess > 100 and 0.3 < res.accept_rate <= 1.0


def test_ais_with_uniform_reference_on_a_box():
    # E = x1 + 2 x2 on [0, 1]^2: Z = (1 − e^{−1})(1 − e^{−2})/2.
    def energy(x):
        return x[:, 0] + 2.0 * x[:, 1]

    truth = math.log((1 - math.exp(-1)) * (1 - math.exp(-2)) / 2)
    res = ais_log_z(
        energy, UniformReference([2]), num_chains=400, num_temps=30, sampler="mala", step_size=0.3
    )
    assert abs(res.log_z - truth) < 4 * res.log_z_se, (res.log_z, truth, res.log_z_se)
    with pytest.raises(EbmZooError, match="bounds"):
        ais_log_z(energy, UniformReference([2]), sampler=get_sampler("mala"), num_temps=2)
    with pytest.raises(EbmZooError, match="mala"):
        ais_log_z(energy, UniformReference([2]), sampler="langevin", num_temps=2)


def test_log_mean_exp_se_and_bits_per_dim():
    log_w = np.log(np.array([1.0, 2.0, 3.0, 6.0]))
    log_z, se, ess = log_mean_exp_se(log_w)
    assert log_z == pytest.approx(math.log(3.0))
    assert se == pytest.approx(np.std([1, 2, 3, 6], ddof=1) / (2 * 3.0))
    assert ess == pytest.approx(144 / 50)
    # Uniform density on [0, 1]^D (E = 0, log Z = 0): every 8-bit bin has probability 256^-D, 8 bits/dim.
    np.testing.assert_allclose(bits_per_dim(np.zeros(3), 0.0, num_dims=5), 8.0)
    # A density twice the uniform (log Z = −ln 2 spread over D dims) saves 1/D bit per dim.
    np.testing.assert_allclose(bits_per_dim([0.0], -math.log(2.0), num_dims=4), 8.0 - 0.25)


def test_model_bits_per_dim_of_a_descriptor_that_is_its_gaussian_reference():
    """A descriptor whose net is the constant b: E = ‖y‖²/(2σ²) − b, y = 255x − 127.5, so in
    [0, 1] space log Z = b + (D/2)·log(2πσ²) − D·log 255 and p is its Gaussian reference."""
    from ebm_zoo.models.descriptor import Descriptor
    from ebm_zoo.sampling.ais import model_bits_per_dim, model_reference

    m = Descriptor(image_size=4, channels=1, mode="object", layers=[[2, 3, 1]], ref_sigma=20.0)
    m.build()
    m.net.set_weights([np.zeros_like(w) for w in m.net.get_weights()])
    b = 0.7
    m.net.head.bias.assign([b])
    ref = model_reference(m)
    assert ref.sigma == pytest.approx(20.0 / 255) and float(ref.mean) == pytest.approx(0.5)
    d = 16
    log_z = b + 0.5 * d * math.log(2 * math.pi * 20.0**2) - d * math.log(255.0)
    x = np.random.default_rng(0).uniform(0.3, 0.7, size=[5, 4, 4, 1]).astype(np.float32)
    out = model_bits_per_dim(m, x, num_chains=8, num_temps=5, sampler="mala")
    assert out["log_z"] == pytest.approx(log_z, abs=1e-3) and out["reference"] == "GaussianReference"
    y = 255.0 * x.reshape(5, -1) - 127.5
    log_p = -(np.sum(y**2, axis=1) / (2 * 20.0**2) - b) - log_z
    expected = np.mean(-(log_p + d * math.log(1 / 256)) / (d * math.log(2)))
    assert out["bits_per_dim"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("temperature", [0.25, "model"])
def test_model_bits_per_dim_at_a_temperature(temperature):
    """exp(−E/T) of the constant-net descriptor is the Gaussian reference at T: with
    E = ‖y‖²/(2σ²) − b, y = 255x − 127.5, log Z_T = b/T + (D/2)·log(2πσ²T) − D·log 255."""
    from ebm_zoo.models.descriptor import Descriptor
    from ebm_zoo.sampling.ais import model_bits_per_dim, model_reference, model_temperature

    m = Descriptor(
        image_size=4, channels=1, mode="object", layers=[[2, 3, 1]], ref_sigma=20.0, noise_scale=0.3
    )
    m.build()
    m.net.set_weights([np.zeros_like(w) for w in m.net.get_weights()])
    b = 0.7
    m.net.head.bias.assign([b])
    t = model_temperature(m, temperature)
    assert t == pytest.approx(0.25 if temperature == 0.25 else 0.09)
    assert model_reference(m, t).sigma == pytest.approx(20.0 * math.sqrt(t) / 255)
    d = 16
    log_z = b / t + 0.5 * d * math.log(2 * math.pi * 20.0**2 * t) - d * math.log(255.0)
    x = np.random.default_rng(1).uniform(0.4, 0.6, size=[3, 4, 4, 1]).astype(np.float32)
    out = model_bits_per_dim(m, x, num_chains=8, num_temps=5, sampler="mala", temperature=temperature)
    assert out["log_z"] == pytest.approx(log_z, abs=1e-3) and out["temperature"] == pytest.approx(t)
    e = (np.sum((255.0 * x.reshape(3, -1) - 127.5) ** 2, axis=1) / (2 * 20.0**2) - b) / t
    assert out["energy_mean"] == pytest.approx(float(e.mean()), rel=1e-5)
    expected = (e.mean() + log_z - d * math.log(1 / 256)) / (d * math.log(2))
    assert out["bits_per_dim"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(EbmZooError, match="temperature"):
        model_temperature(m, "hot")
