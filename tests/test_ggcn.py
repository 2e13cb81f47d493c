"""GGCN: generator, amortised/symmetrical train step, sampling path, distribution, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.models.ggcn import GGCN
from ebm_zoo.nets.generators import build_generator, check_latent_shape
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import two_cpu_strategy

TINY = dict(
    image_size=8,
    channels=1,
    latent_shape=[2, 2, 4],
    gen_filters=16,
    gen_min_filters=8,
    score_layers=[[8, 3, 2], [16, 3, 1]],
    num_steps=3,
    step_size=0.3,
    implicit_iters=2,
    trace_points=3,
)


def _images(n=8, seed=0):
    return tf.random.stateless_uniform([n, 8, 8, 1], [seed, 11])


def _model(**kw):
    m = GGCN(**{**TINY, **kw})
    m.compile()
    m.build_all()
    return m


@pytest.mark.parametrize(
    "latent_shape, image_size, blocks",
    [([4, 4, 8], 16, 2), ([2, 2, 4], 8, 2), ([3, 3, 4], 24, 3), ([32], 32, 3), ([8, 8, 2], 8, 0)],
)
def test_generator_output_shape_and_range(latent_shape, image_size, blocks):
    assert check_latent_shape(latent_shape, image_size, base_size=4) == blocks
    g = build_generator(
        latent_shape, image_size, 3, filters=16, min_filters=4, upsample="nearest", norm="layer"
    )
    x = g(tf.random.normal([2, *latent_shape])).numpy()
    assert x.shape == (2, image_size, image_size, 3)
    assert np.all(np.abs(x) <= 1.0)


@pytest.mark.parametrize("latent_shape", [[5, 5, 8], [4, 2, 8], [4, 4], [0], [3, 3, 1]])
def test_latent_shape_mismatch_is_a_clear_error(latent_shape):
    with pytest.raises(EbmZooError, match="latent_shape"):
        GGCN(image_size=16, latent_shape=latent_shape)


def test_generate_rejects_wrong_latent_shape():
    m = _model()
    assert m.generate(tf.zeros([2, 2, 2, 4])).shape == (2, 8, 8, 1)
    with pytest.raises(EbmZooError, match=r"latent_shape=\[2, 2, 4\]"):
        m.generate(tf.zeros([2, 4, 4, 4]))


def test_generator_update_decreases_reconstruction_error_on_fixed_batch():
    m = _model(gen_lr=1e-3)
    h = tf.random.stateless_normal([8, 2, 2, 4], [1, 2])
    x_tilde = m.to_internal(_images())
    losses = [float(m.generator_update(h, x_tilde)[0]) for _ in range(40)]
    assert losses[-1] < 0.7 * losses[0]  # Adam steps on a fixed (h, x̃): a wrong sign would grow it
    # The loss is mean ‖x̃ − G(h)‖² / (2 s_g²) before the step.
    sq = np.sum((x_tilde.numpy() - m.generator(h).numpy()) ** 2, axis=(1, 2, 3))
    loss_now = float(m.generator_update(h, x_tilde)[0])
    np.testing.assert_allclose(loss_now, sq.mean() / (2 * m.gen_sigma**2), rtol=1e-4)


def test_energy_update_follows_the_ml_gradient():
    """One SGD step on θ with lr η moves θ by −η·∂/∂θ[mean f(x̃) − mean f(X)]."""
    m = GGCN(**TINY)
    m.compile(optimizer=keras.optimizers.SGD(0.01))
    m.build_all()
    x, xt = m.to_internal(_images(seed=1)), m.to_internal(_images(seed=2))
    before = [v.numpy() for v in m.score_net.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(m.score(xt)) - tf.reduce_mean(m.score(x))
    grads = tape.gradient(loss, m.score_net.trainable_variables)
    m.energy_update(x, xt)
    for b, g, v in zip(before, grads, m.score_net.trainable_variables):
        np.testing.assert_allclose(v.numpy(), b - 0.01 * g.numpy(), rtol=1e-4, atol=1e-6)


def test_train_step_metrics_and_energy_trace():
    m = _model()
    logs = m.train_step(_images())
    for key in ("loss", "gen_loss", "energy_data", "energy_synth", "energy_gap", "gen_mse", "grad_norm"):
        assert np.isfinite(float(logs[key])), key
    assert {"flow_e00", "flow_e03", "flow_rises"} <= set(logs)
    assert int(m.optimizer.iterations) == 1 and int(m.gen_optimizer.iterations) == 1


def test_latent_revision_option_runs_and_changes_latents():
    m = _model(latent_steps=3, latent_step_size=0.05)
    h = tf.random.stateless_normal([4, 2, 2, 4], [5, 5])
    x_tilde = m.to_internal(_images(4))
    h2 = m.revise_latents(h, x_tilde, tf.constant([1, 1]))
    assert h2.shape == h.shape and not np.allclose(h2.numpy(), h.numpy())
    assert np.isfinite(float(m.train_step(_images())["gen_loss"]))


def test_sample_paths_are_seeded_and_k_zero_is_the_generator():
    m = _model()
    a = m.sample(4, seed=3).numpy()
    np.testing.assert_array_equal(a, m.sample(4, seed=3).numpy())
    assert a.shape == (4, 8, 8, 1) and a.min() >= 0 and a.max() <= 1
    fast = m.sample(4, seed=3, num_steps=0).numpy()
    h = tf.random.stateless_normal([4, 2, 2, 4], [3, 0])
    np.testing.assert_allclose(fast, m.generate(h).numpy(), atol=1e-6)
    assert not np.allclose(fast, a)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_steps=-1), "num_steps"),
        (dict(step_size=0.0), "step_size"),
        (dict(implicit_iters=0), "implicit_iters"),
        (dict(steps=3), "Unknown sampler setting"),
    ],
)
def test_sample_rejects_bad_overrides(overrides, match):
    m = GGCN(**TINY)
    with pytest.raises(EbmZooError, match=match):
        m.sample(2, seed=0, **overrides)


@pytest.mark.parametrize(
    "bad", [dict(step_size=-1.0), dict(num_steps=-2), dict(ref_sigma=0.0), dict(latent_steps=-1)]
)
def test_constructor_rejects_bad_values(bad):
    with pytest.raises(EbmZooError):
        GGCN(**{**TINY, **bad})


def test_config_round_trip_and_weights():
    m = _model()
    m2 = GGCN.from_config(m.get_config())
    m2.build_all()
    m2.set_weights(m.get_weights())
    x = _images(4)
    np.testing.assert_allclose(m2.energy(x).numpy(), m.energy(x).numpy(), rtol=1e-5)
    np.testing.assert_allclose(m2.sample(2, seed=1, num_steps=0), m.sample(2, seed=1, num_steps=0), atol=1e-6)


def _train(strategy, weights, steps=2):
    with strategy.scope():
        m = _model()
        m.set_weights(weights)
    ds = tf.data.Dataset.from_tensor_slices(_images(8 * steps)).batch(8)
    m.fit(ds, epochs=1, verbose=0, shuffle=False)
    return m


def test_two_replicas_match_one_replica():
    two_strategy = two_cpu_strategy()
    weights = _model().get_weights()
    one = _train(tf.distribute.OneDeviceStrategy("/cpu:0"), weights)
    two = _train(two_strategy, weights)
    moved = max(np.abs(a - b).max() for a, b in zip(one.get_weights(), weights))
    assert moved > 1e-4
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_checkpoint_restores_both_networks_and_optimizers_before_the_first_step(tmp_path):
    m = _model()
    m.train_step(_images())
    path = tf.train.Checkpoint(**m.checkpoint_items()).save(str(tmp_path / "ckpt"))
    fresh = _model()
    tf.train.Checkpoint(**fresh.checkpoint_items()).restore(path).assert_existing_objects_matched()
    assert int(fresh.optimizer.iterations) == 1 and int(fresh.gen_optimizer.iterations) == 1
    for a, b in zip(m.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.gen_optimizer.variables, fresh.gen_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_step_size_has_one_home_and_is_validated_once_per_call(monkeypatch):
    """δ is stored once (step_size) and validated once at construction and once per public call
    that overrides sampler settings — never inside the traced sampler."""
    from ebm_zoo.models.ggcn import ggcn_model

    calls = []
    real = ggcn_model.check_flow_args
    monkeypatch.setattr(ggcn_model, "check_flow_args", lambda *a: calls.append(a) or real(*a))
    m = GGCN(**TINY)
    assert len(calls) == 1 and "tau" not in m.get_config()
    m.sample(2, seed=0)
    m.sample(2, seed=0, num_steps=2)
    assert len(calls) == 1
    m.sample(2, seed=0, step_size=0.05)
    assert len(calls) == 2 and calls[-1][1] == 0.05
