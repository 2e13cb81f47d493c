"""VAPO (ebm_zoo.models.vapo) and its U-Net (ebm_zoo.nets.unet): closed forms, gradients,
EMA sampling weights, 1- vs 2-replica training, bad input."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.models import vapo as vapo_lib
from ebm_zoo.models.vapo import VAPO
from ebm_zoo.nets.unet import TimeUNet, count_params_analytic
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import tiny_vapo, two_cpu_strategy


@pytest.fixture(autouse=True, scope="module")
def _fast_graphs():
    """Tiny nets: skip Grappler's graph optimisation (it dominates their compile time)."""
    old = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": old.get("disable_meta_optimizer", False)}
    )


def _tiny(**kw) -> VAPO:
    return tiny_vapo(**kw)


def _randomise_output_conv(net, seed=0, scale=0.3):
    """Gives every zero-initialised weight (output conv, residual-branch convs, attention
    projections, biases) random values, so U ≠ 0 and every branch is active."""
    rng = np.random.default_rng(seed)
    for w in net.weights:
        if not np.any(w.numpy()):
            w.assign(scale * rng.standard_normal(w.shape).astype(np.float32))


# ----------------------------------------------------------------------------------------------
# U-Net.
def test_param_count_analytic_matches_built_and_cifar_size():
    small = dict(
        out_channels=1, base_channels=16, channel_mults=(1, 2), num_res_blocks=2, attn_resolutions=(8,)
    )
    net = TimeUNet(image_size=16, time_embed_dim=32, **small)
    net(tf.zeros([1, 16, 16, 1]), tf.zeros([1]))
    assert net.count_params() == count_params_analytic(image_size=16, time_embed_dim=32, **small)
    # The CIFAR-10 net of the official code: its README lists 55.7M parameters.
    assert count_params_analytic() == 55_676_419
    # The CelebA 64×64 net is the same net (attention at 32×32): the same count.
    assert count_params_analytic(image_size=64, attn_resolutions=(32,)) == 55_676_419


@pytest.mark.slow
def test_cifar_unet_builds_with_analytic_count():
    net = TimeUNet()  # 128 channels, (2, 2, 2), 4 blocks, attention at 16
    out = net(tf.zeros([1, 32, 32, 3]), tf.zeros([1]))
    assert net.count_params() == count_params_analytic() and out.shape == (1, 32, 32, 3)


def test_potential_is_half_norm_at_init_and_velocity_is_x():
    m = _tiny()
    x01 = np.random.default_rng(0).random([3, 4, 4, 1]).astype(np.float32)
    x = 2 * x01 - 1
    for t in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(m.potential(x01, t), 0.5 * np.sum(x**2, axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(m.velocity(tf.constant(0.5), tf.constant(x)), x, atol=1e-6)


def test_dropout_is_stateless_and_off_without_seed():
    net = TimeUNet(
        out_channels=1,
        base_channels=8,
        channel_mults=(1,),
        num_res_blocks=1,
        attn_resolutions=(),
        dropout=0.5,
        image_size=4,
    )
    x, t = tf.random.normal([2, 4, 4, 1]), tf.constant([0.2, 0.7])
    net(x, t)
    _randomise_output_conv(net)
    a, b = net(x, t, dropout_seed=tf.constant([1, 2])), net(x, t, dropout_seed=tf.constant([1, 2]))
    c, d = net(x, t, dropout_seed=tf.constant([3, 4])), net(x, t)
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-4 and np.max(np.abs(d - net(x, t))) == 0.0


# ----------------------------------------------------------------------------------------------
# Gradients and loss terms.
def test_g_and_g_t_match_finite_differences():
    m = _tiny()
    _randomise_output_conv(m.net)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal([2, 4, 4, 1]), tf.float64)
    t = tf.constant([0.3, 0.8], tf.float64)
    f32 = lambda a: tf.cast(a, tf.float32)  # noqa: E731
    phi, g, g_t = m._potential_and_grads(m.net, f32(x), f32(t))
    phi_fn = lambda x, t: m._potential(m.net, f32(x), f32(t)).numpy().astype(np.float64)  # noqa: E731
    h = 1e-2
    dt = (phi_fn(x, t + h) - phi_fn(x, t - h)) / (2 * h)
    np.testing.assert_allclose(g_t, dt, rtol=2e-2, atol=2e-3)
    for idx in [(0, 1, 2, 0), (1, 3, 0, 0)]:
        e = np.zeros([2, 4, 4, 1])
        e[idx] = h
        fd = (phi_fn(x + e, t) - phi_fn(x - e, t)) / (2 * h)
        assert abs(fd[idx[0]] - g.numpy()[idx]) < 2e-2 * max(1.0, abs(fd[idx[0]]))
        assert abs(fd[1 - idx[0]]) < 1e-3  # Φ of one image does not depend on another image


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_official_terms_closed_form_at_init(reduction):
    """At init Φ = ½‖x‖², g = x, g_t = 0: every term has a closed form."""
    m = _tiny()
    rng = np.random.default_rng(2)
    y = rng.uniform(-1, 1, [6, 4, 4, 1]).astype(np.float32)
    eps = rng.standard_normal([6, 4, 4, 1]).astype(np.float32)
    t = rng.uniform(0.01, 1, [6]).astype(np.float32)
    x = t[:, None, None, None] * y + (1 - t[:, None, None, None]) * eps
    phi, g, g_t = m._potential_and_grads(m.net, tf.constant(x), tf.constant(t))
    terms = vapo_lib.official_terms(phi, g, g_t, tf.constant(y), tf.constant(eps), tf.constant(t), reduction)
    d = 16 if reduction == "mean" else 1
    flat = lambda a: a.reshape(6, -1)  # noqa: E731
    phi_np = 0.5 * np.sum(flat(x) ** 2, 1)
    gamma = np.mean(flat(eps**2 - y * eps), 1) * (1 - t)
    corr = np.mean((gamma - gamma.mean()) * phi_np) / (gamma.std(ddof=1) * phi_np.std(ddof=1) + 1e-8)
    v = flat(y - eps)
    dot = np.sum(flat(x) * v, 1) / d
    align = -np.mean(dot / (np.linalg.norm(flat(x), axis=1) * np.linalg.norm(v, axis=1) + 1e-8) ** t)
    np.testing.assert_allclose(terms["corr"], corr, rtol=1e-4)
    np.testing.assert_allclose(terms["norm"], np.mean(np.sum(flat(x) ** 2, 1)) / d, rtol=1e-5)
    np.testing.assert_allclose(terms["time"], 0.0, atol=1e-10)
    np.testing.assert_allclose(terms["align"], align, rtol=1e-4)


@pytest.mark.parametrize("stat", [vapo_lib.correlation, vapo_lib.covariance])
def test_global_batch_statistic_gradient_equals_autodiff(stat):
    rng = np.random.default_rng(3)
    gamma = tf.constant(rng.standard_normal(8), tf.float32)
    theta = tf.Variable(rng.standard_normal(8).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        phi = tf.exp(theta) + theta**2
        direct = stat(gamma, phi)
        surrogate = vapo_lib.global_batch_statistic(stat, gamma, phi)
    np.testing.assert_allclose(surrogate, direct, rtol=1e-6)
    np.testing.assert_allclose(
        tape.gradient(surrogate, theta), tape.gradient(direct, theta), rtol=1e-4, atol=1e-6
    )


def test_correlation_normaliser_is_detached_as_in_the_official_code():
    """Official: Corr = mean(Γ_c·Φ) / (std Γ · std(Φ.detach())), so ∂Corr/∂Φ_i = Γ_c,i/(N·sΓ·sΦ);
    the non-detached variant is a true correlation, invariant to Φ -> aΦ + b."""
    rng = np.random.default_rng(11)
    gamma = tf.constant(rng.standard_normal(8), tf.float32)
    phi = tf.Variable(rng.standard_normal(8).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        detached = vapo_lib.correlation(gamma, phi)
        full = vapo_lib.correlation(gamma, phi, detach_scale=False)
    np.testing.assert_allclose(detached, full, rtol=1e-6)  # same value
    g_np, p_np = gamma.numpy(), phi.numpy()
    want = (g_np - g_np.mean()) / (8 * g_np.std(ddof=1) * p_np.std(ddof=1))
    np.testing.assert_allclose(tape.gradient(detached, phi), want, rtol=1e-4, atol=1e-7)
    g_full = tape.gradient(full, phi).numpy()
    assert abs(np.dot(g_full, p_np - p_np.mean())) < 1e-5  # scale-invariant: no push along Φ_c
    assert abs(np.dot(want, p_np - p_np.mean())) > 1e-2  # the detached one pushes along Φ_c


def test_std_gradient_clip_uses_adams_second_moment():
    """|G| <= c·sqrt(v / (1 − β₂^k)) + 0.1 elementwise, k = steps taken; nothing at k = 0."""
    m = _tiny(grad_clip=3.0, grad_clip_mode="std")
    m.compile()
    opt, variables = m.optimizer, m.net.trainable_variables
    for v in opt._velocities:
        v.assign(tf.fill(v.shape, 0.04))
    grads = [
        tf.where(tf.random.uniform(v.shape, seed=1) < 0.5, 100.0, 1.0) * tf.ones(v.shape) for v in variables
    ]
    unclipped = m._clip_by_adam_std(grads)  # k = 0: no clip
    for a, b in zip(unclipped, grads):
        np.testing.assert_array_equal(a, b)
    opt.iterations.assign(1)
    bound = 3.0 * math.sqrt(0.04 / (1 - 0.999)) + 0.1  # 19.07
    for got, g in zip(m._clip_by_adam_std(grads), grads):
        np.testing.assert_allclose(got, np.minimum(g.numpy(), bound), rtol=1e-5)
    with pytest.raises(EbmZooError, match="grad_clip_mode"):
        _tiny(grad_clip_mode="value")


# ----------------------------------------------------------------------------------------------
# Sampling.
def _init_flow_solution(m, n=5, seed=7):
    """At init dx/dt = x, so a sample is clip((x(0)·e^(t_end − t_start) + 1)/2, 0, 1)."""
    x0 = tf.random.stateless_normal([n, 4, 4, 1], [seed, 0]).numpy()
    return np.clip((x0 * math.exp(m.t_end - m.t_start) + 1) / 2, 0, 1)


def test_euler_sampler_solves_the_init_flow_in_closed_form():
    m = _tiny()
    got, nfe = m.sample_with_nfe(5, seed=7, solver="euler", num_steps=200)
    np.testing.assert_allclose(got, _init_flow_solution(m), atol=1e-2)  # e vs (1 + 1/200)^200
    assert nfe == 200


@pytest.mark.slow
def test_dopri5_sampler_solves_the_init_flow_in_closed_form():
    m = _tiny()
    got = m.sample(5, seed=7)  # dopri5, rtol = atol = 1e-3, through EnergyModel.sample
    np.testing.assert_allclose(got, _init_flow_solution(m), atol=5e-3)


@pytest.mark.slow
def test_sample_uses_ema_weights():
    m = _tiny(ema_decay=0.5)
    m.compile(run_eagerly=True)
    m.build_all()
    x01 = np.random.default_rng(4).random([4, 4, 4, 1]).astype(np.float32)
    before = [w.numpy() for w in m.ema_net.weights]
    m.fit(x01, batch_size=4, epochs=1, verbose=0, shuffle=False)
    # EMA after one step: 0.5·θ0 + 0.5·θ1 (θ0 = the initial weights, copied into the EMA net).
    for e, w, b in zip(m.ema_net.weights, m.net.weights, before):
        np.testing.assert_allclose(e.numpy(), 0.5 * b + 0.5 * w.numpy(), atol=1e-6)
    # Make the training net very different from the EMA net: samples must not change.
    s1 = m.sample(3, seed=1, solver="rk4", num_steps=4).numpy()
    _randomise_output_conv(m.net, scale=5.0)
    s2 = m.sample(3, seed=1, solver="rk4", num_steps=4).numpy()
    np.testing.assert_array_equal(s1, s2)
    # ... and changing the EMA net changes them. (After a training step no EMA weight is exactly
    # zero any more, so perturb every weight rather than only the zero-initialised ones.)
    rng = np.random.default_rng(7)
    for w in m.ema_net.weights:
        w.assign(w.numpy() + 0.5 * rng.standard_normal(w.shape).astype(np.float32))
    m._compiled_sample.clear()
    assert np.max(np.abs(m.sample(3, seed=1, solver="rk4", num_steps=4).numpy() - s1)) > 1e-3


@pytest.mark.slow
def test_inpaint_keeps_known_pixels_and_interpolate_endpoints():
    m = _tiny()
    x01 = np.random.default_rng(5).random([2, 4, 4, 1]).astype(np.float32)
    mask = np.zeros([1, 4, 4, 1], np.float32)
    mask[:, :, 2:] = 1
    out = m.inpaint(x01, mask, seed=3, solver="rk4", num_steps=4).numpy()
    np.testing.assert_array_equal(out[:, :, :2], x01[:, :, :2])
    assert np.max(np.abs(out[:, :, 2:] - x01[:, :, 2:])) > 1e-2
    inter = m.interpolate(2, seed=0, num_points=5, solver="rk4", num_steps=6).numpy()
    assert inter.shape == (2, 5, 4, 4, 1)
    z = tf.random.stateless_normal([2, 2, 16], [0, 1]).numpy()
    want0 = np.clip((z[0].reshape(2, 4, 4, 1) * math.exp(m.t_end - m.t_start) + 1) / 2, 0, 1)
    np.testing.assert_allclose(inter[:, 0], want0, atol=1e-3)  # α = 0 is the first prior draw


@pytest.mark.slow
def test_ood_scores_shapes_and_nll_closed_form_at_init():
    """At init the flow is x' = x, so x(0) = x1·e^(−Δ) and ∫ΔΦ dt = D·Δ exactly for z with ‖z‖² ≈ D."""
    m = _tiny()
    x01 = np.random.default_rng(6).random([3, 4, 4, 1]).astype(np.float32)
    nll = m.ood_score(x01, num_steps=8).numpy()
    assert nll.shape == (3,) and np.all(np.isfinite(nll))
    d, delta = 16, m.t_end - m.t_start
    x1 = (2 * x01 - 1).reshape(3, -1)
    z = tf.random.stateless_normal([3, 4, 4, 1], [0, 3]).numpy().reshape(3, -1)
    x0 = x1 * math.exp(-delta)
    log_p1 = -0.5 * np.sum(x0**2, 1) - 0.5 * d * math.log(2 * math.pi) - np.sum(z**2, 1) * delta
    want = -(log_p1 + d * math.log(2)) / (d * math.log(2))
    np.testing.assert_allclose(nll, want, rtol=1e-3)
    np.testing.assert_allclose(m.ood_score(x01, method="potential"), -m.energy(x01), rtol=1e-4)


@pytest.mark.slow
def test_savedmodel_sampling_signatures(tmp_path):
    """`sample` (-1: the model's dopri5; K: K Euler steps), `sample_ode` (tensor tolerances,
    NFE out), `inpaint` and `energy` reproduce the Python API; bad inputs fail the request.
    (The VAPO export test: tests/test_export.py covers the other families.)"""
    from ebm_zoo.export import export_savedmodel

    m = _tiny()
    _randomise_output_conv(m.ema_net, scale=0.2)
    loaded = tf.saved_model.load(export_savedmodel(m, tmp_path / "vapo"))
    ints = lambda **kw: {k: tf.constant(v, tf.int64 if k == "seed" else tf.int32) for k, v in kw.items()}  # noqa: E731
    served = loaded.signatures["sample"](**ints(num_samples=3, seed=4, num_steps=-1))["images"]
    np.testing.assert_allclose(served, m.sample(3, seed=4), atol=1e-5)
    euler = loaded.signatures["sample"](**ints(num_samples=3, seed=4, num_steps=7))["images"]
    np.testing.assert_allclose(euler, m.sample(3, seed=4, solver="euler", num_steps=7), atol=1e-5)
    assert np.max(np.abs(euler.numpy() - served.numpy())) > 1e-4  # a different solver
    ode_out = loaded.signatures["sample_ode"](
        **ints(num_samples=3, seed=4), rtol=tf.constant(m.rtol), atol=tf.constant(m.atol)
    )
    want, nfe = m.sample_with_nfe(3, seed=4)
    np.testing.assert_allclose(ode_out["images"], want, atol=1e-5)
    assert int(ode_out["nfe"]) == nfe
    loose = loaded.signatures["sample_ode"](
        **ints(num_samples=3, seed=4), rtol=tf.constant(0.1), atol=tf.constant(0.1)
    )
    assert int(loose["nfe"]) < nfe
    with pytest.raises(tf.errors.InvalidArgumentError, match="rtol"):
        loaded.signatures["sample_ode"](
            **ints(num_samples=3, seed=4), rtol=tf.constant(0.0), atol=tf.constant(1e-3)
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_steps"):
        loaded.signatures["sample"](**ints(num_samples=3, seed=4, num_steps=10_000))
    x = np.random.default_rng(0).random([2, 4, 4, 1]).astype(np.float32)
    mask = np.zeros([2, 4, 4, 1], np.float32)
    mask[:, 2:] = 1.0
    filled = loaded.signatures["inpaint"](
        images=tf.constant(x), mask=tf.constant(mask), seed=tf.constant(0, tf.int64)
    )
    np.testing.assert_allclose(filled["images"], m.inpaint(x, mask, seed=0), atol=1e-5)
    np.testing.assert_array_equal(filled["images"].numpy()[:, :2], x[:, :2])
    energy = loaded.signatures["energy"](images=tf.constant(x))["energy"]
    np.testing.assert_allclose(energy, m.energy(x), rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Distribution: 2 replicas == 1 replica.
def _train_steps(strategy, x01, steps, weights=None, clip_mode="norm"):
    """Trains a tiny VAPO for `steps` steps of global batch 8; starts from `weights` if given.

    The U-Net's initial weights come from Keras' global RNG (VAPO's `seed` drives only the
    training noise), so a 1- vs 2-replica comparison must start both models from the same
    weights. At init the output conv is zero, so Φ = ½‖x‖² and every loss term is independent
    of the other weights — but their gradients are not.
    """
    with strategy.scope():
        # dropout and clipping active
        m = _tiny(dropout=0.2, grad_clip=0.05, grad_clip_mode=clip_mode, ema_decay=0.5)
        m.compile(run_eagerly=True)
        m.build_all()
        if weights is not None:
            m.set_weights(weights)
    ds = tf.data.Dataset.from_tensor_slices(x01).batch(8)
    hist = m.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return m, {k: v[-1] for k, v in hist.history.items()}


def _strategies():
    return tf.distribute.get_strategy(), two_cpu_strategy()


@pytest.mark.slow
def test_two_replicas_loss_terms_match_one_replica():
    """Same noise, times, dropout masks and global-batch correlation on 1 and 2 replicas."""
    one, two = _strategies()
    x01 = np.random.default_rng(8).random([8, 4, 4, 1]).astype(np.float32)
    init = _tiny().get_weights()
    _, h1 = _train_steps(one, x01, 1, init)
    _, h2 = _train_steps(two, x01, 1, init)
    for k in ("loss", "loss_corr", "loss_norm", "loss_time", "loss_align", "potential"):
        np.testing.assert_allclose(h2[k], h1[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.slow
@pytest.mark.parametrize("clip_mode", ["norm", "std"])
def test_two_replicas_gradients_and_weights_match_one_replica(clip_mode):
    one, two = _strategies()
    x01 = np.random.default_rng(8).random([16, 4, 4, 1]).astype(np.float32)
    init = _tiny().get_weights()  # both runs start from these weights (net and EMA net)
    m1, h1 = _train_steps(one, x01, 2, init, clip_mode)
    m2, h2 = _train_steps(two, x01, 2, init, clip_mode)
    # The norm clip (at 0.05) was active; the std clip's arithmetic is tested above.
    assert h1["grad_norm"] > 0.05
    for k in h1:
        np.testing.assert_allclose(h2[k], h1[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for a, b in zip(m1.net.weights + m1.ema_net.weights, m2.net.weights + m2.ema_net.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_v1_loss_trains_and_config_round_trips():
    m = _tiny(loss="v1")
    m.compile(run_eagerly=True)
    x01 = np.random.default_rng(9).random([8, 4, 4, 1]).astype(np.float32)
    hist = m.fit(x01, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])
    cfg = json.loads(json.dumps(m.get_config()))
    m2 = VAPO.from_config(cfg)
    assert m2.get_config() == m.get_config() and m2.loss_name == "v1"


# ----------------------------------------------------------------------------------------------
# Bad input.
def test_bad_input_raises():
    m = _tiny()
    x01 = np.full([2, 4, 4, 1], 0.5, np.float32)
    with pytest.raises(EbmZooError, match="t"):
        m.potential(x01, 1.5)
    with pytest.raises(EbmZooError, match="t"):
        m.potential(x01, -0.1)
    with pytest.raises(EbmZooError, match="must lie in"):
        m.energy(x01 * 4.0)
    with pytest.raises(EbmZooError, match="rtol"):
        m.sample(2, seed=0, rtol=0.0)
    with pytest.raises(EbmZooError, match="atol"):
        m.sample(2, seed=0, atol=-1.0)
    with pytest.raises(EbmZooError, match="solver"):
        m.sample(2, seed=0, solver="heun")
    with pytest.raises(EbmZooError, match="Unknown sampler setting"):
        m.sample(2, seed=0, step_size=0.1)
    with pytest.raises(EbmZooError, match="mask"):
        m.inpaint(x01, np.full([1, 4, 4, 1], 0.5, np.float32))
    with pytest.raises(EbmZooError, match="loss"):
        _tiny(loss="v3")
    with pytest.raises(EbmZooError, match="rtol"):
        _tiny(rtol=0.0)
    with pytest.raises(EbmZooError, match="image_size"):
        _tiny(image_size=6, channel_mults=(1, 2, 2))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, size, attn, batch", [("vapo_cifar10", 32, 16, 128), ("vapo_celeba", 64, 32, 64)]
)
def test_faithful_configs_match_the_official_recipe_and_train_at_tiny_size(name, size, attn, batch):
    """The GPU configs carry the official settings (55.7M-parameter U-Net, loss reductions, Adam,
    warm-up, std clip, EMA, dropout) and, shrunk to a tiny net and image, take training steps."""
    from ebm_zoo import config as config_lib
    from ebm_zoo.models import build_model

    cfg = config_lib.get_config(name)
    m = cfg.model
    assert (m.image_size, cfg.data.image_size, cfg.data.batch_size) == (size, size, batch)
    net_args = dict(
        out_channels=3,
        base_channels=m.base_channels,
        channel_mults=tuple(m.channel_mults),
        num_res_blocks=m.num_res_blocks,
        attn_resolutions=tuple(m.attn_resolutions),
        time_embed_dim=m.time_embed_dim,
        image_size=size,
    )
    assert count_params_analytic(**net_args) == 55_676_419 and tuple(m.attn_resolutions) == (attn,)
    official = dict(
        loss="official", w_corr=1.0, w_norm=0.5, w_time=0.1, w_align=1.0, pixel_reduction="mean",
        align_time_power=True, detach_corr_scale=True, learning_rate=1e-4, warmup_steps=5000, grad_clip=3.0,
        grad_clip_mode="std", ema_decay=0.9999, dropout=0.3, rtol=1e-3, atol=1e-3, solver="dopri5",
    )  # fmt: skip
    assert {k: m[k] for k in official} == official
    tiny = m.to_dict()
    tiny.update(image_size=8, base_channels=8, channel_mults=[1, 2], num_res_blocks=1, attn_resolutions=[4])
    model = build_model(config_lib.ml_collections.ConfigDict(tiny))
    model.compile()
    x01 = np.random.default_rng(0).random([8, 8, 8, 3]).astype(np.float32)
    hist = model.fit(x01, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(hist.history["loss"][-1]) and model.optimizer.iterations.numpy() == 2
