r"""Langevin dynamics on an energy E(x), compiled as a `tf.while_loop` — the one loop of ebm_zoo.

One step with step size δ (MODELS.md §1; Xie et al. 2016):

    x ← x − (δ²/2)·∇E(x) + s·δ·z,        z ~ N(0, I),  s = noise_scale (0 = gradient descent)

For the generative ConvNet E(x) = −f(x) + ‖x‖²/(2σ²), so the drift is (δ²/2)(∂f/∂x − x/σ²);
the multi-grid model's official update is the special case E = −f, s = 0, clipped to [0, 255].

Implicit / proximal (JKO) variant (wGCN, MODELS.md §3): with τ = δ²/2 the step solves
x' = x − τ·∇E(x') + √(2τ)·s·z, i.e. x' = prox_{τE}(x + √(2τ)·s·z), by J iterations from x⁽⁰⁾ = x
with z fixed:

  solver="fixed_point"  x⁽ʲ⁺¹⁾ = x + √(2τ)sz − τ∇E(x⁽ʲ⁾)           (J = 1: the explicit step).
                        Converges only when τ·Lip(∇E) < 1.
  solver="split"        for E = U + ‖x‖²/(2σ²) (σ = `ref_sigma`): the Gaussian reference term is
                        solved in closed form and only ∇U = ∇E − x/σ² is iterated,
                        x⁽ʲ⁺¹⁾ = (x + √(2τ)sz − τ∇U(x⁽ʲ⁾)) / (1 + τ/σ²).

`wgcn_flow` is this loop on E = −f + ‖x‖²/(2σ²) with a score function f.

Noise is stateless: step t uses `fold_in(seed, t)`, and each replica takes its own rows of the
global-batch noise (ebm_zoo.distribute), so chains are reproducible and replicas never share noise.
`num_steps` may be a Python int or a scalar int32 tensor (with a static `max_steps`): the noise of
step t does not depend on either, so a served chain with a tensor step count equals the Python one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from ebm_zoo import distribute

EnergyFn = Callable[[tf.Tensor], tf.Tensor]
SOLVERS = ("fixed_point", "split")


class LangevinResult(NamedTuple):
    """Output of `langevin`.

    samples: [N, H, W, C] final states.
    energy_trace: [max_steps + 1] mean energy of the batch before step 1 and after every step
      (entries past `num_steps` repeat the last value), or None when tracing is off.
    grad_norm: scalar, mean per-example L2 norm of ∇E at the last step (a divergence diagnostic).
    """

    samples: tf.Tensor
    energy_trace: tf.Tensor | None
    grad_norm: tf.Tensor


def energy_and_grad(energy_fn: EnergyFn, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-example energies [N] and ∇ₓ of their sum, [N, ...]."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        e = energy_fn(x)
        total = tf.reduce_sum(e)
    return e, tape.gradient(total, x)


def langevin_step(
    energy_fn: EnergyFn,
    x: tf.Tensor,
    noise: tf.Tensor | None,
    *,
    step_size: float | tf.Tensor,
    implicit_iters: int = 1,
    solver: str = "fixed_point",
    ref_sigma: float | None = None,
    clip: tuple[float, float] | None = None,
    mask: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One (explicit or implicit) Langevin step (module docstring; `ref_sigma` for solver="split").

    Returns (x_next, E(x) [N] at the *starting* point, ∇E at the last fixed-point iterate).
    The starting energy comes free with the first gradient, so tracing costs no extra pass.
    """
    tau = 0.5 * tf.square(tf.cast(step_size, x.dtype))
    kick = x if noise is None else x + tf.cast(step_size, x.dtype) * noise
    if solver == "split":
        inv_var = 1.0 / float(ref_sigma) ** 2
        shrink = 1.0 / (1.0 + tau * inv_var)  # the exact proximal map of the reference term
    y = x
    e_start = grad = None
    for j in range(int(implicit_iters)):  # J is a small static number (J = 1: explicit step)
        e, grad = energy_and_grad(energy_fn, y)
        if j == 0:
            e_start = e
        if solver == "split":  # ∇U = ∇E − y/σ², the reference term in closed form
            y = shrink * (kick - tau * (grad - inv_var * y))
        else:
            y = kick - tau * grad
        if clip is not None:
            y = tf.clip_by_value(y, clip[0], clip[1])
        if mask is not None:
            y = mask * y + (1.0 - mask) * x
    return y, e_start, grad


def langevin(
    energy_fn: EnergyFn,
    x0: tf.Tensor,
    *,
    num_steps,
    step_size: float | tf.Tensor,
    seed: tf.Tensor,
    noise_scale: float | tf.Tensor | Callable[[tf.Tensor], tf.Tensor] = 1.0,
    max_steps: int | None = None,
    implicit_iters: int = 1,
    solver: str = "fixed_point",
    ref_sigma: float | None = None,
    clip: tuple[float, float] | None = None,
    mask: tf.Tensor | None = None,
    trace: bool = False,
) -> LangevinResult:
    """Runs `num_steps` Langevin steps from `x0` inside a `tf.while_loop`.

    Args:
      energy_fn: maps x [N, ...] to per-example energies [N]. Must be differentiable.
      x0: initial states [N, H, W, C] in the model's internal pixel scale.
      num_steps: int or scalar int tensor T (0 allowed); must be <= max_steps.
      step_size: δ.
      seed: [2] int32 stateless seed, identical on every replica.
      noise_scale: s multiplying the noise; 0 gives noise-free gradient descent on E. A callable
        is evaluated at every step index t (int32 scalar, 0-based) and returns s_t, a scalar or
        a tensor broadcastable to x0 (a temperature schedule, e.g. Energy Matching's ε(t)).
      max_steps: static bound on T (the loop's `maximum_iterations`); defaults to `num_steps`
        when that is a Python int.
      implicit_iters: J solver iterations per step (wGCN/JKO); 1 with "fixed_point" = ordinary
        Langevin.
      solver: "fixed_point" or "split" (module docstring); "split" needs `ref_sigma` σ.
      clip: optional (low, high) pixel clipping after every step.
      mask: optional {0, 1} tensor broadcastable to x0; only pixels where mask == 1 move.
      trace: record the mean energy before the first and after every step.
    """
    if max_steps is None:
        if not isinstance(num_steps, int):
            raise ValueError("`max_steps` is required when `num_steps` is a tensor.")
        max_steps = num_steps
    if isinstance(num_steps, int) and not 0 <= num_steps <= max_steps:
        raise ValueError(f"num_steps={num_steps} must lie in [0, max_steps={max_steps}].")
    if int(implicit_iters) < 1:
        raise ValueError(f"implicit_iters (J) must be >= 1, got {implicit_iters}.")
    if solver not in SOLVERS or (solver == "split" and not (ref_sigma or 0) > 0):
        raise ValueError(f"solver must be one of {SOLVERS} ('split' with ref_sigma > 0), got {solver!r}.")
    x0 = tf.convert_to_tensor(x0)
    num_steps = tf.cast(num_steps, tf.int32)
    use_noise = callable(noise_scale) or not (isinstance(noise_scale, (int, float)) and noise_scale == 0)
    if callable(noise_scale):
        scale_at = noise_scale
    else:
        constant_scale = tf.cast(noise_scale, x0.dtype)
        scale_at = lambda t: constant_scale  # noqa: E731
    if mask is not None:
        mask = tf.cast(mask, x0.dtype)

    def body(t, x, trace_arr, gnorm):
        noise = None
        if use_noise:
            z = distribute.global_normal(tf.shape(x), distribute.split_seed(seed, t), x.dtype)
            noise = tf.cast(scale_at(t), x.dtype) * z
        x_next, e_start, grad = langevin_step(
            energy_fn,
            x,
            noise,
            step_size=step_size,
            implicit_iters=implicit_iters,
            solver=solver,
            ref_sigma=ref_sigma,
            clip=clip,
            mask=mask,
        )
        flat = tf.reshape(grad, [tf.shape(grad)[0], -1])
        gnorm = tf.reduce_mean(tf.norm(flat, axis=1))
        if trace:
            trace_arr = trace_arr.write(t, tf.reduce_mean(e_start))
        return t + 1, x_next, trace_arr, gnorm

    trace_arr = tf.TensorArray(x0.dtype, size=max_steps + 1, clear_after_read=False)
    t0 = tf.constant(0, tf.int32)
    _, x, trace_arr, gnorm = tf.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (t0, x0, trace_arr, tf.zeros([], x0.dtype)),
        maximum_iterations=max_steps,
    )
    energy_trace = None
    if trace:
        # Fill entries past num_steps with the last recorded value so the shape stays static.
        trace_arr = trace_arr.write(num_steps, tf.reduce_mean(energy_fn(x)))
        recorded = trace_arr.gather(tf.range(num_steps + 1))
        pad = tf.fill([max_steps - num_steps], recorded[-1])
        energy_trace = tf.concat([recorded, pad], axis=0)
    return LangevinResult(samples=x, energy_trace=energy_trace, grad_norm=gnorm)


def wgcn_flow(
    score_fn,
    x0: tf.Tensor,
    *,
    ref_sigma: float,
    num_steps,
    step_size: float,
    seed: tf.Tensor,
    noise_scale: float = 1.0,
    implicit_iters: int = 1,
    solver: str = "split",
    max_steps: int | None = None,
    trace: bool = True,
    clip: tuple[float, float] | None = None,
    mask: tf.Tensor | None = None,
) -> LangevinResult:
    """K implicit (JKO / proximal) Langevin steps under E(x) = −f(x) + ‖x‖²/(2σ²) (wGCN, MODELS.md §3).

    Args:
      score_fn: f, maps x [N, H, W, C] to scores [N].
      x0: initial particles [N, H, W, C] (internal scale).
      ref_sigma: σ of the Gaussian reference.
      num_steps: K >= 0 (int, or int32 tensor with `max_steps`; K = 0 returns x0).
      step_size: δ > 0; τ = δ²/2 and the noise √(2τ)·s·z = δ·s·z.
      seed, noise_scale, max_steps, clip, mask, trace: as `langevin`.
      implicit_iters, solver: J and "split" | "fixed_point" (module docstring).

    Returns:
      LangevinResult(samples [N, H, W, C], energy_trace [max_steps + 1] or None, grad_norm).
    """
    inv_var = 1.0 / float(ref_sigma) ** 2

    def energy_fn(x):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        return -score_fn(x) + 0.5 * inv_var * tf.reduce_sum(tf.square(flat), axis=1)

    return langevin(
        energy_fn,
        x0,
        num_steps=num_steps,
        step_size=step_size,
        seed=seed,
        noise_scale=noise_scale,
        max_steps=max_steps,
        implicit_iters=implicit_iters,
        solver=solver,
        ref_sigma=ref_sigma,
        clip=clip,
        mask=mask,
        trace=trace,
    )
