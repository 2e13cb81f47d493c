"""ODE solvers on fields with known solutions (ebm_zoo.sampling.ode)."""

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.sampling import ode
from ebm_zoo.utils.checks import EbmZooError

# dx/dt = A·x + sin(3t), x(0) = x0, per coordinate with a different rate a_i.
RATES = np.linspace(-2.0, 1.5, 12).astype(np.float32)
X0 = np.linspace(-1.0, 1.0, 12).astype(np.float32)


def _field(t, x):
    return tf.constant(RATES) * x + tf.sin(3.0 * t)


def _exact(t0: float, t1: float) -> np.ndarray:
    """Closed form of x' = a x + sin(3t): x(t) = C e^{at} − (a sin 3t + 3 cos 3t)/(a² + 9)."""
    a = RATES.astype(np.float64)

    def particular(t):
        return -(a * np.sin(3 * t) + 3 * np.cos(3 * t)) / (a**2 + 9)

    c = (X0 - particular(t0)) * np.exp(-a * t0)
    return c * np.exp(a * t1) + particular(t1)


def _solve(solver, **kw):
    t0, t1 = kw.pop("t0", 0.0), kw.pop("t1", 1.0)
    res = tf.function(lambda: ode.solve(_field, tf.constant(X0), t0, t1, solver, **kw))()
    return res.state.numpy(), int(res.nfe), bool(res.success)


def test_dopri5_error_within_tolerance_and_tightens():
    exact = _exact(0.0, 1.0)
    errs = []
    for tol in (1e-3, 1e-5):
        x, nfe, ok = _solve("dopri5", rtol=tol, atol=tol)
        assert ok
        scale = tol + tol * np.abs(exact)
        # local error control: the global error stays within a small multiple of the tolerance
        assert np.max(np.abs(x - exact) / scale) < 10.0
        errs.append((np.max(np.abs(x - exact)), nfe))
    assert errs[1][0] < errs[0][0] / 10  # tighter tolerance, smaller error
    assert errs[1][1] > errs[0][1]  # ... at the cost of more evaluations


def test_dopri5_matches_scipy_rk45_nfe():
    from scipy.integrate import solve_ivp

    ref = solve_ivp(
        lambda t, x: RATES * x + np.sin(3 * t), (0.0, 1.0), X0, method="RK45", rtol=1e-3, atol=1e-3
    )
    x, nfe, _ = _solve("dopri5", rtol=1e-3, atol=1e-3)
    assert abs(nfe - ref.nfev) <= 2  # same controller and initial step rule as scipy's RK45
    np.testing.assert_allclose(x, ref.y[:, -1], atol=5e-4)


def test_euler_converges_at_first_order():
    exact = _exact(0.0, 1.0)
    e1 = np.max(np.abs(_solve("euler", num_steps=50)[0] - exact))
    e2 = np.max(np.abs(_solve("euler", num_steps=100)[0] - exact))
    assert 1.8 < e1 / e2 < 2.2  # halving h halves the error


def test_rk4_converges_at_fourth_order_and_counts_nfe():
    exact = _exact(0.0, 1.0)
    x1, nfe, _ = _solve("rk4", num_steps=5)
    x2, _, _ = _solve("rk4", num_steps=10)
    ratio = np.max(np.abs(x1 - exact)) / np.max(np.abs(x2 - exact))
    assert 12 < ratio < 20  # ~2^4
    assert nfe == 20


def test_backward_integration_inverts_forward():
    fwd, _, _ = _solve("rk4", num_steps=40)
    back = ode.rk4(_field, tf.constant(fwd), 1.0, 0.0, 40).state.numpy()
    np.testing.assert_allclose(back, X0, atol=1e-4)


def test_tfp_dopri5_agrees():
    x, nfe, ok = _solve("tfp_dopri5", rtol=1e-5, atol=1e-5)
    assert ok and nfe > 0
    np.testing.assert_allclose(x, _exact(0.0, 1.0), atol=1e-3)


def test_max_steps_reports_failure():
    x, nfe, ok = _solve("dopri5", rtol=1e-8, atol=1e-8, max_steps=3)
    assert not ok and nfe <= 2 + 3 * 6


@pytest.mark.parametrize(
    "kw",
    [
        dict(solver="dopri5", rtol=0.0),
        dict(solver="dopri5", atol=-1e-3),
        dict(solver="rk45"),
        dict(solver="euler", num_steps=0),
    ],
)
def test_bad_arguments_raise(kw):
    solver = kw.pop("solver")
    with pytest.raises(EbmZooError):
        ode.solve(_field, tf.constant(X0), 0.0, 1.0, solver, **kw)


def test_dopri5_graph_holds_the_velocity_three_times_not_eight():
    """The six stages of a step share one call site of `fn` (an inner loop), so a traced solve
    holds the velocity network three times (f(x0), the initial-step probe, the stage loop)
    instead of eight: what makes the first `sample` of a VAPO preset compile 2x faster."""
    calls = []

    def counting(t, x):
        calls.append(1)
        return _field(t, x)

    res = tf.function(lambda: ode.dopri5(counting, tf.constant(X0), 0.0, 1.0, rtol=1e-6, atol=1e-6))()
    assert len(calls) == 3
    np.testing.assert_allclose(res.state.numpy(), _exact(0.0, 1.0), rtol=1e-4, atol=1e-5)
    assert int(res.nfe) > 30  # the stage loop ran many times while traced once
