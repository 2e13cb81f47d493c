r"""Swappable MCMC samplers on an energy E(x): unadjusted Langevin, MALA and HMC.

One contract for all three (`Sampler.run`): an energy function x [N, ...] → [N] and initial
states in, a `SamplerResult` (final states + per-step diagnostics) out. Each run is one
`tf.while_loop` with a static maximum number of iterations; `num_steps` may be a tensor.
Every image (row) is its own chain: the Metropolis test accepts or rejects each row separately.

    sampler = get_sampler("mala", step_size=0.05)
    res = sampler.run(energy_fn, x0, num_steps=100, seed=tf.constant([0, 1]))
    res.samples, res.accept_rate, res.energy_trace

Samplers (δ = `step_size`, τ = δ²/2, z ~ N(0, I)):

  langevin  x' = x − τ∇E(x) + s·δ·z, always accepted (unadjusted; `ebm_zoo.sampling.langevin`'s
            step — the stationary law is biased by O(δ²)).
  mala      the same proposal with s = 1, accepted with probability
            min(1, exp(E(x) − E(x') + log q(x | x') − log q(x' | x))),
            q(x' | x) = N(x'; x − τ∇E(x), δ²I) (Roberts & Tweedie 1996). Exact for every δ.
  hmc       momentum p ~ N(0, I), L leapfrog steps of size ε = δ on H(x, p) = E(x) + ‖p‖²/2,
            accepted with probability min(1, exp(H(x, p) − H(x', p'))) (Duane et al. 1987;
            Neal 2011). L gradient evaluations per step (the gradient at the current state is
            carried between steps); L = 1 is MALA with δ = ε.

Settings shared by MALA and HMC: `bounds=(low, high)` restricts the target to a box, handled by
`boundary=`
  "reflect" (default)  proposals are folded back into the box (mirror at each wall). MALA uses
            the density of the folded Gaussian in its acceptance ratio (mirror images within
            ±4 box widths, exact to float precision for δ up to about the box width); HMC mirrors the position and flips that momentum component at a wall, which
            keeps the leapfrog map reversible and volume-preserving (Neal 2011, §5.1). Chains
            can therefore start on the walls, where images clipped to [0, 1] put many pixels.
  "reject"  a proposal with any coordinate outside is rejected (stuck chains when many
            coordinates sit on a wall: each one steps out with probability ≈ 1/2).
The unadjusted sampler's `clip` has neither meaning. `temperature` T makes the target
exp(−E/T) (energy traces stay in units of E). `target_accept` + `adapt_steps` adapt a per-chain
step size during the first `adapt_steps` steps: log δᵢ ← log δᵢ + κ·(αᵢ − target), with αᵢ the
chain's acceptance probability and κ = `adapt_rate` (a Robbins-Monro rule; steps after
`adapt_steps` use the adapted δᵢ fixed, so they are exact MCMC).

Randomness is stateless and replica-aware like `langevin`: step t uses `split_seed(seed, t)`,
and the proposal noise and the uniforms of the accept test are drawn for the *global* batch
(`distribute.global_normal` / `global_uniform`), each replica taking its rows. A step on R
replicas therefore equals the same step on one replica with the whole batch.

Why our own loop and not `tfp.mcmc`: measured on the bench net (docs/sampling.md,
ebm_zoo/bench/mcmc.py) TFP's kernels are not faster, and they draw their noise for the local
batch only, which breaks the one-replica = R-replicas rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.sampling.langevin import energy_and_grad, langevin, langevin_step
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_count, check_positive

EnergyFn = Callable[[tf.Tensor], tf.Tensor]

SAMPLERS = ("langevin", "mala", "hmc")


class SamplerResult(NamedTuple):
    """Output of `Sampler.run` (N chains = rows of x0, T = num_steps, M = max_steps).

    samples: [N, ...] final states.
    accept_rate: [N] fraction of the T proposals each chain accepted (1 for langevin; NaN when
      T = 0).
    step_size: [N] per-chain step size at the end (differs from the setting only when adapting).
    energy_trace: [M + 1, N] E of every chain before step 1 and after every step (rows past T
      repeat the last value), or None when `trace=False`.
    accept_trace: [M] fraction of chains accepted at each step (padded like energy_trace), or None.
    grad_norm_trace: [M] mean over chains of ‖∇E‖₂ at the start of each step, or None.
    grad_norm: scalar, mean ‖∇E‖₂ at the start of the last step (a divergence diagnostic).
    energy: [N] E of every chain's final state (MALA/HMC: carried, no extra evaluation;
      langevin: with `trace=True` only, else None).
    """

    samples: tf.Tensor
    accept_rate: tf.Tensor
    step_size: tf.Tensor
    energy_trace: tf.Tensor | None
    accept_trace: tf.Tensor | None
    grad_norm_trace: tf.Tensor | None
    grad_norm: tf.Tensor
    energy: tf.Tensor | None = None


def _event_axes(x: tf.Tensor) -> list[int]:
    return list(range(1, x.shape.rank))


def _per_chain_sq_norm(x: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.square(x), axis=_event_axes(x))


def _per_chain(v: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Reshapes a [N] tensor to broadcast against x [N, ...]."""
    return tf.reshape(v, tf.concat([tf.shape(v), tf.ones([x.shape.rank - 1], tf.int32)], 0))


def _resolve_steps(num_steps, max_steps):
    if max_steps is None:
        if not isinstance(num_steps, int):
            raise EbmZooError("`max_steps` is required when `num_steps` is a tensor; pass a static bound.")
        max_steps = num_steps
    max_steps = check_count(max_steps, "max_steps", minimum=0)
    if isinstance(num_steps, int) and not 0 <= num_steps <= max_steps:
        raise EbmZooError(f"`num_steps`={num_steps} must lie in [0, max_steps={max_steps}].")
    return tf.cast(num_steps, tf.int32), max_steps


def _padded(arr: tf.TensorArray, count: tf.Tensor, size: int) -> tf.Tensor:
    """The first `count` entries of `arr`, then the last one repeated up to `size` rows."""
    recorded = arr.gather(tf.range(count))
    last = tf.cond(count > 0, lambda: recorded[-1], lambda: tf.fill(tf.shape(recorded)[1:], float("nan")))
    pad = tf.repeat(last[None], size - count, axis=0)
    return tf.concat([recorded, pad], axis=0)


def _fold(y: tf.Tensor, bounds) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors y into [low, high] (period 2·width); returns (folded y, odd number of mirrors)."""
    lo, hi = bounds
    r = tf.math.floormod((y - lo) / (hi - lo), 2.0)
    odd = r > 1.0
    return lo + (hi - lo) * tf.where(odd, 2.0 - r, r), odd


def _log_folded_normal(x: tf.Tensor, mean: tf.Tensor, sd: tf.Tensor, bounds) -> tf.Tensor:
    """Per-chain log density of fold(N(mean, sd²·I)) at x inside the box, up to a constant that
    depends on sd only (it cancels in a Metropolis ratio with the same sd both ways).

    In box units (u = (x − low)/width, m, s likewise) one coordinate's density is
    Σ_k φ_s(u − m + 2k) + φ_s(−u − m + 2k), periodic in m with period 2. For s <= 0.7 the sum runs
    over k = −2..2 after reducing m modulo 2 (the dropped images lie >= 4 widths away, < exp(−16)
    of the sum); for s > 0.7 its Fourier series 1 + 2 Σ_{n>=1} exp(−π²n²s²/2)·cos(πnu)·cos(πnm)
    (n <= 4; the rest < exp(−60)). tests/test_mcmc.py checks both against an 801-term sum.
    """
    lo, hi = bounds
    w = hi - lo
    u = (x - lo) / w
    m = tf.math.floormod((mean - lo) / w, 2.0)
    s = sd / w
    terms = []
    for k in range(-2, 3):
        terms += [u + 2.0 * k - m, -u + 2.0 * k - m]
    z = tf.stack(terms, axis=0) / s
    direct = tf.reduce_logsumexp(-0.5 * tf.square(z), axis=0) - tf.math.log(s * math.sqrt(2 * math.pi))
    series = tf.ones_like(u)
    for n in range(1, 5):
        q = tf.exp(-0.5 * (math.pi * n * s) ** 2)
        series += 2.0 * q * tf.cos(math.pi * n * u) * tf.cos(math.pi * n * m)
    # Both forms are the normalised density on the unit box (the series integrates to 1).
    fourier = tf.math.log(tf.maximum(series, 1e-30))
    per_coord = tf.where(s <= 0.7, direct, fourier)
    return tf.reduce_sum(per_coord, axis=_event_axes(x))


def _scaled(energy_fn: EnergyFn, factor: float) -> EnergyFn:
    return lambda x: factor * energy_fn(x)


class Sampler:
    """Base class: settings in the constructor, chains in `run`. Subclasses set `name`."""

    name = ""

    def __init__(self, step_size: float = 0.1):
        check_positive(step_size, "step_size")
        self.step_size = float(step_size)

    def get_config(self) -> dict:
        """JSON-serialisable settings; `get_sampler(**cfg)` rebuilds the sampler."""
        return {"name": self.name, "step_size": self.step_size}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"get_sampler({self.name!r}, {args})"

    def run(
        self,
        energy_fn: EnergyFn,
        x0: tf.Tensor,
        *,
        num_steps,
        seed: tf.Tensor,
        max_steps: int | None = None,
        mask: tf.Tensor | None = None,
        trace: bool = True,
    ) -> SamplerResult:
        """Runs `num_steps` steps of every chain (row) of `x0`.

        Args:
          energy_fn: x [N, ...] → per-chain energies [N] (differentiable; lower = more probable).
          x0: [N, ...] initial states, in the scale `energy_fn` expects.
          num_steps: int or scalar int tensor T >= 0 (<= max_steps).
          seed: [2] int32 stateless seed, identical on every replica.
          max_steps: static bound on T; defaults to `num_steps` when that is an int.
          mask: optional {0, 1} tensor broadcastable to x0; only coordinates with mask 1 move.
          trace: record per-step diagnostics (energy_trace, accept_trace, grad_norm_trace).
        """
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------
class LangevinSampler(Sampler):
    """Unadjusted Langevin: `ebm_zoo.sampling.langevin` as a `Sampler`.

    With `trace=False` `run` calls `langevin(...)` itself, so a family that switches to this
    object gets bit-identical chains; with `trace=True` the same `langevin_step` runs in a loop
    that records per-chain energies.

    Args:
      step_size: δ.
      noise_scale: s (0 = gradient descent on E).
      clip: optional (low, high) clipping after every step.
      implicit_iters: J fixed-point iterations (wGCN/JKO proximal step); 1 = explicit.
    """

    name = "langevin"

    def __init__(
        self,
        step_size: float = 0.1,
        noise_scale: float = 1.0,
        clip: tuple[float, float] | None = None,
        implicit_iters: int = 1,
    ):
        super().__init__(step_size)
        check_positive(noise_scale, "noise_scale", allow_zero=True)
        self.noise_scale = float(noise_scale)
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))
        self.implicit_iters = check_count(implicit_iters, "implicit_iters")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "noise_scale": self.noise_scale,
            "clip": None if self.clip is None else list(self.clip),
            "implicit_iters": self.implicit_iters,
        }

    def run(self, energy_fn, x0, *, num_steps, seed, max_steps=None, mask=None, trace=True):
        num_steps_t, max_steps = _resolve_steps(num_steps, max_steps)
        x0 = tf.convert_to_tensor(x0)
        n = tf.shape(x0)[0]
        ones = tf.ones([n], x0.dtype)
        rate = tf.where(num_steps_t > 0, ones, ones * float("nan"))
        step = ones * self.step_size
        if not trace:
            res = langevin(
                energy_fn,
                x0,
                num_steps=num_steps_t,
                max_steps=max_steps,
                step_size=self.step_size,
                seed=seed,
                noise_scale=self.noise_scale,
                implicit_iters=self.implicit_iters,
                clip=self.clip,
                mask=mask,
            )
            return SamplerResult(res.samples, rate, step, None, None, None, res.grad_norm)
        if mask is not None:
            mask = tf.cast(mask, x0.dtype)

        def body(t, x, e_arr, g_arr, gnorm):
            z = distribute.global_normal(tf.shape(x), distribute.split_seed(seed, t), x.dtype)
            x_next, e_start, grad = langevin_step(
                energy_fn,
                x,
                self.noise_scale * z if self.noise_scale else None,
                step_size=self.step_size,
                implicit_iters=self.implicit_iters,
                clip=self.clip,
                mask=mask,
            )
            gnorm = tf.reduce_mean(tf.sqrt(_per_chain_sq_norm(grad)))
            return t + 1, x_next, e_arr.write(t, e_start), g_arr.write(t, gnorm), gnorm

        e_arr = tf.TensorArray(x0.dtype, size=max_steps + 1, element_shape=x0.shape[:1])
        g_arr = tf.TensorArray(x0.dtype, size=max(max_steps, 1), element_shape=[])
        _, x, e_arr, g_arr, gnorm = tf.while_loop(
            lambda t, *_: t < num_steps_t,
            body,
            (tf.constant(0), x0, e_arr, g_arr, tf.zeros([], x0.dtype)),
            maximum_iterations=max_steps,
        )
        e_final = energy_fn(x)
        e_arr = e_arr.write(num_steps_t, e_final)
        accept = tf.fill([max_steps], tf.where(num_steps_t > 0, 1.0, float("nan")))
        return SamplerResult(
            samples=x,
            accept_rate=rate,
            step_size=step,
            energy_trace=_padded(e_arr, num_steps_t + 1, max_steps + 1),
            accept_trace=tf.cast(accept, x0.dtype),
            grad_norm_trace=_padded(g_arr, num_steps_t, max_steps),
            grad_norm=gnorm,
            energy=e_final,
        )


# ------------------------------------------------------------------------------------------------
class _MetropolisSampler(Sampler):
    """Shared loop of MALA and HMC: carried (x, E(x), ∇E(x)), per-chain accept, adaptation."""

    def __init__(
        self,
        step_size: float = 0.1,
        bounds: tuple[float, float] | None = None,
        boundary: str = "reflect",
        target_accept: float | None = None,
        adapt_steps: int = 0,
        adapt_rate: float = 0.05,
        temperature: float = 1.0,
    ):
        super().__init__(step_size)
        if bounds is not None:
            bounds = (float(bounds[0]), float(bounds[1]))
            if not bounds[0] < bounds[1]:
                raise EbmZooError(f"`bounds` must be (low, high) with low < high, got {bounds}.")
        self.bounds = bounds
        check_choice(boundary, "boundary", ("reflect", "reject"))
        self.boundary = boundary
        if target_accept is not None and not 0.0 < float(target_accept) < 1.0:
            raise EbmZooError(f"`target_accept` must lie in (0, 1), got {target_accept!r}.")
        self.target_accept = None if target_accept is None else float(target_accept)
        self.adapt_steps = check_count(adapt_steps, "adapt_steps", minimum=0)
        if self.adapt_steps and self.target_accept is None:
            raise EbmZooError(
                f"`adapt_steps`={self.adapt_steps} needs `target_accept` (e.g. 0.57 for MALA, 0.65 for HMC)."
            )
        check_positive(adapt_rate, "adapt_rate")
        self.adapt_rate = float(adapt_rate)
        check_positive(temperature, "temperature")
        self.temperature = float(temperature)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "bounds": None if self.bounds is None else list(self.bounds),
            "boundary": self.boundary,
            "target_accept": self.target_accept,
            "adapt_steps": self.adapt_steps,
            "adapt_rate": self.adapt_rate,
            "temperature": self.temperature,
        }

    def propose(self, energy_fn, x, e, g, delta, seed, mask):
        """(x', E(x'), ∇E(x'), log acceptance ratio [N]) of one proposal; subclasses implement."""
        raise NotImplementedError

    def step(self, energy_fn, x, e, g, delta, seed, mask=None):
        """One Metropolis-adjusted transition of every chain.

        Args: x [N, ...], e = E(x) [N], g = ∇E(x), delta [N] per-chain step sizes, seed [2].
        Returns (x, e, g, accepted [N] bool, acceptance probability [N]) after the step.
        """
        x_new, e_new, g_new, log_ratio = self.propose(
            energy_fn, x, e, g, delta, distribute.split_seed(seed, 0), mask
        )
        ok = tf.math.is_finite(log_ratio)
        if self.bounds is not None and self.boundary == "reject":
            lo, hi = self.bounds
            inside = (x_new >= lo) & (x_new <= hi)
            ok &= tf.reduce_all(inside, axis=_event_axes(x_new))
        log_ratio = tf.where(ok, log_ratio, tf.constant(-float("inf"), log_ratio.dtype))
        prob = tf.exp(tf.minimum(log_ratio, 0.0))
        u = distribute.global_uniform(tf.shape(e), distribute.split_seed(seed, 1), dtype=e.dtype)
        accepted = tf.math.log(u) < log_ratio
        keep = _per_chain(accepted, x)
        return (
            tf.where(keep, x_new, x),
            tf.where(accepted, e_new, e),
            tf.where(keep, g_new, g),
            accepted,
            prob,
        )

    def run(
        self, energy_fn, x0, *, num_steps, seed, max_steps=None, mask=None, trace=True, initial_step_size=None
    ):
        """`Sampler.run`; `initial_step_size` ([N] or scalar) starts every chain from its own δ
        (e.g. the `step_size` of an earlier adapted run) instead of the `step_size` setting."""
        num_steps_t, max_steps = _resolve_steps(num_steps, max_steps)
        x0 = tf.convert_to_tensor(x0)
        dtype = x0.dtype
        if mask is not None:
            mask = tf.cast(mask, dtype)
        if self.temperature != 1.0:  # target exp(−E/T); traces are reported in units of E
            energy_fn = _scaled(energy_fn, 1.0 / self.temperature)
        e0, g0 = energy_and_grad(energy_fn, x0)
        if mask is not None:
            g0 = g0 * mask
        start = self.step_size if initial_step_size is None else initial_step_size
        delta0 = tf.cast(start, dtype) * tf.ones_like(e0)
        size = max(max_steps, 1)
        e_arr = tf.TensorArray(dtype, size=max_steps + 1, element_shape=x0.shape[:1])
        a_arr = tf.TensorArray(dtype, size=size, element_shape=[])
        g_arr = tf.TensorArray(dtype, size=size, element_shape=[])
        if trace:
            e_arr = e_arr.write(0, e0)

        def body(t, x, e, g, delta, n_acc, e_arr, a_arr, g_arr, gnorm):
            gnorm = tf.reduce_mean(tf.sqrt(_per_chain_sq_norm(g)))
            x, e, g, accepted, prob = self.step(
                energy_fn, x, e, g, delta, distribute.split_seed(seed, t), mask
            )
            acc = tf.cast(accepted, dtype)
            if self.adapt_steps:
                gain = tf.where(t < self.adapt_steps, self.adapt_rate, 0.0)
                delta = delta * tf.exp(tf.cast(gain, dtype) * (prob - self.target_accept))
            if trace:
                e_arr = e_arr.write(t + 1, e)
                a_arr = a_arr.write(t, tf.reduce_mean(acc))
                g_arr = g_arr.write(t, gnorm)
            return t + 1, x, e, g, delta, n_acc + acc, e_arr, a_arr, g_arr, gnorm

        loop = tf.while_loop(
            lambda t, *_: t < num_steps_t,
            body,
            (tf.constant(0), x0, e0, g0, delta0, tf.zeros_like(e0), e_arr, a_arr, g_arr, tf.zeros([], dtype)),
            maximum_iterations=max_steps,
        )
        _, x, e_final, _, delta, n_acc, e_arr, a_arr, g_arr, gnorm = loop
        rate = n_acc / tf.cast(num_steps_t, dtype)
        traces = (None, None, None)
        if trace:
            traces = (
                _padded(e_arr, num_steps_t + 1, max_steps + 1) * self.temperature,
                _padded(a_arr, num_steps_t, max_steps),
                _padded(g_arr, num_steps_t, max_steps),
            )
        return SamplerResult(x, rate, delta, *traces, grad_norm=gnorm, energy=e_final * self.temperature)


class MALASampler(_MetropolisSampler):
    """Metropolis-adjusted Langevin (see the module docstring). Args: step_size δ, bounds,
    target_accept, adapt_steps, adapt_rate."""

    name = "mala"

    def propose(self, energy_fn, x, e, g, delta, seed, mask):
        d = _per_chain(delta, x)
        tau = 0.5 * tf.square(d)
        z = distribute.global_normal(tf.shape(x), seed, x.dtype)
        if mask is not None:
            z = z * mask
        x_new = x - tau * g + d * z
        reflect = self.bounds is not None and self.boundary == "reflect"
        if reflect:
            x_new, _ = _fold(x_new, self.bounds)
        e_new, g_new = energy_and_grad(energy_fn, x_new)
        if mask is not None:
            g_new = g_new * mask
        if reflect:
            log_q_ratio = _log_folded_normal(x, x_new - tau * g_new, d, self.bounds) - _log_folded_normal(
                x_new, x - tau * g, d, self.bounds
            )
        else:
            # log q(x | x') − log q(x' | x) with q(b | a) = N(b; a − τ∇E(a), δ²I); the forward
            # residual is δz exactly.
            back = x - x_new + tau * g_new
            log_q_ratio = (_per_chain_sq_norm(d * z) - _per_chain_sq_norm(back)) / (2.0 * tf.square(delta))
        return x_new, e_new, g_new, e - e_new + log_q_ratio


class HMCSampler(_MetropolisSampler):
    """Hamiltonian Monte Carlo with `num_leapfrog_steps` L leapfrog steps of size ε = step_size.
    Other args as MALA."""

    name = "hmc"

    def __init__(self, step_size: float = 0.1, num_leapfrog_steps: int = 5, **kwargs):
        super().__init__(step_size, **kwargs)
        self.num_leapfrog_steps = check_count(num_leapfrog_steps, "num_leapfrog_steps")

    def get_config(self) -> dict:
        return {**super().get_config(), "num_leapfrog_steps": self.num_leapfrog_steps}

    def propose(self, energy_fn, x, e, g, delta, seed, mask):
        eps = _per_chain(delta, x)
        p0 = distribute.global_normal(tf.shape(x), seed, x.dtype)
        if mask is not None:
            p0 = p0 * mask

        def leapfrog(i, y, p, gy, ey):
            p = p - 0.5 * eps * gy
            y = y + eps * p
            if self.bounds is not None and self.boundary == "reflect":
                y, odd = _fold(y, self.bounds)
                p = tf.where(odd, -p, p)
            ey, gy = energy_and_grad(energy_fn, y)
            if mask is not None:
                gy = gy * mask
            p = p - 0.5 * eps * gy
            return i + 1, y, p, gy, ey

        _, y, p, gy, ey = tf.while_loop(
            lambda i, *_: i < self.num_leapfrog_steps,
            leapfrog,
            (tf.constant(0), x, p0, g, e),
            maximum_iterations=self.num_leapfrog_steps,
        )
        log_ratio = e + 0.5 * _per_chain_sq_norm(p0) - ey - 0.5 * _per_chain_sq_norm(p)
        return y, ey, gy, log_ratio


_CLASSES = {"langevin": LangevinSampler, "mala": MALASampler, "hmc": HMCSampler}


def get_sampler(name: str | Sampler, **settings) -> Sampler:
    """A sampler by name ("langevin", "mala", "hmc") with its settings.

    A `Sampler` instance is returned unchanged (settings must then be empty). Unknown names or
    settings raise one EbmZooError listing the valid ones.
    """
    if isinstance(name, Sampler):
        if settings:
            raise EbmZooError(
                f"get_sampler got a {name.name!r} sampler object and settings {sorted(settings)}; pass one."
            )
        return name
    check_choice(name, "sampler", SAMPLERS)
    cls = _CLASSES[name]
    import inspect

    valid = [p for c in cls.__mro__ if c is not object for p in inspect.signature(c.__init__).parameters]
    valid = sorted({p for p in valid if p not in ("self", "kwargs")})
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise EbmZooError(
            f"Unknown setting(s) {unknown} for sampler {name!r}; valid settings: {', '.join(valid)}."
        )
    return cls(**settings)


def family_sampler(
    name: str | None,
    *,
    step_size: float,
    noise_scale: float = 1.0,
    clip: tuple[float, float] | None = None,
    implicit_iters: int = 1,
    **overrides,
) -> Sampler:
    """The sampler `name` for a family whose Langevin is x' = clip(x − (δ²/2)∇E + sδz).

    That Langevin approximates exp(−E/s²) with step sδ, so "langevin" keeps (δ, s, clip) —
    `run(..., trace=False)` then reproduces `langevin(...)` bit for bit — and "mala" / "hmc" get
    the same target exactly: step_size = sδ, temperature = s², bounds = clip. `overrides` (e.g.
    step_size, num_leapfrog_steps, target_accept) win over the derived settings. name None =
    "langevin". s = 0 (gradient descent) has no target to adjust towards: MALA/HMC refuse it.
    `implicit_iters` (wGCN's JKO step) is a Langevin discretisation; MALA/HMC sample the same
    exp(−E/s²) exactly and ignore it.
    """
    name = "langevin" if name is None else name
    check_choice(name, "sampler", SAMPLERS)
    if name == "langevin":
        base = {
            "step_size": step_size,
            "noise_scale": noise_scale,
            "clip": clip,
            "implicit_iters": implicit_iters,
        }
    else:
        if not noise_scale > 0:
            raise EbmZooError(
                f"sampler={name!r} needs noise_scale > 0 (got {noise_scale}); a noise-free "
                "Langevin is gradient descent with no distribution to sample: use sampler='langevin'."
            )
        base = {"step_size": noise_scale * step_size, "temperature": noise_scale**2, "bounds": clip}
    return get_sampler(name, **{**base, **overrides})


def sampler_from_config(config: dict) -> Sampler:
    """Inverse of `Sampler.get_config` (a dict with "name" and the settings)."""
    config = dict(config)
    if "name" not in config:
        raise EbmZooError(f"A sampler config needs a 'name' ({', '.join(SAMPLERS)}), got {config}.")
    return get_sampler(config.pop("name"), **config)


# ------------------------------------------------------------------------------------------------
# Families: one config shape for every MCMC family (docs/sampling.md, "Samplers in the families").

#: Samplers with a Metropolis test (per-chain acceptance rates to log).
METROPOLIS = ("mala", "hmc")

#: The keys of a family's `sampler_options` per sampler. The target (temperature s², box
#: bounds = the family's clip) is derived from the family's own settings and has no key here;
#: `step_size` is the MALA/HMC step (default sδ, the family's Langevin step).
FAMILY_SAMPLER_OPTIONS = {
    "langevin": (),
    "mala": ("step_size", "target_accept", "adapt_steps", "adapt_rate", "boundary"),
    "hmc": ("step_size", "num_leapfrog_steps", "target_accept", "adapt_steps", "adapt_rate", "boundary"),
}


def check_family_sampler(sampler, options=None, *, choices=SAMPLERS, where: str = "sampler") -> dict:
    """Validates a family's `sampler` and `sampler_options` (config or `sample()` override).

    Args:
      sampler: a name from `choices` ("langevin", "mala", "hmc"; multi-grid adds "official").
      options: None or a dict of that sampler's settings (FAMILY_SAMPLER_OPTIONS[sampler]);
        entries set to None mean "the default" and are dropped (configs list every key as None
        so that `--config.model.sampler_options.<key>=...` can set it).
      where: the caller, for the message.
    Returns the options as a plain dict (JSON-serialisable). Raises one EbmZooError naming the
    bad value and the fix.
    """
    if not isinstance(sampler, str):
        raise EbmZooError(
            f"{where}: `sampler` must be a string ({', '.join(choices)}), got {sampler!r} "
            f"({type(sampler).__name__})."
        )
    check_choice(sampler, "sampler", choices)
    if options is None:
        return {}
    if hasattr(options, "to_dict"):  # an ml_collections.ConfigDict from a config file
        options = options.to_dict()
    if not isinstance(options, dict):
        raise EbmZooError(
            f"{where}: `sampler_options` must be a dict such as {{'num_leapfrog_steps': 5}}, got "
            f"{options!r} ({type(options).__name__})."
        )
    options = {k: v for k, v in options.items() if v is not None}  # None = the default (configs)
    valid = FAMILY_SAMPLER_OPTIONS.get(sampler, ())
    unknown = sorted(set(options) - set(valid))
    if unknown:
        if not valid:
            raise EbmZooError(
                f"{where}: sampler={sampler!r} takes no `sampler_options` (its settings are the "
                f"model's own step_size / noise_scale), got {unknown}; remove them, or choose "
                f"sampler='mala' or 'hmc'."
            )
        raise EbmZooError(
            f"{where}: unknown sampler_options {unknown} for sampler={sampler!r}; valid: "
            f"{', '.join(valid)} (the target — temperature, bounds — follows the model's settings)."
        )
    if options:  # the values: the sampler's constructor checks each one
        get_sampler(sampler, **{"step_size": 1.0, **options})
    return options


class FamilyChain(NamedTuple):
    """A MALA/HMC chain run for a family, shaped like `langevin`'s LangevinResult (samples,
    energy_trace [max_steps + 1] batch mean or None, grad_norm) plus accept_rate [N] (per chain)
    and energy [N] (E of the final states)."""

    samples: tf.Tensor
    energy_trace: tf.Tensor | None
    grad_norm: tf.Tensor
    accept_rate: tf.Tensor
    energy: tf.Tensor


def make_family_sampler(
    sampler: str, options: dict, *, step_size: float, noise_scale: float, clip
) -> Sampler:
    """`family_sampler` for a family's Langevin (δ = step_size, s = noise_scale, clip) with its
    `sampler_options`; an option `step_size` replaces the derived MALA/HMC step sδ."""
    options = dict(options)
    own_step = options.pop("step_size", None)
    s = family_sampler(sampler, step_size=step_size, noise_scale=noise_scale, clip=clip, **options)
    if own_step is None:
        return s
    return sampler_from_config({**s.get_config(), "step_size": own_step})


def run_family_chain(
    sampler: str,
    options: dict,
    energy_fn: EnergyFn,
    x0: tf.Tensor,
    *,
    step_size: float,
    noise_scale: float,
    clip,
    num_steps,
    max_steps: int,
    seed: tf.Tensor,
    mask: tf.Tensor | None = None,
    trace: bool = False,
) -> FamilyChain:
    """`family_sampler(sampler, ...)` run on a family's energy: the same target exp(−E/s²) as the
    family's Langevin (step sδ, box = clip), adjusted by a Metropolis test per chain."""
    s = make_family_sampler(sampler, options, step_size=step_size, noise_scale=noise_scale, clip=clip)
    res = s.run(energy_fn, x0, num_steps=num_steps, max_steps=max_steps, seed=seed, mask=mask, trace=trace)
    energy_trace = None if res.energy_trace is None else tf.reduce_mean(res.energy_trace, axis=1)
    return FamilyChain(res.samples, energy_trace, res.grad_norm, res.accept_rate, res.energy)


def options_for(sampler: str, model_sampler: str, model_options: dict, override=None) -> dict:
    """The sampler_options of a call: the override if given, else the model's when the call
    uses the model's own sampler, else none (the sampler's defaults)."""
    if override is not None:
        if hasattr(override, "to_dict"):
            override = override.to_dict()
        if not isinstance(override, dict):
            return override  # check_family_sampler refuses it with the message
        return {k: v for k, v in override.items() if v is not None}
    return dict(model_options) if sampler == model_sampler else {}
