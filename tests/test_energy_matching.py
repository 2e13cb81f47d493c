"""Energy Matching (ebm_zoo.models.energy_matching): the official formulas, the OT coupling vs
brute force, the warm-up loss's gradient vs finite differences, the Heun and Langevin samplers
vs their closed-form recursions, 1 vs 2 replicas, the faithful configs at tiny size."""

import itertools
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.energy_matching import EnergyMatching, dynamics
from ebm_zoo.models.energy_matching.nets import ConvMLPPotential, UNetViTPotential
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import two_cpu_strategy

TINY = dict(
    image_size=8,
    channels=1,
    net="conv_mlp",
    net_config=dict(widths=[4, 8], mlp_width=16),
    n_gibbs=4,
    dt_gibbs=0.3,  # 4 steps sweep t = 0 … 0.9, 1.2: noise switches on at step 4 with cutoff 1
    time_cutoff=0.5,  # so the ramp (0.5 <= t < 1) is exercised too
    epsilon_max=0.05,
    warmup_steps=2,
    max_sample_steps=20,
    t_end=1.5,
)


def tiny(**kw) -> EnergyMatching:
    return EnergyMatching(**{**TINY, **kw})


# ----------------------------------------------------------------------------------------------
# The official schedules (utils_cifar_imagenet.py `plot_epsilon`, `flow_weight`), written out.
def official_epsilon(t, eps_max, cutoff):
    if t < cutoff:
        return 0.0
    if t < 1.0:
        return (t - cutoff) / (1.0 - cutoff) * eps_max
    return eps_max


def official_flow_weight(t, cutoff):
    if t >= 1.0:
        return 0.0
    if t >= cutoff:
        return 1.0 - (t - cutoff) / (1.0 - cutoff)
    return 1.0


@pytest.mark.parametrize("cutoff", [1.0, 0.8, 0.0])
def test_temperature_and_flow_weight_equal_the_official_formulas(cutoff):
    times = [0.0, 0.3, 0.79, 0.8, 0.85, 0.99, 1.0, 1.01, 2.0, 3.25]
    eps = dynamics.temperature(tf.constant(times, tf.float64), 0.01, cutoff).numpy()
    np.testing.assert_allclose(eps, [official_epsilon(t, 0.01, cutoff) for t in times], rtol=1e-12, atol=0)
    w = dynamics.flow_weight(tf.constant(times, tf.float64), cutoff).numpy()
    np.testing.assert_allclose(w, [official_flow_weight(t, cutoff) for t in times], rtol=1e-12, atol=0)
    # The official chain time is `step * dt` in Python floats: the switch falls on step 100.
    k = tf.constant([99, 100, 101])
    np.testing.assert_array_equal(
        dynamics.temperature(dynamics.step_time(k, 0.01), 0.01, 1.0).numpy(),
        [official_epsilon(s * 0.01, 0.01, 1.0) for s in (99, 100, 101)],
    )


# ----------------------------------------------------------------------------------------------
def test_ot_pairing_is_the_cost_minimising_permutation_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(5):
        x1 = rng.standard_normal([6, 2, 2, 1]).astype(np.float32)
        x0 = rng.standard_normal([6, 2, 2, 1]).astype(np.float32)
        perm = tf.function(dynamics.ot_pairing)(tf.constant(x1), tf.constant(x0)).numpy()
        assert sorted(perm.tolist()) == list(range(6)), perm
        cost = ((x1.reshape(6, -1)[:, None] - x0.reshape(6, -1)[None]) ** 2).sum(-1)
        best = min(sum(cost[i, p[i]] for i in range(6)) for p in itertools.permutations(range(6)))
        got = sum(cost[i, perm[i]] for i in range(6))
        assert got == pytest.approx(best, rel=1e-6), trial
        assert got < sum(cost[i, i] for i in range(6)) or np.all(perm == np.arange(6))


# ----------------------------------------------------------------------------------------------
def test_warmup_loss_value_and_gradient_match_closed_form_and_finite_differences():
    """V_θ(x) = ½a‖x − b‖² + w·Σsin(x): −∇V = −a(x − b) − w·cos(x) in closed form."""
    rng = np.random.default_rng(1)
    shape = [5, 2, 2, 1]
    x0, x1 = rng.standard_normal(shape), rng.uniform(-1, 1, shape)
    t = np.array([0.1, 0.45, 0.6, 0.8, 0.95])  # cutoff 0.5: weights 1, 1, 0.8, 0.4, 0.1
    theta0 = {"a": 1.3, "b": rng.standard_normal([1, 2, 2, 1]), "w": 0.4}
    cutoff = 0.5

    def loss_fn(theta, tape_vars=None):
        def v(x):
            return tf.reduce_sum(
                0.5 * theta["a"] * tf.square(x - theta["b"]) + theta["w"] * tf.sin(x), axis=[1, 2, 3]
            )

        loss, _ = dynamics.flow_matching_loss(v, tf.constant(x0), tf.constant(x1), tf.constant(t), cutoff)
        return loss

    xt = t[:, None, None, None] * x1 + (1 - t[:, None, None, None]) * x0
    vel = -theta0["a"] * (xt - theta0["b"]) - theta0["w"] * np.cos(xt)
    mse = ((vel - (x1 - x0)) ** 2).reshape(5, -1).mean(1)
    weights = np.array([official_flow_weight(s, cutoff) for s in t])
    variables = {k: tf.Variable(np.asarray(v, np.float64)) for k, v in theta0.items()}
    with tf.GradientTape() as tape:
        loss = loss_fn(variables)
    np.testing.assert_allclose(loss.numpy(), np.mean(weights * mse), rtol=1e-12)
    grads = tape.gradient(loss, variables)
    h = 1e-6
    for k, v0 in theta0.items():
        v0 = np.asarray(v0, np.float64)
        for idx in np.ndindex(v0.shape) if v0.shape else [()]:
            up, down = v0.copy(), v0.copy()
            up[idx] += h
            down[idx] -= h
            fd = (
                loss_fn({**theta0, k: tf.constant(up)}).numpy()
                - loss_fn({**theta0, k: tf.constant(down)}).numpy()
            ) / (2 * h)
            np.testing.assert_allclose(np.asarray(grads[k].numpy())[idx], fd, rtol=1e-6, atol=1e-9, err_msg=k)


# ----------------------------------------------------------------------------------------------
def test_cd_statistic_trims_and_clamps_like_the_official_code():
    rng = np.random.default_rng(2)
    pos, neg = rng.standard_normal(10), rng.standard_normal(10) + 0.5
    value, cd = dynamics.cd_statistic(tf.constant(pos), tf.constant(neg), 0.5, 0.0, 0.2)
    ref = pos.mean() - np.sort(neg)[:8].mean()  # k = int(0.2 * 10) = 2 highest dropped
    np.testing.assert_allclose([cd.numpy(), value.numpy()], [ref, 0.5 * ref], rtol=1e-12)
    clamped, _ = dynamics.cd_statistic(tf.constant(pos), tf.constant(neg), 0.5, 0.01, 0.2)
    assert 0.5 * ref < -0.01 and clamped.numpy() == pytest.approx(-0.01)
    # The global-batch surrogate has the statistic's value and gradient on one replica.
    p, n = tf.Variable(pos), tf.Variable(neg)
    with tf.GradientTape(persistent=True) as tape:
        direct, _ = dynamics.cd_statistic(p, n, 0.5, 0.0, 0.2)
        surrogate, _ = dynamics.global_cd_term(p, n, 0.5, 0.0, 0.2)
    np.testing.assert_allclose(surrogate.numpy(), direct.numpy(), rtol=1e-12)
    for v in (p, n):
        np.testing.assert_allclose(tape.gradient(surrogate, v), tape.gradient(direct, v), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
def _quadratic(a):
    return lambda x: 0.5 * a * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])


def test_langevin_negatives_follow_the_official_update_with_the_schedule():
    """x ← x − dt·a·x + sqrt(2·dt·ε(k·dt))·z_k, with the z_k the sampler draws, then a clamp."""
    a, dt, eps_max, cutoff, n = 1.5, 0.2, 0.3, 0.5, 8
    x_init = np.random.default_rng(3).uniform(-1, 1, [4, 2, 2, 1]).astype(np.float32)
    at_data = np.array([True, False, False, True])
    seed = tf.constant([4, 5])
    got = dynamics.langevin_negatives(
        _quadratic(a), tf.constant(x_init), n_gibbs=n, dt_gibbs=dt, epsilon_max=eps_max,
        time_cutoff=cutoff, seed=seed, at_data=tf.constant(at_data),
    ).numpy()  # fmt: skip
    x = x_init.astype(np.float64)
    for k in range(n):
        z = tf.random.stateless_normal(x.shape, distribute.split_seed(seed, k)).numpy()
        e = np.where(at_data, eps_max, official_epsilon(k * dt, eps_max, cutoff))[:, None, None, None]
        x = x - dt * a * x + np.sqrt(2 * dt * e).astype(np.float32) * z
    np.testing.assert_allclose(got, np.clip(x, -1, 1), rtol=1e-5, atol=1e-6)


def test_heun_solves_the_quadratic_flow_in_closed_form_with_a_tensor_step_count():
    """V = ½a‖x‖², ε = 0: Heun gives x_N = (1 − h + h²/2)^N·x0 (h = a·dt), within O(h²) of
    e^{−aT}·x0. One trace serves every (tensor) number of steps."""
    a, dt = 2.0, 0.05
    x0 = tf.constant(np.random.default_rng(4).standard_normal([3, 2, 2, 1]), tf.float64)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def run(n):
        return dynamics.heun_flow(
            _quadratic(a), x0, num_steps=n, dt=dt, epsilon_max=0.0, time_cutoff=1.0,
            seed=tf.constant([0, 1]), max_steps=100, clip=None,
        )  # fmt: skip

    h = a * dt
    for n in (0, 1, 20, 65):
        np.testing.assert_allclose(
            run(tf.constant(n)).numpy(), (1 - h + h * h / 2) ** n * x0.numpy(), rtol=1e-12
        )
    assert run.experimental_get_tracing_count() == 1
    # Heun's local error is h³/6 per step: after N = 20 steps (T = 1) about N·h³/6 = 0.33 %.
    np.testing.assert_allclose(run(tf.constant(20)).numpy(), math.exp(-a * 1.0) * x0.numpy(), rtol=4e-3)
    assert not np.allclose(run(tf.constant(20)).numpy(), math.exp(-a * 1.0) * x0.numpy(), rtol=1e-3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_steps"):
        run(tf.constant(101))


def test_heun_with_temperature_equals_its_stochastic_recursion():
    """With noise: x ← c·x + (½(g_k + g_{k+1}) − ½h·g_k)·ΔW_k, c = 1 − h + h²/2,
    g_k = sqrt(2ε(t_k)); the ΔW_k are the sampler's own draws. The temperature switches on
    inside the run (cutoff 0.5, ramp to t = 1)."""
    a, dt, eps_max, cutoff, n = 1.0, 0.1, 0.2, 0.5, 15
    x0 = np.random.default_rng(5).standard_normal([4, 2, 2, 1])
    seed = tf.constant([7, 8])
    got = dynamics.heun_flow(
        _quadratic(a), tf.constant(x0), num_steps=n, dt=dt, epsilon_max=eps_max, time_cutoff=cutoff,
        seed=seed, max_steps=n, clip=None,
    ).numpy()  # fmt: skip
    h, x = a * dt, x0.copy()
    for k in range(n):
        dw = math.sqrt(dt) * tf.random.stateless_normal(
            x.shape, distribute.split_seed(seed, k), dtype=tf.float64
        )
        g0, g1 = (math.sqrt(2 * official_epsilon(s * dt, eps_max, cutoff)) for s in (k, k + 1))
        x = (1 - h + h * h / 2) * x + (0.5 * (g0 + g1) - 0.5 * h * g0) * dw.numpy()
    np.testing.assert_allclose(got, x, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(got - (1 - h + h * h / 2) ** n * x0)) > 0.05  # the noise did act


# ----------------------------------------------------------------------------------------------
# Networks.
def test_official_mnist_potential_parameter_count():
    net = ConvMLPPotential()
    assert net(tf.zeros([2, 28, 28, 1])).shape == (2,)
    # Network_2M_MNIST28x28 has 1,835,137: ours less its unused second down-sampling conv.
    assert net.count_params() == 1_835_137 - (128 * 128 * 16 + 128)


@pytest.mark.slow
def test_official_cifar_potential_parameter_count():
    """torchcfm's CIFAR-10 U-Net (35,746,307) + the ViT head = the README's "50M"."""
    net = UNetViTPotential()
    assert net(tf.zeros([1, 32, 32, 3])).shape == (1,)
    assert net.unet.count_params() == 35_746_307 and net.count_params() == 49_985_796


def test_unet_vit_is_a_scalar_field_with_stateless_dropout():
    net = UNetViTPotential(
        image_size=8, channels=3, num_channels=8, num_res_blocks=1, channel_mult=[1, 2],
        attention_resolutions=[4], num_head_channels=4, embed_dim=16, transformer_nheads=2,
        transformer_nlayers=1, groups=4, dropout=0.3,
    )  # fmt: skip
    x = tf.random.normal([3, 8, 8, 3])
    net(x)
    rng = np.random.default_rng(0)
    for w in net.weights:  # wake the zero-initialised output convs
        if not np.any(w.numpy()):
            w.assign(0.3 * rng.standard_normal(w.shape).astype(np.float32))
    a, b, c = net(x, seed=tf.constant([1, 2])), net(x, seed=tf.constant([1, 2])), net(x)
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-4 and np.max(np.abs(c - net(x))) == 0.0
    np.testing.assert_allclose(net(x[:1]), c[:1], rtol=1e-5)  # V of an image ignores the others


# ----------------------------------------------------------------------------------------------
# The model.
def test_sample_energy_inpaint_use_the_ema_weights():
    m = tiny()
    x01 = np.random.default_rng(6).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(m.energy(x01), m.ema_net(2 * x01 - 1), rtol=1e-6)
    s = m.sample(3, seed=1)
    assert s.shape == (3, 8, 8, 1) and np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s, m.sample(3, seed=1))
    for w in m.net.weights:  # moving the training weights must not change EMA results
        w.assign(w + 1.0)
    np.testing.assert_array_equal(m.sample(3, seed=1), s)
    mask = np.zeros([1, 8, 8, 1], np.float32)
    mask[:, 4:] = 1.0
    filled = m.inpaint(x01, mask, seed=0).numpy()
    np.testing.assert_array_equal(filled[:, :4], x01[:, :4])
    assert filled.shape == x01.shape and np.all(np.isfinite(filled))
    np.testing.assert_array_equal(m.ood_score(x01), m.energy(x01))
    assert m.sample(2, seed=0, num_steps=0).shape == (2, 8, 8, 1)
    # A tensor number of steps (the serving contract): one trace, the same as the Python steps.
    fn = tf.function(lambda k: m.from_internal(m._sample(3, tf.constant([1, 0]), k, m.max_num_steps)))
    np.testing.assert_allclose(fn(tf.constant(15)), m.sample(3, seed=1, num_steps=15), atol=1e-6)
    np.testing.assert_allclose(fn(tf.constant(3)), m.sample(3, seed=1, num_steps=3), atol=1e-6)
    assert fn.experimental_get_tracing_count() == 1
    m2 = EnergyMatching.from_config(json.loads(json.dumps(m.get_config())))
    assert m2.get_config() == m.get_config()


@pytest.mark.slow
def test_phases_train_and_the_warmup_ignores_cd():
    x01 = np.random.default_rng(7).uniform(size=(8, 8, 8, 1)).astype(np.float32)
    logs = {}
    # The static phases and the learning-rate check run eagerly (seconds instead of one trace
    # each); the in-graph switch below, and every other training test, run in graph mode.
    for phase in ("warmup", "main"):
        m = tiny(phase=phase)
        m.compile(run_eagerly=True)
        h = m.fit(x01, batch_size=8, epochs=1, verbose=0, shuffle=False)
        logs[phase] = {k: v[-1] for k, v in h.history.items()}
        assert m.optimizer.iterations.numpy() == 1
    assert logs["warmup"]["loss_cd"] == 0.0 and logs["warmup"]["loss"] == logs["warmup"]["loss_flow"]
    assert logs["main"]["loss_cd"] != 0.0 and np.isfinite(logs["main"]["loss"])
    # "warmup_then_main" switches in-graph at main_start_step: not reached in 1 step, reached in 2.
    for start, has_cd in ((2, False), (1, True)):
        m = tiny(phase="warmup_then_main", main_start_step=start)
        m.compile()
        h = m.fit(x01, batch_size=4, epochs=1, verbose=0, shuffle=False)
        assert m.optimizer.iterations.numpy() == 2 and (h.history["loss_cd"][-1] != 0.0) == has_cd
    # The warm-up learning rate starts at 0 (official LambdaLR): the first step changes nothing.
    m = tiny()
    m.compile(run_eagerly=True)
    before = m.net.get_weights()
    m.fit(x01, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(before, m.net.get_weights()):
        np.testing.assert_array_equal(a, b)


def _train(strategy, x01, steps, weights):
    with strategy.scope():
        m = tiny(phase="warmup_then_main", main_start_step=1, hflip=True, ema_decay=0.5, grad_clip=1e-4, warmup_steps=1,
                 net_config=dict(widths=[4, 8], mlp_width=16, dropout=0.3))  # fmt: skip
        m.compile()
        m.set_weights(weights)
    ds = tf.data.Dataset.from_tensor_slices(x01).batch(16)
    h = m.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return m, {k: v[-1] for k, v in h.history.items()}


@pytest.mark.slow
def test_two_replicas_equal_one_replica():
    """One warm-up step, then one main-phase step (the in-graph switch) with flips, OT
    resampling, split negatives, trimming, dropout and an active clip: same losses, weights and
    EMA weights on 1 and 2 replicas from the same weights."""
    x01 = np.random.default_rng(8).uniform(size=(32, 8, 8, 1)).astype(np.float32)
    keras.utils.set_random_seed(8)  # a fixed initialisation: the clip below must be active
    init = tiny(net_config=dict(widths=[4, 8], mlp_width=16, dropout=0.3)).get_weights()
    m1, h1 = _train(tf.distribute.get_strategy(), x01, 2, init)
    m2, h2 = _train(two_cpu_strategy(), x01, 2, init)
    assert h1["grad_norm"] > 1e-4 and h1["loss_cd"] != 0.0
    for k in h1:
        np.testing.assert_allclose(h2[k], h1[k], rtol=1e-4, atol=1e-6, err_msg=k)
    for a, b in zip(m1.net.weights + m1.ema_net.weights, m2.net.weights + m2.ema_net.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6)


def test_bad_input_raises():
    m = tiny()
    x01 = np.full([2, 8, 8, 1], 0.5, np.float32)
    with pytest.raises(EbmZooError, match="phase"):
        tiny(phase="pretrain")
    with pytest.raises(EbmZooError, match="t_end"):
        m.sample(2, seed=0, t_end=100.0)
    with pytest.raises(EbmZooError, match="num_steps"):
        m.sample(2, seed=0, num_steps=21)
    with pytest.raises(EbmZooError, match="Unknown sampler setting"):  # the shared override check
        m.sample(2, seed=0, solver="euler")
    with pytest.raises(EbmZooError, match="not both"):
        m.sample(2, seed=0, num_steps=3, t_end=0.9)
    with pytest.raises(EbmZooError, match="num_steps"):
        m.inpaint(x01, np.zeros([1, 8, 8, 1], np.float32), num_steps=21)
    with pytest.raises(EbmZooError, match="mask"):
        m.inpaint(x01, np.full([1, 8, 8, 1], 0.5, np.float32))
    with pytest.raises(EbmZooError, match="net"):
        tiny(net="resnet")
    with pytest.raises(EbmZooError, match="net_config"):
        tiny(net_config=dict(width=3))
    with pytest.raises(EbmZooError, match="main_start_step"):
        tiny(phase="warmup_then_main")
    with pytest.raises(EbmZooError, match="time_cutoff"):
        tiny(time_cutoff=1.5)


# ----------------------------------------------------------------------------------------------
OFFICIAL_CIFAR = dict(
    net="unet_vit", phase="warmup_then_main", main_start_step=145_000, time_cutoff=1.0, epsilon_max=0.01, lambda_cd=1e-3, n_gibbs=200,
    dt_gibbs=0.01, cd_neg_clamp=0.02, cd_trim_fraction=0.1, split_negative=True,
    same_temperature_scheduler=True, ot_resample=True, hflip=True, learning_rate=1.2e-3, beta_1=0.9,
    beta_2=0.95, warmup_steps=10000, grad_clip=1.0, ema_decay=0.99, warmup_ema_decay=0.9999, t_end=3.25,
)  # fmt: skip
OFFICIAL_CIFAR_NET = dict(
    num_channels=128, num_res_blocks=2, channel_mult=[1, 2, 2, 2], attention_resolutions=[16],
    num_heads=4, num_head_channels=64, dropout=0.1, patch_size=4, embed_dim=384, transformer_nheads=4,
    transformer_nlayers=8, output_scale=1000.0, energy_clamp=None,
)  # fmt: skip
TINY_NETS = {
    "unet_vit": dict(num_channels=8, num_res_blocks=1, channel_mult=[1, 2], attention_resolutions=[4],
                     num_head_channels=4, embed_dim=16, transformer_nheads=2, transformer_nlayers=1, groups=4),
    "conv_mlp": dict(widths=[4, 8], mlp_width=16),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["energy_matching_cifar10", "energy_matching_mnist_official", "energy_matching"]
)
def test_faithful_configs_carry_the_official_flags_and_train_at_tiny_size(name):
    from ebm_zoo import config as config_lib
    from ebm_zoo.models import build_model

    cfg = config_lib.get_config(name)
    m = cfg.model
    if name == "energy_matching_cifar10":
        assert {k: m[k] for k in OFFICIAL_CIFAR} == OFFICIAL_CIFAR
        assert {k: m.net_config[k] for k in OFFICIAL_CIFAR_NET} == OFFICIAL_CIFAR_NET
        assert (cfg.data.batch_size, cfg.train.steps) == (4 * 2 * 128, 147_000)
    if name == "energy_matching_mnist_official":
        assert m.net == "conv_mlp" and m.net_config.to_dict() == dict(
            widths=[64, 128], mlp_width=1024, dropout=0.0
        )
        assert (m.learning_rate, m.grad_clip, cfg.data.batch_size, m.hflip) == (1e-4, 1.0, 2 * 128, False)
    # The U-Net+ViT traces slowly (double back-propagation through attention): its main phase
    # alone exercises every flag; the warm-up path is the same code minus the CD term.
    for phase in ("main",) if m.net == "unet_vit" else ("warmup", "main"):
        tiny_cfg = m.to_dict()
        # warmup_steps=0 (constant lr): the first step moves V off its constant initial value
        # (the U-Net's zero output conv), so the second step's CD term is non-zero.
        tiny_cfg.update(image_size=8, net_config=TINY_NETS[m.net], phase=phase, n_gibbs=3, warmup_steps=0)
        model = build_model(config_lib.ml_collections.ConfigDict(tiny_cfg))
        # The U-Net+ViT's double back-propagation graph has ~8·10⁴ ops: tracing and optimising it
        # takes minutes, running its two tiny steps eagerly a few seconds. The same train_step
        # runs in graph mode on the conv_mlp configs below and in every other test of this file.
        model.compile(run_eagerly=m.net == "unet_vit")
        x01 = np.random.default_rng(0).random([8, 8, 8, m.channels]).astype(np.float32)
        hist = model.fit(x01, batch_size=4, epochs=1, verbose=0, shuffle=False)
        assert np.isfinite(hist.history["loss"][-1]) and model.optimizer.iterations.numpy() == 2
        assert (hist.history["loss_cd"][-1] != 0.0) == (phase == "main")


def test_cpu_config_departs_from_the_official_mnist_recipe_only_where_documented():
    """configs/energy_matching_mnist.py (the preset's CPU recipe) = the official MNIST recipe
    except the documented CPU levers; its negatives sweep the same chain time t = 0 … 2."""
    from ebm_zoo import config as config_lib

    cpu, off = (config_lib.get_config(n) for n in ("energy_matching_mnist", "energy_matching_mnist_official"))
    a, b = cpu.model.to_dict(), off.model.to_dict()
    changed = {k for k in a if a[k] != b[k]}
    assert changed == {
        "net_config", "main_start_step", "n_gibbs", "dt_gibbs", "learning_rate", "warmup_steps",
        "warmup_ema_decay", "max_sample_steps",
    }  # fmt: skip
    assert a["n_gibbs"] * a["dt_gibbs"] == pytest.approx(b["n_gibbs"] * b["dt_gibbs"]) == 2.0
    assert cpu.data.to_dict() == {**off.data.to_dict(), "batch_size": 2 * 64}
    # Most of the budget in the cheap warm-up; a short main phase that does run (CD on).
    assert cpu.train.steps - a["main_start_step"] == 300 and a["main_start_step"] == 9_500
    assert a["lambda_cd"] > 0 and a["phase"] == "warmup_then_main"


# ----------------------------------------------------------------------------------------------
# Serving: the standard export (no special case) gives the Python results pixel for pixel.
@pytest.mark.slow
def test_export_round_trips_sample_energy_and_inpaint_pixel_for_pixel(tmp_path):
    """`model.export(path)`: served `sample` = `model.sample` bit for bit for K in {0, 1,
    default, 2×default} and -1 (= the default sampler), served `energy` = `model.energy`, served
    `inpaint` = `model.inpaint`; bad requests fail in-graph naming the argument."""
    m = tiny()
    for w in m.ema_net.weights:  # EMA weights apart from the training weights: sampling uses EMA
        w.assign(w * 1.5)
    path = m.export(tmp_path / "em")
    loaded = tf.saved_model.load(path)
    assert {"energy", "sample", "inpaint"} <= set(loaded.signatures)

    def served_sample(n, seed, k):
        return loaded.signatures["sample"](
            num_samples=tf.constant(n, tf.int32),
            seed=tf.constant(seed, tf.int64),
            num_steps=tf.constant(k, tf.int32),
        )["images"].numpy()

    default = m.default_num_steps
    assert default == 5 and 2 * default <= m.max_num_steps == 20
    seed = 2**33 + 7  # both halves of the seed pair
    results = {}
    for k in (0, 1, default, 2 * default):
        results[k] = served_sample(3, seed, k)
        np.testing.assert_array_equal(
            results[k], m.sample(3, seed=seed, num_steps=k).numpy(), err_msg=f"K={k}"
        )
    assert not np.array_equal(results[default], results[2 * default])  # K is honoured
    np.testing.assert_array_equal(served_sample(3, seed, -1), m.sample(3, seed=seed).numpy())
    np.testing.assert_array_equal(served_sample(3, seed, -1), results[default])
    x01 = np.random.default_rng(9).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    # Energy: eager Python vs the graph's fused kernels reassociate float sums (1 ulp seen).
    np.testing.assert_allclose(
        loaded.signatures["energy"](images=tf.constant(x01))["energy"].numpy(),
        m.energy(x01).numpy(),
        rtol=1e-6,
        atol=1e-7,
    )
    mask = np.zeros([4, 8, 8, 1], np.float32)
    mask[:, 2:6, 2:6] = 1.0
    served = loaded.signatures["inpaint"](
        images=tf.constant(x01), mask=tf.constant(mask), seed=tf.constant(seed, tf.int64)
    )["images"].numpy()
    np.testing.assert_array_equal(served, m.inpaint(x01, mask, seed=seed).numpy())
    np.testing.assert_array_equal(served[:, :2], x01[:, :2])
    assert not np.array_equal(served[:, 2:6, 2:6], x01[:, 2:6, 2:6])
    for k in (m.max_num_steps + 1, -2):
        with pytest.raises(tf.errors.InvalidArgumentError, match="num_steps"):
            served_sample(2, 0, k)
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask"):
        loaded.signatures["inpaint"](
            images=tf.constant(x01), mask=tf.constant(mask * 0.5), seed=tf.constant(0, tf.int64)
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="images"):
        loaded.signatures["energy"](images=tf.constant(x01 + 2.0))


# ----------------------------------------------------------------------------------------------
# tools/experiments/energy_matching_temperature.py: the T curve by the MNIST protocol.
@pytest.fixture(scope="module")
def em_workdir(tmp_path_factory):
    """A 1-step run of a tiny Energy Matching potential on MNIST 28x28 (dt 0.25, T up to 2.5)."""
    import ml_collections

    from ebm_zoo import training

    model = {**TINY, "image_size": 28, "dt_gibbs": 0.25, "max_sample_steps": 10, "t_end": 1.0}
    cfg = ml_collections.ConfigDict(
        dict(
            description="tiny energy matching on MNIST",
            config_name="test_tiny_em",
            model=dict(family="energy_matching", **model),
            data=dict(name="mnist_local", image_size=28, batch_size=8, split="train"),
            train=dict(steps=1, log_every=1, checkpoint_every=1, num_samples=4, seed=0),
        )
    )
    path = tmp_path_factory.mktemp("runs") / "tiny_em"
    training.train(cfg, str(path), verbose=0)
    return path


def _tool(*args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "EBM_ZOO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(root / "tools/experiments/energy_matching_temperature.py"), *args],
        capture_output=True, text=True, env=env, cwd=root, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_temperature_tool_scores_each_T_like_the_protocol_and_fills_the_doc_table(em_workdir, tmp_path):
    import ebm_zoo
    from ebm_zoo.metrics import mnist_protocol

    doc = tmp_path / "doc.md"
    doc.write_text(
        "# head\n\nbefore\n<!-- energy_matching_T:begin -->\nold table\n<!-- energy_matching_T:end -->\nafter\n"
    )
    out = tmp_path / "T.json"
    common = [f"--workdir={em_workdir}", "--num_samples=20", "--sample_batch=10", "--num_reference=200",
              f"--out={out}", f"--sheets_dir={tmp_path / 'sheets'}", f"--doc={doc}"]  # fmt: skip
    res = _tool(*common, "--T=0,0.5,2.5", "--seed=3")
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["T"], r["num_steps"], r["num_samples"], r["standard"]) for r in rows] == [
        (0.0, 0, 20, False), (0.5, 2, 20, False), (2.5, 10, 20, False),
    ]  # fmt: skip
    # Each row is the protocol's own figure of model.sample(t_end=T) with the protocol's seeds.
    model = ebm_zoo.load(str(em_workdir))
    for row in rows:
        ref = mnist_protocol.evaluate_mnist(
            lambda n, seed, t=row["T"]: model.sample(n, seed=seed, t_end=t),
            num_samples=20, sample_batch=10, num_reference=200, seed=3,
        )  # fmt: skip
        for key in ("fd_mnist", "classifier_score", "precision", "recall"):
            assert row[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), (row["T"], key)
        assert (tmp_path / "sheets" / f"T={row['T']:g}" / "samples.png").exists()
    assert rows[0]["fd_mnist"] != rows[2]["fd_mnist"]  # T is honoured
    text = doc.read_text()
    assert text.startswith("# head\n\nbefore\n<!-- energy_matching_T:begin -->\n") and text.endswith(
        "<!-- energy_matching_T:end -->\nafter\n"
    )
    assert "old table" not in text and "| 2.5 | 10 |" in text and "| 0 | 0 |" in text
    # Bad input: one line naming the flag, before any sampling.
    for args, code, word in (
        (["--T=3.0"], 1, "t_end=3.0"),  # beyond max_sample_steps * dt = 2.5
        (["--T=1", "--num_steps=2"], 1, "not both"),
        (["--T=-1"], 1, "--T"),
    ):
        bad = _tool(*common, *args)
        assert bad.returncode == code and word in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    nodoc = tmp_path / "plain.md"
    nodoc.write_text("no markers\n")
    bad = _tool(*[a for a in common if not a.startswith("--doc")], f"--doc={nodoc}")
    assert bad.returncode == 1 and "energy_matching_T:begin" in bad.stderr
