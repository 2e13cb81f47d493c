r"""In-graph ODE solvers for dx/dt = v(t, x), compiled as `tf.while_loop`s.

Used by VAPO (MODELS.md §4) to move Gaussian prior samples along ∇ₓΦ, but generic: `fn` is any
callable (t: scalar float32 tensor, x: tensor) -> dx/dt with the shape of x.

Solvers (each returns `ODEResult(state, nfe)`, nfe = number of evaluations of `fn`):
  euler    fixed step h = (t1 − t0)/num_steps; x ← x + h·v(t, x)                 (nfe = num_steps)
  rk4      classical 4th-order Runge–Kutta, fixed step                        (nfe = 4·num_steps)
  dopri5   adaptive Dormand–Prince 5(4) with FSAL, error-per-step control as in scipy's RK45:
           err = RMS over *all* elements of (x5 − x4)/(atol + rtol·max(|x|, |x_new|)), accept
           when err ≤ 1, h ← h·clip(0.9·err^(−1/5), 0.2, 10); the initial step follows Hairer,
           Nørsett & Wanner (II.4) like scipy. One step size for the whole batch, as when the
           official code flattens the batch into one vector for `scipy.integrate.solve_ivp`.
  tfp_dopri5  `tfp.math.ode.DormandPrince` (for comparison in the bench suite).

Every loop has a static maximum number of iterations (`max_steps`); an adaptive solve that
needs more steps stops at `max_steps` and reports `success = False`. For served models the
fixed-step `num_steps` (with a static `max_steps`) and dopri5's rtol/atol may be tensors,
validated in-graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive

VelocityFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

SOLVERS = ("dopri5", "euler", "rk4", "tfp_dopri5")


class ODEResult(NamedTuple):
    """state: x(t1), same shape as x0. nfe: int32 scalar, evaluations of the velocity.
    success: bool scalar, False when an adaptive solve hit `max_steps` before t1."""

    state: tf.Tensor
    nfe: tf.Tensor
    success: tf.Tensor


def _fixed_step(
    step_fn, nfe_per_step: int, x0, t0: float, t1: float, num_steps, max_steps: int | None = None
) -> ODEResult:
    """Equal steps from t0 to t1. `num_steps` is a Python int, or an int32 tensor (served
    models) together with a static `max_steps` bound (asserted in-graph: 1 <= num_steps <= max)."""
    x0 = tf.convert_to_tensor(x0)
    if isinstance(num_steps, (tf.Tensor, tf.Variable)):
        if max_steps is None:
            raise EbmZooError("A tensor `num_steps` needs a static `max_steps` bound.")
        checks = [
            tf.debugging.assert_positive(num_steps, message="num_steps must be >= 1"),
            tf.debugging.assert_less_equal(
                num_steps,
                tf.constant(int(max_steps), num_steps.dtype),
                message=f"num_steps must be <= {max_steps}",
            ),
        ]
        with tf.control_dependencies(checks):
            n = tf.cast(num_steps, tf.int32)
        limit = int(max_steps)
    else:
        if int(num_steps) < 1:
            raise EbmZooError(f"`num_steps` of a fixed-step solver must be >= 1, got {num_steps!r}.")
        n = limit = int(num_steps)
    h = (tf.cast(t1, x0.dtype) - tf.cast(t0, x0.dtype)) / tf.cast(n, x0.dtype)

    def body(i, x):
        t = tf.cast(t0, x.dtype) + tf.cast(i, x.dtype) * h
        return i + 1, step_fn(t, x, h)

    _, x = tf.while_loop(lambda i, x: i < n, body, (tf.constant(0), x0), maximum_iterations=limit)
    return ODEResult(x, nfe_per_step * tf.cast(n, tf.int32), tf.constant(True))


def euler(fn: VelocityFn, x0, t0: float, t1: float, num_steps=100, max_steps: int | None = None) -> ODEResult:
    """Explicit Euler with `num_steps` equal steps from t0 to t1 (first-order accurate)."""
    return _fixed_step(lambda t, x, h: x + h * fn(t, x), 1, x0, t0, t1, num_steps, max_steps)


def rk4(fn: VelocityFn, x0, t0: float, t1: float, num_steps=25, max_steps: int | None = None) -> ODEResult:
    """Classical Runge–Kutta (fourth order) with `num_steps` equal steps."""

    def step(t, x, h):
        k1 = fn(t, x)
        k2 = fn(t + h / 2, x + (h / 2) * k1)
        k3 = fn(t + h / 2, x + (h / 2) * k2)
        k4 = fn(t + h, x + h * k3)
        return x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)

    return _fixed_step(step, 4, x0, t0, t1, num_steps, max_steps)


# Dormand–Prince 5(4) tableau.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)  # also row 7 of A (FSAL)
#: The tableau as a 7×7 matrix: row s (1..6) = stage s's coefficients on k_0 … k_6, row 6 = b5.
_A_ROWS = tuple(tuple(row) + (0.0,) * (7 - len(row)) for row in _A + (_B5,))
# E = b5 − b4 over the 7 stages (the 7th stage is f at the new point).
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


def _rms(x: tf.Tensor) -> tf.Tensor:
    return tf.sqrt(tf.reduce_mean(tf.square(x)))


def check_tolerances(rtol, atol) -> None:
    """EbmZooError unless rtol > 0 and atol > 0 (Python numbers; see `_tolerance` for tensors)."""
    check_positive(float(rtol), "rtol")
    check_positive(float(atol), "atol")


def _tolerance(value, name: str, dtype) -> tf.Tensor:
    """A tolerance as a tensor: Python numbers are checked now (EbmZooError), tensors (served
    models) by an in-graph assertion that fails the request with the same message."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = tf.cast(value, dtype)
        check = tf.debugging.assert_positive(
            value, message=f"`{name}` must be > 0 (e.g. 1e-3, the official default)"
        )
        with tf.control_dependencies([check]):
            return tf.identity(value)
    check_positive(float(value), name)
    return tf.constant(float(value), dtype)


def dopri5(
    fn: VelocityFn,
    x0,
    t0: float,
    t1: float,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    max_steps: int = 1000,
    first_step: float | None = None,
) -> ODEResult:
    """Adaptive Dormand–Prince 5(4) from t0 to t1 (> t0); see the module docstring.

    rtol/atol: Python floats, or float tensors (a served model's inputs, checked in-graph)."""
    if not float(t1) > float(t0):
        raise EbmZooError(f"dopri5 integrates forward in time: need t1 > t0, got t0={t0}, t1={t1}.")
    if int(max_steps) < 1:
        raise EbmZooError(f"`max_steps` must be >= 1, got {max_steps!r}.")
    x0 = tf.convert_to_tensor(x0)
    dt = x0.dtype
    rtol, atol = _tolerance(rtol, "rtol", dt), _tolerance(atol, "atol", dt)
    t0_, t1_ = tf.constant(float(t0), dt), tf.constant(float(t1), dt)
    f0 = fn(t0_, x0)
    nfe0 = 1
    if first_step is None:  # Hairer et al. / scipy `select_initial_step`, order 5.
        scale = atol + tf.abs(x0) * rtol
        d0, d1 = _rms(x0 / scale), _rms(f0 / scale)
        h0 = tf.where((d0 < 1e-5) | (d1 < 1e-5), tf.constant(1e-6, dt), 0.01 * d0 / d1)
        h0 = tf.minimum(h0, t1_ - t0_)
        f1 = fn(t0_ + h0, x0 + h0 * f0)
        d2 = _rms((f1 - f0) / scale) / h0
        h1 = tf.where(
            tf.maximum(d1, d2) <= 1e-15,
            tf.maximum(tf.constant(1e-6, dt), h0 * 1e-3),
            (0.01 / tf.maximum(d1, d2)) ** (1 / 5),
        )
        h = tf.minimum(tf.minimum(100 * h0, h1), t1_ - t0_)
        nfe0 += 1
    else:
        h = tf.constant(float(first_step), dt)

    # The six new stages of a step run as an inner loop with ONE call site of `fn`, so the graph
    # holds the velocity network (and its gradient, for VAPO) once for the step instead of six
    # times: the first call of a served or Python `sample` traces and optimises 3x less graph.
    a_rows = tf.constant(_A_ROWS, dt)  # [7, 7]: row s = stage s's coefficients on k_0..k_6
    c_nodes = tf.constant(_C + (1.0,), dt)  # [7]
    e_row = tf.constant(_E, dt)  # [7]
    rest_shape = tf.shape(x0)

    def combine(coeffs, ks):  # Σ_j coeffs[j]·k_j over the stacked stages ks [7, ...]
        flat = tf.reshape(ks, [7, -1])
        return tf.reshape(tf.linalg.matvec(flat, coeffs, transpose_a=True), rest_shape)

    def body(i, t, x, f, h, nfe):
        h = tf.minimum(h, t1_ - t)
        ks0 = tf.concat([f[None], tf.zeros(tf.concat([[6], rest_shape], 0), dt)], 0)

        def stage(s, ks):
            xs = x + h * combine(a_rows[s], ks)
            k = fn(t + c_nodes[s] * h, xs)
            return s + 1, tf.tensor_scatter_nd_update(ks, [[s]], k[None])

        _, ks = tf.while_loop(lambda s, ks: s < 7, stage, (tf.constant(1), ks0), maximum_iterations=6)
        x_new = x + h * combine(a_rows[6], ks)  # the 5th-order solution (FSAL: k_6 = fn(t+h, x_new))
        f_new = ks[6]
        err_vec = h * combine(e_row, ks)
        scale = atol + tf.maximum(tf.abs(x), tf.abs(x_new)) * rtol
        err = _rms(err_vec / scale)
        accept = err <= 1.0
        factor = tf.where(err == 0.0, tf.constant(10.0, dt), 0.9 * err ** (-0.2))
        factor = tf.clip_by_value(factor, 0.2, 10.0)
        factor = tf.where(accept, factor, tf.minimum(factor, 1.0))
        t_next = tf.where(accept, t + h, t)
        x_next = tf.where(accept, x_new, x)
        f_next = tf.where(accept, f_new, f)
        return i + 1, t_next, x_next, f_next, h * factor, nfe + 6

    def cond(i, t, x, f, h, nfe):
        return t < t1_ - 1e-9 * tf.maximum(1.0, tf.abs(t1_))

    i, t, x, _, _, nfe = tf.while_loop(
        cond,
        body,
        (tf.constant(0), t0_, x0, f0, h, tf.constant(nfe0, tf.int32)),
        maximum_iterations=int(max_steps),
    )
    return ODEResult(x, nfe, t >= t1_ - 1e-9 * tf.maximum(1.0, tf.abs(t1_)))


def tfp_dopri5(fn: VelocityFn, x0, t0: float, t1: float, rtol: float = 1e-3, atol: float = 1e-3) -> ODEResult:
    """`tfp.math.ode.DormandPrince` from t0 to t1 (its own error norm and step control)."""
    check_tolerances(rtol, atol)
    import tensorflow_probability as tfp  # heavy import, only when asked for

    solver = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol)
    res = solver.solve(lambda t, x: fn(t, x), float(t0), x0, solution_times=[float(t1)])
    nfe = tf.cast(res.diagnostics.num_ode_fn_evaluations, tf.int32)
    return ODEResult(res.states[-1], nfe, tf.equal(res.diagnostics.status, 0))


def solve(
    fn: VelocityFn,
    x0,
    t0: float,
    t1: float,
    solver: str = "dopri5",
    *,
    num_steps: int = 100,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    max_steps: int = 1000,
) -> ODEResult:
    """Dispatches to a solver by name ("dopri5", "euler", "rk4", "tfp_dopri5").

    `num_steps` is used by the fixed-step solvers, `rtol`/`atol`/`max_steps` by the adaptive ones.
    """
    check_choice(solver, "solver", SOLVERS)
    if solver == "euler":
        return euler(fn, x0, t0, t1, num_steps)
    if solver == "rk4":
        return rk4(fn, x0, t0, t1, num_steps)
    if solver == "tfp_dopri5":
        return tfp_dopri5(fn, x0, t0, t1, rtol, atol)
    return dopri5(fn, x0, t0, t1, rtol, atol, max_steps)
