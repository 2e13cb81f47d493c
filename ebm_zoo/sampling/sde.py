"""Stochastic Heun integration of dx = f(x) dt + g(t) dW with a tensor number of steps.

One `tf.while_loop` with a static maximum, as `sampling.langevin`: the step count may be an int32
tensor (served signatures), each replica takes its rows of the global-batch Brownian increments.
Samplers take callables, never models (Energy Matching's sampler: `drift = −∇V`, g from ε(t)).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from ebm_zoo import distribute


def heun_sde(
    drift_fn: Callable[[tf.Tensor], tf.Tensor],
    diffusion_fn: Callable[[tf.Tensor], tf.Tensor],
    x0: tf.Tensor,
    *,
    num_steps,
    dt: float,
    seed: tf.Tensor,
    max_steps: int,
    project: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
    time_fn: Callable[[tf.Tensor], tf.Tensor] | None = None,
    clip: tuple[float, float] | None = None,
) -> tf.Tensor:
    r"""Stratonovich Heun steps k = 0 … num_steps − 1 (torchsde's `method="heun"`):

        x' = x + dt·f(x) + g_k·ΔW_k,   x ← x + ½dt·(f(x) + f(x')) + ½(g_k + g_{k+1})·ΔW_k

    with g_k = diffusion_fn(k) (int32 step index, a scalar of x's dtype) and ΔW_k = sqrt(dt)·z_k,
    z_k standard normals from split_seed(seed, k). Then an optional final clip.

    Args:
      num_steps: int or int32 scalar tensor in [0, max_steps] (asserted in-graph).
      max_steps: static bound of the loop.
      project: optional (time_fn(k + 1), x) -> x applied after every step (inpainting);
        time_fn maps a step index to the time passed to it.
    """
    x0 = tf.convert_to_tensor(x0)
    num_steps = tf.convert_to_tensor(num_steps, tf.int32)
    checks = [
        tf.debugging.assert_greater_equal(num_steps, 0, message="num_steps must be >= 0"),
        tf.debugging.assert_less_equal(
            num_steps, tf.constant(int(max_steps), tf.int32), message=f"num_steps must be <= {max_steps}"
        ),
    ]
    with tf.control_dependencies(checks):
        num_steps = tf.identity(num_steps)
    sqrt_dt = math.sqrt(dt)

    def body(k, x):
        dw = sqrt_dt * distribute.global_normal(tf.shape(x), distribute.split_seed(seed, k), x.dtype)
        g0, g1 = diffusion_fn(k), diffusion_fn(k + 1)
        f0 = drift_fn(x)
        x_pred = x + dt * f0 + g0 * dw
        x_new = x + 0.5 * dt * (f0 + drift_fn(x_pred)) + 0.5 * (g0 + g1) * dw
        if project is not None:
            x_new = project(time_fn(k + 1), x_new)
        return k + 1, x_new

    _, x = tf.while_loop(
        lambda k, x: k < num_steps, body, (tf.constant(0, tf.int32), x0), maximum_iterations=int(max_steps)
    )
    return x if clip is None else tf.clip_by_value(x, clip[0], clip[1])
