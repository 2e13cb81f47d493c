"""The generative ConvNet: reconstruction, learning under distribution, resume, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.models import build_model
from ebm_zoo.models.descriptor import Descriptor
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import assert_weights_close, tiny_descriptor_config, two_cpu_strategy


def _model(**kw):
    args = dict(image_size=12, channels=1, layers=[[6, 3, 2], [5, 3, 1]], num_chains=4, num_steps=3)
    args.update(kw)
    m = Descriptor(**args)
    m.compile()
    m.build_all()
    return m


def test_reconstruct_is_sigma2_grad_f_and_the_mean_of_the_local_gaussian_piece():
    keras.utils.set_random_seed(1)
    m = _model(ref_sigma=3.0, mode="object")
    x = tf.random.stateless_uniform([2, 12, 12, 1], [1, 2], 0.2, 0.8)
    xi = m.to_internal(x)
    rec = m._reconstruct(xi).numpy()
    # ∂f/∂x by central differences on a few pixels.
    f = lambda z: m.net(tf.constant(z)).numpy()  # noqa: E731
    base = xi.numpy().astype(np.float32)
    for idx in [(0, 3, 4, 0), (1, 7, 2, 0), (0, 11, 11, 0)]:
        e = np.zeros_like(base)
        e[idx] = 0.25  # f is piecewise linear: a moderate step stays on the piece, above float32 noise
        fd = (f(base + e) - f(base - e))[idx[0]] / 0.5
        assert rec[idx] == pytest.approx(9.0 * fd, rel=2e-3, abs=1e-4)
    # ReLU net: on x's activation piece E(y) = ‖y − μ‖²/(2σ²) + const with μ = reconstruct(x) = σ²∂f/∂x,
    # i.e. the piece is the Gaussian N(μ, σ²I). Check E's increments against that quadratic form.
    rng = np.random.default_rng(0)
    e0 = m._energy(xi).numpy()
    for _ in range(3):
        v = rng.normal(size=base.shape).astype(np.float32)
        for scale in (0.05, 0.01, 0.002):  # stay on x's piece: same ∂f/∂x at the moved point
            y = base + scale * v
            if np.allclose(m._reconstruct(tf.constant(y)).numpy(), rec, rtol=1e-5, atol=1e-6):
                break
        else:
            raise AssertionError("every perturbation left the activation piece")
        quad = (np.sum((y - rec) ** 2, axis=(1, 2, 3)) - np.sum((base - rec) ** 2, axis=(1, 2, 3))) / (
            2 * 9.0
        )
        # atol: float32 resolution of energies of size ~1e4 is ~2e-3 per evaluation.
        np.testing.assert_allclose(m._energy(tf.constant(y)).numpy() - e0, quad, rtol=2e-3, atol=1e-2)


def test_texture_mode_scores_any_size_and_object_mode_refuses():
    m = _model()
    assert m.energy(tf.fill([2, 20, 28, 1], 0.5)).shape == (2,)
    assert m.sample(2, seed=1, size=24).shape == (2, 24, 24, 1)
    obj = _model(mode="object")
    with pytest.raises(EbmZooError, match="spatial size"):
        obj.energy(tf.fill([2, 20, 20, 1], 0.5))


def test_sample_is_reproducible_and_in_range():
    m = _model()
    a, b = m.sample(3, seed=5).numpy(), m.sample(3, seed=5).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(a, m.sample(3, seed=6).numpy())


@pytest.mark.parametrize("learning,chain_init", [("ml", "persistent"), ("ml", "noise"), ("cd", "noise")])
def test_two_replicas_match_one_replica(learning, chain_init):
    cfg = tiny_descriptor_config(
        learning=learning, chain_init=chain_init, grad_norm_by_filters=True, grad_clip=0.05
    )
    cfg.model.optimizer = "sgd"
    batch = tf.random.stateless_uniform([4, 16, 16, 1], [3, 3])
    ds = tf.data.Dataset.from_tensors(batch).repeat()

    def run(strategy):
        with strategy.scope():
            m = build_model(cfg.model)
            m.compile()
            m.build_all()
            m.set_weights(ref_weights)
        m.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        return m

    ref = build_model(cfg.model)
    ref.build_all()
    ref_weights = ref.get_weights()
    one = run(tf.distribute.get_strategy())
    two = run(two_cpu_strategy())
    assert not np.allclose(one.get_weights()[0], ref_weights[0])  # it did learn something
    assert_weights_close(one, two, rtol=1e-4, atol=1e-5)
    if chain_init == "persistent":
        np.testing.assert_allclose(one.chains.states.numpy(), two.chains.states.numpy(), rtol=1e-4, atol=1e-3)


def test_bad_input_messages():
    m = _model()
    with pytest.raises(EbmZooError, match="4-D"):
        m.energy(tf.zeros([12, 12, 1]))
    with pytest.raises(EbmZooError, match="channels"):
        m.energy(tf.zeros([1, 12, 12, 3]))
    with pytest.raises(EbmZooError, match="255"):
        m.energy(tf.fill([1, 12, 12, 1], 200.0))
    with pytest.raises(EbmZooError, match="NaN"):
        m.energy(tf.fill([1, 12, 12, 1], float("nan")))
    with pytest.raises(EbmZooError, match="uint8"):
        m.energy(tf.zeros([1, 12, 12, 1], tf.uint8))
    with pytest.raises(EbmZooError, match="step_size"):
        Descriptor(step_size=0.0)
    with pytest.raises(EbmZooError, match="valid values"):
        Descriptor(learning="bogus")
    with pytest.raises(EbmZooError, match="`n` must be >= 1"):
        m.sample(0)


def test_get_config_round_trip():
    m = _model(step_size=0.2, learning="cd")
    clone = Descriptor.from_config(m.get_config())
    assert clone.get_config() == m.get_config()
