"""The step guard of the Langevin / wGCN flow (`max_backtracks`): closed forms on stiff
quadratics, bit-identity when it never fires, 1 = 2 replicas, GGCN wiring and bad values."""

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.models.ggcn import GGCN
from ebm_zoo.sampling.langevin import langevin, wgcn_flow
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import two_cpu_strategy
from tests.test_ggcn import TINY, _images

SEED = tf.constant([5, 9], tf.int32)
#: Per-chain curvature a of E(x) = ½·a·‖x‖²; with τ = δ²/2 = 0.5 the explicit step multiplies x
#: by (1 − τa), which raises E exactly when τa > 2, i.e. a > 4.
CURV = np.array([0.5, 1.0, 3.0, 5.0, 9.0, 20.0], np.float32)


def _quadratic(x):
    a = tf.constant(CURV)[:, None, None, None]
    return 0.5 * tf.reduce_sum(a * tf.square(x), axis=[1, 2, 3])


def _x0():
    return tf.random.stateless_normal([len(CURV), 3, 3, 1], [0, 21])


def _explicit(x, m, steps=1):
    return langevin(
        _quadratic, x, num_steps=steps, step_size=1.0, seed=SEED, noise_scale=0.0, max_backtracks=m
    )


def _closed_form_factor(a, m, tau=0.5):
    """The guarded explicit step's factor x' = c·x: δ halves (τ quarters) until |1 − τa| <= 1,
    at most m times; still rising after m halvings: the drift is dropped (c = 1)."""
    for _ in range(m + 1):
        if abs(1 - tau * a) <= 1:
            return 1 - tau * a
        tau /= 4
    return 1.0


@pytest.mark.parametrize("m", [1, 3])
def test_guarded_explicit_step_matches_the_closed_form_on_a_stiff_quadratic(m):
    x = _x0()
    got = _explicit(x, m)
    want = np.array([_closed_form_factor(a, m) for a in CURV])[:, None, None, None] * x.numpy()
    np.testing.assert_allclose(got.samples.numpy(), want, rtol=1e-6, atol=1e-7)
    stiff = (CURV > 4).astype(np.float32)
    np.testing.assert_array_equal(got.guard.fires.numpy(), stiff)
    halvings = {1: [0, 0, 0, 1, 1, 1], 3: [0, 0, 0, 1, 1, 2]}[m]  # a = 20 needs 2 halvings
    np.testing.assert_array_equal(got.guard.backtracks.numpy(), halvings)
    np.testing.assert_array_equal(got.guard.rejects.numpy(), [0, 0, 0, 0, 0, float(m == 1)])


@pytest.mark.parametrize("solver", ["fixed_point", "split"])
def test_guarded_chains_never_rise_where_the_unguarded_ones_do(solver):
    """Noise off, so the drift is the whole step: per chain, the guarded energy never rises
    along 6 steps, the unguarded stiff chains blow up, and the benign chains are bit-identical."""
    if solver == "fixed_point":

        def run(x, m):
            return langevin(
                _quadratic, x, num_steps=1, step_size=1.0, seed=SEED, noise_scale=0.0, max_backtracks=m
            ).samples
    else:  # E = −f + ‖x‖²/2 with f = −½(a − 1)‖x‖²: J = 2 split iterations on the stiff U = −f

        def score(x):
            return -(_quadratic(x) - 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]))

        def run(x, m):
            return wgcn_flow(
                score,
                x,
                ref_sigma=1.0,
                num_steps=1,
                step_size=1.0,
                seed=SEED,
                noise_scale=0.0,
                implicit_iters=2,
                max_backtracks=m,
            ).samples

    x_plain = x_guard = _x0()
    e_plain, e_guard = [_quadratic(x_plain).numpy()], [_quadratic(x_guard).numpy()]
    for _ in range(6):
        x_plain, x_guard = run(x_plain, 0), run(x_guard, 3)
        e_plain.append(_quadratic(x_plain).numpy())
        e_guard.append(_quadratic(x_guard).numpy())
    e_plain, e_guard = np.array(e_plain), np.array(e_guard)
    assert np.all(np.diff(e_guard, axis=0) <= 0)
    assert np.all(np.diff(e_plain, axis=0)[:, CURV > 9] > 0)  # the stiffest chains rise every step
    assert np.all(e_plain[-1, CURV > 9] > 1e3 * e_plain[0, CURV > 9])
    benign = CURV < 1.5  # benign in both solvers: the guard never fires for them
    np.testing.assert_array_equal(x_guard.numpy()[benign], x_plain.numpy()[benign])


def _relu_score():
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1))
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    out = keras.layers.Dense(1)(keras.layers.Flatten()(y))
    net = keras.Model(inp, out)
    return lambda x: net(x)[:, 0]


def test_guard_is_bit_identical_to_the_unguarded_flow_when_it_never_fires():
    score = _relu_score()
    x0 = tf.random.stateless_uniform([6, 8, 8, 1], [0, 22], -1.0, 1.0)
    common = dict(ref_sigma=1.0, num_steps=5, step_size=0.2, seed=SEED, noise_scale=0.3, implicit_iters=2)
    plain = wgcn_flow(score, x0, **common)
    guarded = wgcn_flow(score, x0, max_backtracks=3, **common)
    assert float(tf.reduce_sum(guarded.guard.fires)) == 0.0
    assert plain.guard is None
    np.testing.assert_array_equal(guarded.samples.numpy(), plain.samples.numpy())
    np.testing.assert_array_equal(guarded.energy_trace.numpy(), plain.energy_trace.numpy())
    assert float(guarded.grad_norm) == float(plain.grad_norm)


def test_ggcn_training_with_a_silent_guard_stays_on_the_unguarded_trajectory():
    """A checkpoint trained without the guard resumes on the same trajectory while it never fires."""
    runs = {}
    for m in (0, 2):
        model = GGCN(**{**TINY, "step_size": 0.05, "max_backtracks": m})
        model.compile()
        model.build_all()
        if m == 0:
            weights = model.get_weights()
        model.set_weights(weights)
        for i in range(2):
            logs = model.train_step(_images(8, seed=i))
        runs[m] = (model, logs)
    assert "guard_fires" not in runs[0][1] and float(runs[2][1]["guard_fires"]) == 0.0
    for a, b in zip(runs[0][0].get_weights(), runs[2][0].get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][0].sample(3, seed=4), runs[2][0].sample(3, seed=4))


#: An explicit-like setting where the guard fires: fixed-point J = 2 at τ/σ² = 3.1 overshoots.
FIRING = dict(solver="fixed_point", step_size=2.5, max_backtracks=2)


def _train(strategy, weights, steps=2):
    with strategy.scope():
        m = GGCN(**{**TINY, **FIRING})
        m.compile()
        m.build_all()
        m.set_weights(weights)
    ds = tf.data.Dataset.from_tensor_slices(_images(8 * steps)).batch(8)
    hist = m.fit(ds, epochs=1, verbose=0, shuffle=False)
    return m, {k: v[-1] for k, v in hist.history.items()}


@pytest.mark.slow  # ~10 s quiet, ~21 s at load average 5-7
def test_guarded_training_two_replicas_match_one_replica():
    two_strategy = two_cpu_strategy()
    init = GGCN(**{**TINY, **FIRING})
    init.build_all()
    weights = init.get_weights()
    one, logs1 = _train(tf.distribute.OneDeviceStrategy("/cpu:0"), weights)
    two, logs2 = _train(two_strategy, weights)
    assert logs1["guard_fires"] > 0.5 and logs1["guard_backtracks"] >= logs1["guard_fires"]
    for key in ("guard_fires", "guard_backtracks", "guard_rejects", "flow_rises"):
        np.testing.assert_allclose(logs2[key], logs1[key], rtol=1e-5, atol=1e-6)
    moved = max(np.abs(a - b).max() for a, b in zip(one.get_weights(), weights))
    assert moved > 1e-4
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_config_round_trip_and_sampler_settings():
    m = GGCN(**{**TINY, "max_backtracks": 3})
    assert m.get_config()["max_backtracks"] == 3
    assert GGCN.from_config(m.get_config()).max_backtracks == 3
    assert m.sampler_settings()["max_backtracks"] == 3
    assert GGCN(**TINY).max_backtracks == 0 and "max_backtracks" not in GGCN(**TINY).sampler_settings()


def test_only_ggcn_mnist_turns_the_guard_on():
    from ebm_zoo.config import get_config

    for name in ("ggcn_cpu", "ggcn_digits", "ggcn_cifar10", "ggcn_celeba", "wgcn_cpu", "wgcn_mnist"):
        assert get_config(name).model.get("max_backtracks", 0) == 0, name
    assert get_config("ggcn_mnist").model.max_backtracks == 3


@pytest.mark.parametrize("bad", [-1, 1.5, 2.0, "3", True, None, 21])
def test_bad_max_backtracks_is_one_clear_error(bad):
    with pytest.raises(EbmZooError, match=r"max_backtracks.*\n?.*step guard.*max_backtracks=3"):
        GGCN(**{**TINY, "max_backtracks": bad})


def test_guard_with_a_metropolis_sampler_is_refused():
    with pytest.raises(EbmZooError, match="max_backtracks=2.*sampler='mala'"):
        GGCN(**{**TINY, "sampler": "mala", "max_backtracks": 2})


@pytest.mark.parametrize("family", ["ggcn", "wgcn"])
def test_a_metropolis_override_on_a_guarded_model_says_it_runs_without_the_guard(family):
    import warnings

    m = GGCN(**{**TINY, "max_backtracks": 2}) if family == "ggcn" else _wgcn(max_backtracks=2)
    with pytest.warns(UserWarning, match=r"max_backtracks=2.*sampler='mala'.*no step is halved"):
        out = m.sample(2, seed=1, num_steps=2, sampler="mala")
    assert np.isfinite(np.asarray(out)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the guarded flow itself, and an unguarded model: silent
        m.sample(2, seed=1, num_steps=2)
        plain = GGCN(**TINY) if family == "ggcn" else _wgcn()
        plain.sample(2, seed=1, num_steps=2, sampler="mala")


def test_langevin_rejects_a_bad_max_backtracks():
    with pytest.raises(ValueError, match="max_backtracks"):
        _explicit(_x0(), -1)


# ------------------------------------------------------------------------------------------------
# wGCN shares the flow: the same option on its config.
def _wgcn(**kw):
    from ebm_zoo.models.wgcn import WGCN
    from tests.test_wgcn import TINY as WGCN_TINY

    m = WGCN(**{**WGCN_TINY, "chain_init": "noise", "pixel_scale": 2.0, "pixel_offset": 1.0, **kw})
    m.compile()
    m.build_all()
    return m


def test_wgcn_guard_logs_when_it_fires_and_is_silent_otherwise():
    from tests.test_wgcn import _images as wgcn_images

    firing = _wgcn(solver="fixed_point", implicit_iters=1, step_size=2.5, clip_pixels=False, max_backtracks=2)
    logs = firing.train_step(wgcn_images())
    assert float(logs["guard_fires"]) > 0.5 and float(logs["guard_backtracks"]) >= float(logs["guard_fires"])
    plain, silent = _wgcn(step_size=0.05), _wgcn(step_size=0.05, max_backtracks=2)
    silent.set_weights(plain.get_weights())
    logs_plain, logs_silent = plain.train_step(wgcn_images()), silent.train_step(wgcn_images())
    assert "guard_fires" not in logs_plain and float(logs_silent["guard_fires"]) == 0.0
    for a, b in zip(plain.get_weights(), silent.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert type(silent).from_config(silent.get_config()).max_backtracks == 2


@pytest.mark.parametrize("bad", [-1, 0.5, "2"])
def test_wgcn_bad_max_backtracks_is_one_clear_error(bad):
    with pytest.raises(EbmZooError, match="max_backtracks"):
        _wgcn(max_backtracks=bad)
    with pytest.raises(EbmZooError, match="sampler='hmc'"):
        _wgcn(max_backtracks=1, sampler="hmc")


def test_served_sample_of_a_guarded_ggcn_equals_python(tmp_path):
    """The guard (a tf.cond / tf.while_loop inside the flow) exports: served = Python while it fires."""
    model = GGCN(**{**TINY, **FIRING})
    model.build_all()
    loaded = tf.saved_model.load(model.export(str(tmp_path / "m")))
    served = loaded.signatures["sample"](
        num_samples=tf.constant(3, tf.int32), seed=tf.constant(11, tf.int64), num_steps=tf.constant(-1)
    )["images"].numpy()
    python = model.sample(3, seed=11).numpy()
    np.testing.assert_allclose(served, python, atol=1e-6)
    from ebm_zoo import distribute
    from ebm_zoo.utils.checks import seed_pair

    pair = seed_pair(11)  # the served / Python chain: chain_start(pair), flow(split_seed(pair, 1))
    fired = model.flow(model.chain_start(3, pair), distribute.split_seed(pair, 1)).guard.fires
    assert float(tf.reduce_sum(fired)) > 0
