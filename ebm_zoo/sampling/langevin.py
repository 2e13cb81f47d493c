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

Step guard (`max_backtracks` = m >= 1; 0 = off, the default): per chain, the deterministic part
of the step (the same J solver iterations with the noise left out, x_det(δ)) is checked first.
A chain whose E(x_det(δ)) > E(x) backtracks: δ_c = δ/2, δ/4, ... (at most m halvings) until its
drift no longer raises its energy; a chain still rising at δ/2^m rejects the drift. Then the
noise is added with the chain's δ_c: the step is re-run with the per-chain δ_c (τ_c = δ_c²/2 and
noise δ_c·s·z, the same z), or for a rejected chain x' = x + δ/2^m·s·z. Chains whose drift does
not raise their energy take the unguarded step itself, computed by the same ops, so when no chain
fires the output is bit-identical to the unguarded flow (the re-run sits in a `tf.cond` and costs
nothing then). Cost when on: one more energy evaluation (and J − 1 gradients) per step for the
check, plus J + 1 passes per backtrack in the steps where some chain fires.

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


class GuardStats(NamedTuple):
    """What the step guard did, per chain, summed over the steps run (each [N] float32).

    fires: steps whose drift at the full δ would have raised the chain's energy.
    backtracks: halvings of δ (0..m per step).
    rejects: steps whose drift still raised the energy at δ/2^m and was dropped.
    """

    fires: tf.Tensor
    backtracks: tf.Tensor
    rejects: tf.Tensor


class LangevinResult(NamedTuple):
    """Output of `langevin`.

    samples: [N, H, W, C] final states.
    energy_trace: [max_steps + 1] mean energy of the batch before step 1 and after every step
      (entries past `num_steps` repeat the last value), or None when tracing is off.
    grad_norm: scalar, mean per-example L2 norm of ∇E at the last step (a divergence diagnostic).
    guard: GuardStats when the step guard is on (`max_backtracks` > 0), else None.
    """

    samples: tf.Tensor
    energy_trace: tf.Tensor | None
    grad_norm: tf.Tensor
    guard: GuardStats | None = None


def energy_and_grad(energy_fn: EnergyFn, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-example energies [N] and ∇ₓ of their sum, [N, ...]."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        e = energy_fn(x)
        total = tf.reduce_sum(e)
    return e, tape.gradient(total, x)


def _solve(
    energy_fn: EnergyFn,
    x: tf.Tensor,
    grad_x: tf.Tensor,
    noise: tf.Tensor | None,
    step_size,
    implicit_iters: int,
    solver: str,
    ref_sigma: float | None,
    clip: tuple[float, float] | None,
    mask: tf.Tensor | None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The J solver iterations of one step from x, given ∇E(x) (the first iteration's gradient).

    `step_size` is a scalar δ or per-chain δ_c broadcastable to x ([N, 1, 1, 1]).
    Returns (x_next, ∇E at the last iterate the solver evaluated).
    """
    delta = tf.cast(step_size, x.dtype)
    tau = 0.5 * tf.square(delta)
    kick = x if noise is None else x + delta * noise
    if solver == "split":
        inv_var = 1.0 / float(ref_sigma) ** 2
        shrink = 1.0 / (1.0 + tau * inv_var)  # the exact proximal map of the reference term
    y, grad = x, grad_x
    for j in range(int(implicit_iters)):  # J is a small static number (J = 1: explicit step)
        if j > 0:
            _, grad = energy_and_grad(energy_fn, y)
        if solver == "split":  # ∇U = ∇E − y/σ², the reference term in closed form
            y = shrink * (kick - tau * (grad - inv_var * y))
        else:
            y = kick - tau * grad
        if clip is not None:
            y = tf.clip_by_value(y, clip[0], clip[1])
        if mask is not None:
            y = mask * y + (1.0 - mask) * x
    return y, grad


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
    e_start, grad_x = energy_and_grad(energy_fn, x)
    y, grad = _solve(energy_fn, x, grad_x, noise, step_size, implicit_iters, solver, ref_sigma, clip, mask)
    return y, e_start, grad


def guarded_step(
    energy_fn: EnergyFn,
    x: tf.Tensor,
    noise: tf.Tensor | None,
    *,
    step_size: float | tf.Tensor,
    max_backtracks: int,
    implicit_iters: int = 1,
    solver: str = "fixed_point",
    ref_sigma: float | None = None,
    clip: tuple[float, float] | None = None,
    mask: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, GuardStats]:
    """`langevin_step` with the step guard (module docstring), m = `max_backtracks` >= 1.

    Per chain: if the drift x_det(δ) (the step without noise) raises E, δ is halved (at most m
    times) until it does not, else the drift is rejected; then the noise is added with the
    chain's δ_c. Chains that do not fire get exactly `langevin_step`'s output.

    Returns (x_next, E(x) [N], ∇E at the last iterate [N, ...], GuardStats of this step, each [N]).
    """
    m = int(max_backtracks)
    solve = lambda g, nz, d: _solve(  # noqa: E731
        energy_fn, x, g, nz, d, implicit_iters, solver, ref_sigma, clip, mask
    )
    e_start, grad_x = energy_and_grad(energy_fn, x)
    x_next, grad = solve(grad_x, noise, step_size)  # the unguarded step, same ops as langevin_step
    x_det, _ = solve(grad_x, None, step_size)
    fired = energy_fn(x_det) > e_start  # [N]
    n = tf.shape(x)[0]
    per_chain = tf.concat([[n], tf.ones([tf.rank(x) - 1], tf.int32)], 0)  # [N, 1, 1, 1]
    zeros = tf.zeros([n], x.dtype)

    def backtrack():
        delta0 = tf.fill([n], tf.cast(step_size, x.dtype))

        def cond(b, delta, rising, halvings):
            return tf.logical_and(b < m, tf.reduce_any(rising))

        def body(b, delta, rising, halvings):
            delta = tf.where(rising, 0.5 * delta, delta)
            halvings = halvings + tf.cast(rising, x.dtype)
            trial, _ = solve(grad_x, None, tf.reshape(delta, per_chain))
            rising = tf.logical_and(rising, energy_fn(trial) > e_start)
            return b + 1, delta, rising, halvings

        _, delta, rejected, halvings = tf.while_loop(
            cond, body, (tf.constant(0), delta0, fired, zeros), maximum_iterations=m
        )
        delta_c = tf.reshape(delta, per_chain)
        x_guard, grad_guard = solve(grad_x, noise, delta_c)
        # A rejected chain keeps x and takes only the noise of its smallest step δ/2^m.
        x_hold = x if noise is None else x + delta_c * noise
        if clip is not None:
            x_hold = tf.clip_by_value(x_hold, clip[0], clip[1])
        if mask is not None:
            x_hold = mask * x_hold + (1.0 - mask) * x
        x_guard = tf.where(tf.reshape(rejected, per_chain), x_hold, x_guard)
        pick = tf.reshape(fired, per_chain)
        return (
            tf.where(pick, x_guard, x_next),
            tf.where(pick, grad_guard, grad),
            halvings,
            tf.cast(rejected, x.dtype),
        )

    x_next, grad, halvings, rejects = tf.cond(
        tf.reduce_any(fired), backtrack, lambda: (x_next, grad, zeros, zeros)
    )
    return x_next, e_start, grad, GuardStats(tf.cast(fired, x.dtype), halvings, rejects)


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
    max_backtracks: int = 0,
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
      max_backtracks: m >= 1 turns the step guard on (module docstring: δ halved per chain up to
        m times while the step's drift would raise that chain's energy); 0 = off.
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
    if isinstance(max_backtracks, bool) or not isinstance(max_backtracks, int) or max_backtracks < 0:
        raise ValueError(f"max_backtracks must be an int >= 0 (0 = no step guard), got {max_backtracks!r}.")
    guard = max_backtracks > 0
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

    def body(t, x, trace_arr, gnorm, stats):
        noise = None
        if use_noise:
            z = distribute.global_normal(tf.shape(x), distribute.split_seed(seed, t), x.dtype)
            noise = tf.cast(scale_at(t), x.dtype) * z
        settings = dict(
            step_size=step_size,
            implicit_iters=implicit_iters,
            solver=solver,
            ref_sigma=ref_sigma,
            clip=clip,
            mask=mask,
        )
        if guard:
            x_next, e_start, grad, step_stats = guarded_step(
                energy_fn, x, noise, max_backtracks=max_backtracks, **settings
            )
            stats = tuple(a + b for a, b in zip(stats, step_stats))
        else:
            x_next, e_start, grad = langevin_step(energy_fn, x, noise, **settings)
        flat = tf.reshape(grad, [tf.shape(grad)[0], -1])
        gnorm = tf.reduce_mean(tf.norm(flat, axis=1))
        if trace:
            trace_arr = trace_arr.write(t, tf.reduce_mean(e_start))
        return t + 1, x_next, trace_arr, gnorm, stats

    trace_arr = tf.TensorArray(x0.dtype, size=max_steps + 1, clear_after_read=False)
    t0 = tf.constant(0, tf.int32)
    stats0 = tuple(tf.zeros([tf.shape(x0)[0]], x0.dtype) for _ in GuardStats._fields) if guard else ()
    _, x, trace_arr, gnorm, stats = tf.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (t0, x0, trace_arr, tf.zeros([], x0.dtype), stats0),
        maximum_iterations=max_steps,
    )
    energy_trace = None
    if trace:
        # Fill entries past num_steps with the last recorded value so the shape stays static.
        trace_arr = trace_arr.write(num_steps, tf.reduce_mean(energy_fn(x)))
        recorded = trace_arr.gather(tf.range(num_steps + 1))
        pad = tf.fill([max_steps - num_steps], recorded[-1])
        energy_trace = tf.concat([recorded, pad], axis=0)
    guard_stats = GuardStats(*stats) if guard else None
    return LangevinResult(samples=x, energy_trace=energy_trace, grad_norm=gnorm, guard=guard_stats)


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
    max_backtracks: int = 0,
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
      max_backtracks: the step guard, m >= 1 halvings of δ per chain (module docstring); 0 = off.

    Returns:
      LangevinResult(samples [N, H, W, C], energy_trace [max_steps + 1] or None, grad_norm,
      guard: GuardStats or None).
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
        max_backtracks=max_backtracks,
    )
