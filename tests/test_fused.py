"""The fused kernels (ebm_zoo.nets.fused): the same functions and derivatives as the plain ops."""

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.nets import fused


def _objective(x, fn):
    return tf.reduce_sum(tf.sin(fn(x)) * x)  # a non-linear use of the activation


def test_gradient_matches_finite_differences_and_tf_nn_silu():
    x = tf.constant(np.random.default_rng(0).normal(size=[3, 4, 4, 2]) * 3.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = _objective(x, fused._fused_silu)
    g = tape.gradient(y, x).numpy()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y_ref = _objective(x, tf.nn.silu)
    g_ref = tape.gradient(y_ref, x).numpy()
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)
    eps, flat = 1e-6, x.numpy().ravel()
    for i in (0, 7, 31):
        up, down = flat.copy(), flat.copy()
        up[i] += eps
        down[i] -= eps
        fd = (
            _objective(tf.constant(up.reshape(x.shape)), fused._fused_silu)
            - _objective(tf.constant(down.reshape(x.shape)), fused._fused_silu)
        ) / (2 * eps)
        assert abs(float(fd) - g.ravel()[i]) < 1e-6, i


def test_second_order_gradient_matches_tf_nn_silu():
    """Flow-matching losses on −∇V differentiate the input gradient again."""
    x = tf.constant(np.random.default_rng(1).normal(size=[2, 3, 3, 2]) * 2.0)
    v = tf.constant(np.random.default_rng(2).normal(size=[2, 3, 3, 2]))

    def hvp(fn):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = _objective(x, fn)
            gv = tf.reduce_sum(inner.gradient(y, x) * v)
        return outer.gradient(gv, x).numpy()

    np.testing.assert_allclose(hvp(fused._fused_silu), hvp(tf.nn.silu), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_inside_a_compiled_while_loop_keeps_the_dtype_and_the_update(dtype):
    x0 = tf.cast(tf.random.stateless_normal([2, 5, 5, 3], [0, 1]), dtype)

    def sampler(fn):
        @tf.function
        def run(x):
            def body(i, x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = tf.reduce_sum(fn(x))
                return i + 1, x + tf.cast(0.1, dtype) * tape.gradient(y, x)

            return tf.while_loop(lambda i, x: i < 3, body, [0, x])[1]

        return run(x0)

    got, want = sampler(fused._fused_silu), sampler(tf.nn.silu)
    assert got.dtype == dtype
    tol = 1e-6 if dtype == tf.float32 else 3e-2
    np.testing.assert_allclose(tf.cast(got, tf.float32), tf.cast(want, tf.float32), rtol=tol, atol=tol)


def test_the_environment_switch_and_a_bad_value(monkeypatch):
    monkeypatch.setenv("EBM_ZOO_FUSED", "0")
    assert fused.fused_enabled() is False
    monkeypatch.delenv("EBM_ZOO_FUSED")
    assert fused.fused_enabled() is True
    monkeypatch.setenv("EBM_ZOO_FUSED", "maybe")
    with pytest.raises(ValueError, match="EBM_ZOO_FUSED=.maybe.*1 .*or 0"):
        fused.fused_enabled()


def _input_gradient_graph(net, shape):
    """The traced graph of ∂(Σ net(x))/∂x (what every sampler step runs)."""

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            f = tf.reduce_sum(net(x))
        return tape.gradient(f, x)

    return grad.get_concrete_function(tf.TensorSpec(shape)).graph


def test_the_zoo_nets_run_the_fused_backward_pass():
    """A swish EnergyConvNet's input gradient goes through the XLA-compiled function."""
    from ebm_zoo.nets.convnets import EnergyConvNet

    net = EnergyConvNet(layers=[[4, 3, 2]], top="dense", activation="swish")
    graph = _input_gradient_graph(net, [2, 8, 8, 1])
    names = {f.signature.name for f in graph.as_graph_def().library.function}
    assert any("silu_backward" in n for n in names), sorted(names)


def _norm_and_grads(fn, x, gamma, beta):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x, gamma, beta, 1e-5)
        obj = tf.reduce_sum(tf.sin(y) * tf.cos(x))
    return [y, *tape.gradient(obj, [x, gamma, beta])]


def test_fused_batch_stat_norm_equals_the_moments_form_and_its_gradients():
    """Per-channel batch mean and *biased* variance, through x, γ and β (the sampler needs ∂/∂x
    through the batch statistics)."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=[6, 5, 5, 4]).astype(np.float32) * 3.0 + 1.0)
    gamma = tf.Variable(rng.uniform(0.5, 1.5, size=[4]).astype(np.float32))
    beta = tf.Variable(rng.normal(size=[4]).astype(np.float32))
    got = _norm_and_grads(fused.batch_stat_norm, x, gamma, beta)
    want = _norm_and_grads(fused.moments_norm, x, gamma, beta)
    for g, w, name in zip(got, want, ["y", "dx", "dgamma", "dbeta"]):
        scale = float(tf.reduce_max(tf.abs(w)))
        assert float(tf.reduce_max(tf.abs(g - w))) <= 2e-5 * scale, name
    y = got[0].numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), beta.numpy(), atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), gamma.numpy(), rtol=1e-3)  # biased std


def test_batch_stat_norm_keeps_float64_exact_and_runs_bfloat16():
    rng = np.random.default_rng(4)
    x = rng.normal(size=[4, 3, 3, 2]) * 2.0
    gamma, beta = tf.constant([1.5, 0.5]), tf.constant([0.1, -0.2])
    y64 = fused.batch_stat_norm(tf.constant(x), tf.cast(gamma, tf.float64), tf.cast(beta, tf.float64), 1e-5)
    assert y64.dtype == tf.float64  # the unfused form: the fused kernel has no float64 version
    want = fused.moments_norm(tf.constant(x), tf.cast(gamma, tf.float64), tf.cast(beta, tf.float64), 1e-5)
    np.testing.assert_array_equal(y64.numpy(), want.numpy())
    y16 = fused.batch_stat_norm(tf.constant(x, tf.bfloat16), gamma, beta, 1e-5)
    assert y16.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y16, tf.float64).numpy(), want.numpy(), atol=0.05)


def test_the_multigrid_net_runs_the_fused_normalisation(monkeypatch):
    from ebm_zoo.nets.multigrid_nets import make_energy_net

    net = make_energy_net(16, 3, width=0.1)

    def op_types():
        return {op.type for op in _input_gradient_graph(net, [4, 16, 16, 3]).get_operations()}

    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= op_types()
    monkeypatch.setenv("EBM_ZOO_FUSED", "0")
    assert "FusedBatchNormV3" not in op_types()
