"""Tests of the multi-grid EBM (ebm_zoo.models.multigrid) and its nets, tiny sizes."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import config as config_lib
from ebm_zoo import distribute
from ebm_zoo.models import build_model
from ebm_zoo.models.multigrid import (
    MultiGrid,
    down_sample,
    make_mask,
    masked_psnr,
    suggest_grids,
    up_sample,
)
from ebm_zoo.nets.multigrid_nets import LAYER_TABLE, BatchStatNorm, conv_layers
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import two_cpu_strategy


def tiny(**kw) -> MultiGrid:
    args = dict(image_size=8, channels=1, grids=[1, 2, 8], num_steps=3, width=0.05, pcd_chains=4)
    args.update(kw)
    model = MultiGrid(**args)
    model.compile()
    model.build_all()
    return model


def images(n=4, size=8, channels=1, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, channels)).astype(np.float32)


def fit_steps(model, batches: list[np.ndarray]) -> dict:
    ds = tf.data.Dataset.from_tensor_slices(np.concatenate(batches)).batch(
        len(batches[0]), drop_remainder=True
    )
    hist = model.fit(ds, epochs=1, steps_per_epoch=len(batches), verbose=0, shuffle=False)
    return {k: v[-1] for k, v in hist.history.items()}


# -------------------------------------------------------------------------------------------------
# Grid operators.
def test_down_sample_is_block_mean():
    x = np.random.default_rng(1).random((2, 8, 8, 3)).astype(np.float32)
    want = x.reshape(2, 2, 4, 2, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(down_sample(tf.constant(x), 4).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(
        down_sample(tf.constant(x), 8).numpy()[:, 0, 0], x.mean(axis=(1, 2)), rtol=1e-6
    )


def test_up_sample_replicates_pixels():
    x = np.random.default_rng(2).random((2, 2, 3, 1)).astype(np.float32)
    up = up_sample(tf.constant(x), 4).numpy()
    assert up.shape == (2, 8, 12, 1)
    for i in range(8):
        for j in range(12):
            np.testing.assert_array_equal(up[:, i, j], x[:, i // 4, j // 4])
    np.testing.assert_allclose(down_sample(tf.constant(up), 4).numpy(), x, rtol=1e-6)


def test_suggest_grids():
    assert suggest_grids(64) == [1, 4, 16, 64]
    assert suggest_grids(16) == [1, 4, 16]
    assert suggest_grids(8) == [1, 2, 8]


# -------------------------------------------------------------------------------------------------
# Nets and configs.
def test_faithful_config_builds_the_spec_layer_table():
    cfg = config_lib.get_config("multigrid_celeba")
    assert (cfg.data.image_size, cfg.data.batch_size, cfg.model.num_steps) == (64, 100, 30)
    model = build_model(cfg.model)
    model.compile()
    assert model.net_grids == [4, 16, 64]
    want = {
        4: [(96, 5, 2), (128, 3, 1), (256, 3, 1)],
        16: [(96, 5, 2), (128, 3, 1), (256, 3, 1), (512, 3, 1)],
        64: [(64, 5, 2), (128, 5, 2), (256, 5, 2), (512, 5, 2)],
    }
    assert {k: list(v) for k, v in LAYER_TABLE.items()} == want
    for s, net in zip(model.net_grids, model.nets):
        convs = conv_layers(net)
        assert [(c.filters, c.kernel_size[0], c.strides[0]) for c in convs] == want[s]
        assert all(c.padding == "same" and c.kernel_size[0] == c.kernel_size[1] for c in convs)
        assert all(isinstance(c.kernel_initializer, keras.initializers.GlorotUniform) for c in convs)
        kinds = [type(layer).__name__ for layer in net.layers]
        assert kinds == ["Conv2D", "BatchStatNorm", "LeakyReLU"] * len(want[s]) + ["Flatten", "Dense"]
        assert all(
            abs(layer.negative_slope - 0.2) < 1e-9
            for layer in net.layers
            if "LeakyReLU" in type(layer).__name__
        )
        assert net.layers[-1].units == 1
        assert net.input_shape == (None, s, s, 3)
        assert all(np.all(c.bias.numpy() == 0) for c in convs)
    assert len(model.grid_optimizers) == 3 and model.optimizer is model.grid_optimizers[-1]
    for opt in model.grid_optimizers:
        assert isinstance(opt, keras.optimizers.Adam)
        got = (float(opt.learning_rate.numpy()), opt.beta_1, opt.beta_2, opt.epsilon)
        np.testing.assert_allclose(got, (0.3, 0.5, 0.999, 1e-8))


def test_cpu_configs_modes():
    for name, mode in [("multigrid", "multigrid"), ("multigrid_cd", "cd"), ("multigrid_pcd", "pcd")]:
        cfg = config_lib.get_config(name)
        assert cfg.model.mode == mode and cfg.model.grids == [1, 4, 16] and cfg.data.image_size == 16
        assert cfg.model.pcd_chains == cfg.data.batch_size


def test_get_config_round_trip():
    model = MultiGrid(image_size=8, grids=[1, 2, 8], width=0.05, mode="pcd", pcd_chains=6, norm="layer")
    cfg = model.get_config()
    json.dumps(cfg)
    assert MultiGrid.from_config(cfg).get_config() == cfg


def test_batch_stat_norm_uses_batch_statistics():
    layer = BatchStatNorm()
    x = tf.constant(np.random.default_rng(3).normal(2.0, 3.0, (5, 4, 4, 2)).astype(np.float32))
    y = layer(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    assert not layer.non_trainable_weights  # no moving averages


# -------------------------------------------------------------------------------------------------
# Learning and sampling maths.
def test_grid_loss_gradient_matches_finite_differences():
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        model = MultiGrid(image_size=4, channels=1, grids=[1, 4], width=0.05, norm="batch")
        rng = np.random.default_rng(4)
        obs = tf.constant(rng.random((3, 4, 4, 1)) * 255.0)
        synth = tf.constant(rng.random((3, 4, 4, 1)) * 255.0)
        net = model.nets[0]
        for var, index in [(net.layers[0].kernel, (2, 1, 0, 3)), (net.layers[1].gamma, (2,))]:
            with tf.GradientTape() as tape:
                loss = model.grid_loss(0, obs, synth)
            analytic = tape.gradient(loss, var).numpy()[index]
            base = var.numpy()
            eps = 1e-5
            values = []
            for sign in (1.0, -1.0):
                bumped = base.copy()
                bumped[index] += sign * eps
                var.assign(bumped)
                values.append(float(model.grid_loss(0, obs, synth)))
            var.assign(base)
            numeric = (values[0] - values[1]) / (2 * eps)
            assert abs(numeric) > 1e-6
            np.testing.assert_allclose(analytic, numeric, rtol=1e-5)
    finally:
        keras.config.set_dtype_policy(old)


def test_official_sampler_step_is_clipped_gradient_ascent_on_f():
    model = tiny(num_steps=1)
    x0 = np.random.default_rng(5).random((4, 2, 2, 1)).astype(np.float32) * 255.0
    x0[0, 0, 0, 0] = 254.999  # lands outside [0, 255] if the step pushes it up: must be clipped
    x0 = tf.constant(x0)
    with tf.GradientTape() as tape:
        tape.watch(x0)
        f = tf.reduce_sum(model.grid_score(0, x0))
    grad = tape.gradient(f, x0)
    want = np.clip(x0.numpy() + 0.5 * 0.3**2 * grad.numpy(), 0.0, 255.0)
    got = model.run_sampler(0, x0, tf.constant([0, 0])).samples.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert np.abs(got - x0.numpy()).max() > 0


def test_pcd_chains_persist_and_cd_chains_restart_at_data(tmp_path):
    b1, b2 = images(seed=10), images(seed=11)
    expected = float(np.mean(np.abs(b2 - b1)) * 255.0)
    pcd = tiny(mode="pcd", num_steps=0)
    logs = fit_steps(pcd, [b1, b2])
    # T = 0: synth = chain state = batch 1 at step 2 (Keras reports the mean over both steps).
    np.testing.assert_allclose(2 * logs["abs_err_8"], expected, rtol=1e-4)
    np.testing.assert_allclose(pcd.chains.states.numpy(), b1 * 255.0, rtol=1e-6)
    # checkpoint_items covers nets, every optimizer, the chains and the colour bank.
    path = tf.train.Checkpoint(**pcd.checkpoint_items()).save(str(tmp_path / "ckpt"))
    restored = tiny(mode="pcd", num_steps=0)
    tf.train.Checkpoint(**restored.checkpoint_items()).restore(path).assert_existing_objects_matched()
    for a, b in zip(pcd.variables, restored.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(pcd.grid_optimizers, restored.grid_optimizers):
        assert int(b.iterations.numpy()) == int(a.iterations.numpy()) == 2
        for va, vb in zip(a.variables, b.variables):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())
    cd = tiny(mode="cd", num_steps=0)
    assert fit_steps(cd, [b1, b2])["abs_err_8"] == 0.0


def test_langevin_sampler_step_has_reference_term_and_noise():
    model = tiny(num_steps=1, sampler="langevin", ref_sigma=20.0)
    x0 = tf.constant(np.random.default_rng(6).random((4, 2, 2, 1)).astype(np.float32) * 200.0 + 20.0)
    seed = tf.constant([3, 4])
    with tf.GradientTape() as tape:
        tape.watch(x0)
        f = tf.reduce_sum(model.grid_score(0, x0))
    grad_f = tape.gradient(f, x0).numpy()
    z = tf.random.stateless_normal(x0.shape, distribute.split_seed(seed, 0)).numpy()
    delta, x = 0.3, x0.numpy()
    want = np.clip(x - 0.5 * delta**2 * (x / 20.0**2 - grad_f) + delta * z, 0.0, 255.0)
    got = model.run_sampler(0, x0, seed).samples.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    # The energy used by the sampler includes the Gaussian reference term.
    e = model.grid_energy(0, x0).numpy()
    ref = (x.reshape(4, -1) ** 2).sum(1) / (2 * 20.0**2)
    np.testing.assert_allclose(e, -model.grid_score(0, x0).numpy() + ref, rtol=1e-5)


def test_colour_bank_starts_samples_at_training_mean_colours():
    model = tiny(mode="cd", num_steps=0)
    batch = np.stack([np.full((8, 8, 1), v, np.float32) for v in (0.1, 0.4, 0.7, 0.9)])
    fit_steps(model, [batch])
    pyramid = model.sample_all_grids(24, seed=3)
    assert [p.shape[1] for p in pyramid] == [1, 8]
    starts = np.unique(np.round(pyramid[0].numpy().ravel(), 5))
    np.testing.assert_allclose(starts, [0.1, 0.4, 0.7, 0.9], atol=1e-5)
    # T = 0: the sample is the up-sampled start colour; `sample` is the last grid of the pyramid.
    np.testing.assert_allclose(
        pyramid[1].numpy(), np.broadcast_to(pyramid[0].numpy(), (24, 8, 8, 1)), atol=1e-6
    )
    np.testing.assert_array_equal(model.sample(24, seed=3).numpy(), pyramid[-1].numpy())


# -------------------------------------------------------------------------------------------------
# Distribution: 2 replicas == 1 replica with the same global batch.
@pytest.mark.parametrize("mode", ["multigrid", pytest.param("pcd", marks=pytest.mark.slow)])
def test_two_replicas_match_one(mode):
    # Batch-independent norm: with norm="batch" every replica normalises with the statistics of
    # its own half batch, so the scores, the sampler's gradients and the parameter gradients are
    # those of a different function than on one replica with the full batch — they cannot match
    # (a cross-replica synchronised batch norm would be needed for that).
    # Adam with a large ε is close to SGD: the comparison tests gradients, not Adam's g/|g| at g ≈ 0.
    kw = dict(mode=mode, norm="none", sampler="langevin", ref_sigma=30.0, learning_rate=0.01, epsilon=1.0)
    batches = [images(seed=20), images(seed=21)]
    one = tiny(**kw)
    with two_cpu_strategy().scope():
        two = tiny(**kw)
    two.set_weights(one.get_weights())
    before = [[v.numpy().copy() for v in net.trainable_variables] for net in one.nets]
    logs1 = fit_steps(one, batches)
    logs2 = fit_steps(two, batches)
    # Every grid's net moved, each optimizer counted both steps, all metrics are finite.
    for s, net, old in zip(one.net_grids, one.nets, before):
        assert any(not np.array_equal(o, v.numpy()) for o, v in zip(old, net.trainable_variables)), s
    assert [int(o.iterations.numpy()) for o in one.grid_optimizers] == [2] * len(one.nets)
    assert {
        "loss",
        "grad_norm",
        *(f"loss_{s}" for s in one.net_grids),
        *(f"abs_err_{s}" for s in one.net_grids),
    } <= set(logs1)
    assert all(np.isfinite(v) for v in logs1.values())
    for a, b in zip(one.trainable_variables, two.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(one.colour_bank.states.numpy(), two.colour_bank.states.numpy(), rtol=1e-6)
    if mode == "pcd":
        np.testing.assert_allclose(one.chains.states.numpy(), two.chains.states.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(logs1["loss"], logs2["loss"], rtol=1e-3, atol=1e-4)


# -------------------------------------------------------------------------------------------------
# Inpainting.
def test_masks():
    c = make_mask("center", 8, 2)
    assert c.shape == (2, 8, 8, 1) and c.sum() == 2 * 16 and c[0, 2:6, 2:6].all()
    left, right = make_mask("left", 8), make_mask("right", 8)
    assert left[0, :, :4].all() and not left[0, :, 4:].any()
    np.testing.assert_array_equal(left + right, 1.0)
    r = make_mask("random", 16, 4, drop_rate=0.3, seed=1)
    assert 0.2 < r.mean() < 0.4 and not np.array_equal(r[0], r[1])
    with pytest.raises(EbmZooError, match="mask kind"):
        make_mask("diagonal", 8)


@pytest.mark.parametrize("mode", ["multigrid", "cd"])
def test_inpaint_keeps_known_pixels_exactly(mode):
    model = tiny(mode=mode, num_steps=5)  # untrained: the property holds for any energy
    x = images(seed=31)
    for kind in ("center", "random", "left"):
        mask = make_mask(kind, 8, 4, seed=2)
        out = model.inpaint(x, mask).numpy()
        known = np.broadcast_to(mask == 0, x.shape)
        np.testing.assert_array_equal(out[known], x[known])
        assert not np.allclose(out[~known], x[~known])
        assert out.min() >= 0.0 and out.max() <= 1.0
    assert masked_psnr(x, x, mask) > 100
    # Blocks with no unknown pixel at a coarse grid are fixed at their block mean, so a mask of
    # all zeros returns the input.
    np.testing.assert_array_equal(model.inpaint(x, np.zeros((8, 8))).numpy(), x)


def test_masked_psnr_known_value():
    target = np.zeros((1, 4, 4, 1))
    pred = np.full((1, 4, 4, 1), 0.1)
    mask = make_mask("left", 4)
    pred[mask == 0] = 0.9  # outside the mask: must not count
    np.testing.assert_allclose(masked_psnr(pred, target, mask), 20.0)


# -------------------------------------------------------------------------------------------------
# Bad input.
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(grids=[4, 8]), "must start at 1"),
        (dict(grids=[1, 3, 8]), "integer factors"),
        (dict(grids=[1, 2, 4]), "must equal the image size"),
        (dict(mode="gibbs"), "mode"),
        (dict(sampler="hmc"), "sampler"),
        (dict(norm="batchnorm"), "norm"),
        (dict(mode="pcd", pcd_chains=None), "pcd_chains"),
        (dict(num_steps=-1), "num_steps"),
        (dict(step_size=0.0), "step_size"),
    ],
)
def test_bad_constructor_arguments(kw, match):
    args = dict(image_size=8, grids=[1, 2, 8], width=0.05)
    args.update(kw)
    with pytest.raises(EbmZooError, match=match):
        MultiGrid(**args)


def test_bad_images_and_masks():
    model = tiny()
    with pytest.raises(EbmZooError, match=r"grids=\[1, 4, 16\]"):
        model.train_step(tf.zeros([2, 16, 16, 1]))
    x = images()
    with pytest.raises(EbmZooError, match="mask"):
        model.inpaint(x, np.zeros((7, 8)))
    with pytest.raises(EbmZooError, match="mask"):
        model.inpaint(x, np.zeros((3, 8, 8, 1)))
    with pytest.raises(EbmZooError, match="binary"):
        model.inpaint(x, np.full((8, 8), 0.5))
    with pytest.raises(EbmZooError, match="divide by 255"):
        model.inpaint(x * 255.0, np.zeros((8, 8)))
