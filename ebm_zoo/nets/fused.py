"""Fused kernels for the two elementwise-heavy pieces of the zoo's nets (issue 12's speed levers).

The bench's op tables (`python tools/bench.py --profile=<case>`, docs/bench.md "Where the time
goes") showed that outside the convolutions most kernel time went to long chains of small
elementwise kernels, each a full pass over an activation tensor:

- **SiLU's backward pass.** `tf.nn.silu`'s forward pass is one oneDNN kernel (`_MklSwish`), its
  gradient five (Sigmoid, Sub, Mul, AddV2, Mul). `silu` here keeps the forward kernel and runs
  the backward pass ∂silu(x)/∂x · dy = dy · σ(x) · (1 + x · (1 − σ(x))) as one XLA-compiled
  function, which XLA fuses into one loop. Only that function is compiled; the convolutions stay
  on oneDNN (XLA:CPU's are slower here). The backward function is differentiable again
  (second-order gradients: the flow-matching losses on −∇V of VAPO and Energy Matching).
- **Batch-statistics normalisation** (the multi-grid nets' `BatchStatNorm`): `tf.nn.moments` and
  the affine map are about ten kernels forward and more backward. `batch_stat_norm` here is
  TensorFlow's fused batch normalisation in training mode (`FusedBatchNormV3`, oneDNN's kernel;
  one kernel forward, one backward), which computes the same function: per-channel batch mean and
  biased variance. float64 inputs (gradient checks) keep the unfused form: the fused kernel has
  no float64 version.

`fused_enabled()` is on by default; `EBM_ZOO_FUSED=0` in the environment (read when a net is
traced) selects the plain TensorFlow ops, for A/B runs of the bench
(`python tools/bench.py --tf_env=EBM_ZOO_FUSED=0`).
"""

from __future__ import annotations

import os

import tensorflow as tf


def fused_enabled() -> bool:
    """Whether the fused kernels are used (EBM_ZOO_FUSED, default on)."""
    value = os.environ.get("EBM_ZOO_FUSED", "1").strip().lower()
    if value not in ("0", "1", "true", "false", "on", "off", ""):
        raise ValueError(f"EBM_ZOO_FUSED={value!r}: set it to 1 (fused kernels, default) or 0 (plain ops).")
    return value in ("1", "true", "on", "")


# ------------------------------------------------------------------------------------------
# SiLU.
@tf.function(jit_compile=True, autograph=False)
def _silu_backward(x, dy):
    s = tf.sigmoid(x)
    return dy * (s * (1.0 + x * (1.0 - s)))


@tf.custom_gradient
def _fused_silu(x):
    def grad(dy):
        return _silu_backward(x, dy)

    return tf.nn.silu(x), grad


def silu(x):
    """x · σ(x), with the fused backward pass unless EBM_ZOO_FUSED=0."""
    if fused_enabled():
        return _fused_silu(x)
    return tf.nn.silu(x)


# ------------------------------------------------------------------------------------------
# Batch-statistics normalisation.
_FUSED_NORM_DTYPES = (tf.float32, tf.bfloat16, tf.float16)


def moments_norm(x, gamma, beta, epsilon: float):
    """γ·(x − mean) / sqrt(var + ε) + β with per-channel statistics over (N, H, W), plain ops."""
    mean, var = tf.nn.moments(x, axes=[0, 1, 2], keepdims=True)
    return tf.cast(gamma, x.dtype) * (x - mean) * tf.math.rsqrt(var + epsilon) + tf.cast(beta, x.dtype)


def batch_stat_norm(x, gamma, beta, epsilon: float):
    """`moments_norm` as one fused kernel (float32 γ, β; x float32 / bfloat16 / float16, NHWC),
    unless EBM_ZOO_FUSED=0 or x is float64."""
    if x.shape.rank != 4 or x.dtype not in _FUSED_NORM_DTYPES or not fused_enabled():
        return moments_norm(x, gamma, beta, epsilon)
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(
        x,
        tf.cast(gamma, tf.float32),
        tf.cast(beta, tf.float32),
        epsilon=epsilon,
        data_format="NHWC",
        is_training=True,
    )
    return y
