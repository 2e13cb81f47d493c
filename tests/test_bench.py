"""The "langevin" benchmark suite: the PyTorch twin computes TF's function; rows are well formed.

No timing is asserted here (performance is measured by tools/bench.py, not in tests).
"""

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.bench import langevin as bench_langevin

ROW_KEYS = {"name", "batch", "steps", "median_s", "steps_per_s", "gflops", "frac_of_matmul"}


def _tf_score_and_grad(net, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        f = net(x)
        total = tf.reduce_sum(f)
    return f.numpy(), tape.gradient(total, x).numpy()


@pytest.mark.parametrize("key", list(bench_langevin.CONFIGS))
def test_torch_net_equals_tf_net_with_copied_weights(key):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is not installed; the TF/PyTorch comparison is skipped"
    )
    d = bench_langevin.build_descriptor(bench_langevin.CONFIGS[key]["model"])
    net = bench_langevin.make_torch_net(d.layer_spec, d.channels, d.image_size, d.net.top, d.activation)
    bench_langevin.copy_tf_weights(d.net, net)

    # Internal pixel scale (centred 8-bit values), as in the sampler.
    x = np.random.default_rng(0).uniform(-127.5, 127.5, (3, d.image_size, d.image_size, d.channels))
    x = x.astype(np.float32)
    f_tf, g_tf = _tf_score_and_grad(d.net, x)

    x_pt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(True)
    f_pt = net(x_pt)
    (g_pt,) = torch.autograd.grad(f_pt.sum(), x_pt)
    f_pt = f_pt.detach().numpy()
    g_pt = g_pt.numpy().transpose(0, 2, 3, 1)

    assert f_pt.shape == f_tf.shape
    np.testing.assert_allclose(f_pt, f_tf, rtol=1e-4, atol=1e-4 * np.abs(f_tf).max())
    np.testing.assert_allclose(g_pt, g_tf, rtol=1e-4, atol=1e-4 * np.abs(g_tf).max())


def test_torch_langevin_matches_tf_step_without_noise():
    """One noise-free step of the PyTorch update equals the descriptor's TF step."""
    torch = pytest.importorskip(
        "torch", reason="PyTorch is not installed; the TF/PyTorch comparison is skipped"
    )
    d = bench_langevin.build_descriptor(bench_langevin.CONFIGS["texture64x1"]["model"])
    net = bench_langevin.make_torch_net(d.layer_spec, d.channels, d.image_size, d.net.top, d.activation)
    bench_langevin.copy_tf_weights(d.net, net)
    x0 = bench_langevin.tf_initial_state(d, 2)
    x_tf = d.run_langevin(x0, tf.constant([0, 0]), num_steps=1, noise_scale=0.0).samples.numpy()

    x_pt = torch.from_numpy(np.ascontiguousarray(x0.numpy().transpose(0, 3, 1, 2)))
    x_pt = bench_langevin.torch_langevin(
        net, x_pt, 1, d.step_size, d.ref_sigma, d._clip(), torch.Generator(), noise_scale=0.0
    )
    x_next = x_pt.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(x_next, x_tf, rtol=1e-4, atol=1e-3)


def test_step_flops_counts_forward_and_input_gradient():
    # One 3×3 'same' conv, 1 → 2 channels on 4×4, then the 1×1 "sum" top:
    # MACs = 4·4·2·9·1 + 4·4·2 = 320; a step is 2 passes × 2 FLOPs per MAC × batch.
    assert bench_langevin.forward_macs([[2, 3, 1]], 4, 1, "sum") == 320
    assert bench_langevin.step_flops([[2, 3, 1]], 4, 1, "sum", batch=5) == 4 * 5 * 320
    # TF 'same' padding of a stride-2 5×5 conv on 64 pixels: 3 pixels, 1 before and 2 after.
    assert bench_langevin.same_padding(64, 5, 2) == (32, 1, 2)


def test_quick_run_returns_rows_with_expected_keys():
    rows = bench_langevin.run(quick=True, matmul_gflops=100.0)
    timed = [r for r in rows if "median_s" in r]
    ratios = [r for r in rows if "ratio" in r]
    names = {r["name"].split("/", 1)[1] for r in timed}
    assert {"tf_compiled", "tf_eager"} <= names
    for r in timed:
        assert ROW_KEYS <= set(r), r
        assert r["median_s"] > 0 and r["steps_per_s"] > 0 and r["gflops"] > 0
    ratio_names = {r["name"].split("/", 1)[1] for r in ratios}
    assert "compiled_vs_eager" in ratio_names
    try:
        import torch  # noqa: F401
    except ImportError:
        assert all("skipped" in r for r in rows if "torch" in r["name"] and "ratio" not in r)
    else:
        assert "tf_vs_torch" in ratio_names
