r"""Annealed importance sampling (Neal 2001) for the log partition function of an energy model.

Target p(x) = exp(−E(x)) / Z. From a normalised reference p₀ (Gaussian or uniform on a box) the
geometric path

    log f_β(x) = −β·E(x) + (1 − β)·log p₀(x),      0 = β₀ < β₁ < … < β_K = 1,

is followed by N independent chains: x₀ ~ p₀; at each k the log weight gains
(β_k − β_{k−1})·(−E(x) − log p₀(x)) and x moves by a MALA/HMC transition that leaves f_{β_k}
invariant. Then Z = E[w] exactly, and

    log Ẑ = logmeanexp(log w),      se(log Ẑ) ≈ sd(w) / (√N · mean(w))   (delta method).

The standard error is itself estimated from the weights: when the weights are very uneven (the
weights' ESS = (Σw)²/Σw² is small) both Ẑ and its se are unreliable (AIS is biased low in
log Z for few chains); report the weights' ESS with the estimate.

`bits_per_dim` turns log Ẑ into a test-set negative log-likelihood for 8-bit images.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.sampling.mcmc import Sampler, get_sampler
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_count, check_positive


def _sum_event(v: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(v, axis=list(range(1, v.shape.rank)))


class GaussianReference:
    """p₀ = N(mean, sigma² I) on states of shape `event_shape` (mean: scalar or broadcastable)."""

    def __init__(self, event_shape, mean=0.0, sigma: float = 1.0):
        check_positive(sigma, "sigma")
        self.event_shape = [int(v) for v in event_shape]
        self.mean = tf.constant(mean, tf.float32)
        self.sigma = float(sigma)
        self.bounds = None

    def sample(self, n: int, seed: tf.Tensor) -> tf.Tensor:
        z = distribute.global_normal([n, *self.event_shape], seed)
        return self.mean + self.sigma * z

    def log_prob(self, x: tf.Tensor) -> tf.Tensor:
        d = float(np.prod(self.event_shape))
        sq = _sum_event(tf.square((x - self.mean) / self.sigma))
        return -0.5 * sq - d * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))


class UniformReference:
    """p₀ = uniform on the box [low, high]^D; the transitions must stay in the box (`bounds`)."""

    def __init__(self, event_shape, low: float = 0.0, high: float = 1.0):
        if not low < high:
            raise EbmZooError(f"UniformReference needs low < high, got low={low}, high={high}.")
        self.event_shape = [int(v) for v in event_shape]
        self.bounds = (float(low), float(high))

    def sample(self, n: int, seed: tf.Tensor) -> tf.Tensor:
        return distribute.global_uniform([n, *self.event_shape], seed, *self.bounds)

    def log_prob(self, x: tf.Tensor) -> tf.Tensor:
        d = float(np.prod(self.event_shape))
        return tf.fill(tf.shape(x)[:1], -d * math.log(self.bounds[1] - self.bounds[0]))


class AISResult(NamedTuple):
    """log_z: log Ẑ; log_z_se: its standard error; log_weights [N]; weights_ess: (Σw)²/Σw²;
    accept_rate: mean acceptance over all transitions; betas [K + 1]."""

    log_z: float
    log_z_se: float
    log_weights: np.ndarray
    weights_ess: float
    accept_rate: float
    betas: np.ndarray


def schedule(num_temps: int, kind: str = "sigmoid", sharpness: float = 4.0) -> np.ndarray:
    """β₀ = 0 < … < β_K = 1: "linear", "geometric" (from 1e-4) or "sigmoid" (Grosse et al.
    2013: dense at both ends, where the log weights change fastest)."""
    num_temps = check_count(num_temps, "num_temps")
    check_choice(kind, "schedule", ("linear", "geometric", "sigmoid"))
    if kind == "linear":
        return np.linspace(0.0, 1.0, num_temps + 1)
    if kind == "geometric":
        return np.concatenate([[0.0], np.geomspace(1e-4, 1.0, num_temps)])
    s = 1.0 / (1.0 + np.exp(-np.linspace(-sharpness, sharpness, num_temps + 1)))
    return (s - s[0]) / (s[-1] - s[0])


def log_mean_exp_se(log_w) -> tuple[float, float, float]:
    """(logmeanexp(log w), delta-method se of it, weights' ESS) of N log weights."""
    log_w = np.asarray(log_w, np.float64)
    n = log_w.size
    m = log_w.max()
    w = np.exp(log_w - m)
    log_z = m + math.log(w.mean())
    se = float(w.std(ddof=1) / (math.sqrt(n) * w.mean())) if n > 1 else float("inf")
    return float(log_z), se, float(w.sum() ** 2 / np.square(w).sum())


def ais_log_z(
    energy_fn,
    reference: GaussianReference | UniformReference,
    *,
    num_chains: int = 64,
    num_temps: int = 200,
    sampler: str | Sampler = "hmc",
    steps_per_temp: int = 1,
    seed: tf.Tensor | None = None,
    betas: np.ndarray | None = None,
    schedule_kind: str = "sigmoid",
    **sampler_settings,
) -> AISResult:
    """log Z of exp(−E) by AIS from `reference` (see the module docstring).

    Args:
      energy_fn: x [N, ...] → [N] (traceable, differentiable).
      reference: normalised p₀ with `sample(n, seed)` and `log_prob(x)`.
      num_chains: N independent AIS runs (the se shrinks as 1/√N).
      num_temps: K intermediate distributions (ignored when `betas` is given).
      sampler: "mala" / "hmc" (+ `sampler_settings`, e.g. step_size) or a Sampler object; must
        leave each f_β invariant (so not "langevin"). A uniform reference sets `bounds`.
      steps_per_temp: transitions per temperature.
      seed: [2] int32 stateless seed (default [0, 0]).
    """
    num_chains = check_count(num_chains, "num_chains", minimum=2)
    steps_per_temp = check_count(steps_per_temp, "steps_per_temp")
    betas = schedule(num_temps, schedule_kind) if betas is None else np.asarray(betas, np.float64)
    if betas[0] != 0.0 or betas[-1] != 1.0 or np.any(np.diff(betas) <= 0):
        raise EbmZooError("`betas` must increase strictly from 0 to 1.")
    if isinstance(sampler, str):
        check_choice(sampler, "sampler", ("mala", "hmc"))
        if reference.bounds is not None:
            sampler_settings.setdefault("bounds", reference.bounds)
        sampler = get_sampler(sampler, **sampler_settings)
    elif sampler_settings:
        raise EbmZooError(
            f"Pass settings {sorted(sampler_settings)} to get_sampler, not with a Sampler object."
        )
    if sampler.name == "langevin":
        raise EbmZooError("AIS needs transitions that leave each f_β invariant: use 'mala' or 'hmc'.")
    if reference.bounds is not None and getattr(sampler, "bounds", None) != reference.bounds:
        raise EbmZooError(
            f"A uniform reference on {reference.bounds} needs a sampler with bounds={reference.bounds}."
        )
    seed = tf.constant([0, 0], tf.int32) if seed is None else seed
    betas_t = tf.constant(betas, tf.float32)
    num_k = len(betas) - 1

    @tf.function
    def run(seed):
        x = reference.sample(num_chains, distribute.split_seed(seed, 0))

        def body(k, x, log_w, acc):
            b_prev, b = betas_t[k - 1], betas_t[k]
            log_w += (b - b_prev) * (-energy_fn(x) - reference.log_prob(x))

            def tempered(y):
                return b * energy_fn(y) - (1.0 - b) * reference.log_prob(y)

            res = sampler.run(
                tempered, x, num_steps=steps_per_temp, seed=distribute.split_seed(seed, k), trace=False
            )
            return k + 1, res.samples, log_w, acc + tf.reduce_mean(res.accept_rate)

        _, x, log_w, acc = tf.while_loop(
            lambda k, *_: k <= num_k,
            body,
            (tf.constant(1), x, tf.zeros([num_chains]), tf.zeros([])),
            maximum_iterations=num_k,
        )
        return log_w, acc / num_k

    log_w, acc = run(seed)
    log_w = log_w.numpy()
    if not np.all(np.isfinite(log_w)):
        raise EbmZooError(
            f"{int(np.sum(~np.isfinite(log_w)))} AIS log weights are not finite; lower the step_size or "
            "check that the energy is finite on the reference's support."
        )
    log_z, se, ess = log_mean_exp_se(log_w)
    return AISResult(log_z, se, log_w, ess, float(acc), betas)


def bits_per_dim(energies, log_z: float, num_dims: int, bin_width: float = 1.0 / 256) -> np.ndarray:
    """Negative log-likelihood in bits per dimension of 8-bit images under p = exp(−E)/Z.

    The density p lives in the space where E and log Z were computed (e.g. [0, 1] images); the
    probability of a pixel bin of width `bin_width` (1/256 in [0, 1] space) is ≈ p(x)·bin_width^D:

        bpd = (E(x) + log Z − D·log(bin_width)) / (D·ln 2).

    energies: [N] E of the test images; returns [N] bits/dim (average them for the test set).
    """
    num_dims = check_count(num_dims, "num_dims")
    check_positive(bin_width, "bin_width")
    e = np.asarray(energies, np.float64)
    return (e + log_z - num_dims * math.log(bin_width)) / (num_dims * math.log(2.0))


def model_temperature(model, temperature: float | str = 1.0) -> float:
    """The temperature T of the target exp(−E/T): a number > 0, or "model" = the model's own
    Langevin temperature s² (s = its `noise_scale`; 1 when it has none or s = 0)."""
    if temperature == "model":
        noise = float(getattr(model, "noise_scale", 1.0) or 1.0)
        return noise**2
    if isinstance(temperature, str) or not float(temperature) > 0 or not math.isfinite(float(temperature)):
        raise EbmZooError(f"`temperature` must be a number > 0 or 'model', got {temperature!r}.")
    return float(temperature)


def model_reference(model, temperature: float = 1.0) -> GaussianReference | UniformReference:
    """The tractable reference of a model in [0, 1] image space, for the target exp(−E/T).

    Descriptor-family models with a Gaussian reference term ‖x‖²/(2σ²) in their internal scale
    (`ref_sigma` set and the energy not the bare −f of short-run models) get that Gaussian at
    temperature T, N(−low/width, T·(σ/width)²) per pixel in [0, 1] space (its support is all of
    R^D, not the pixel box); every other model the uniform density on [0, 1]^D (their exp(−E/T)
    is then taken on the box, as the samplers of tools/diagnose.py do).
    """
    check_positive(temperature, "temperature")
    shape = list(model.image_shape)
    lo, hi = getattr(model, "internal_range", (0.0, 1.0))
    sigma = getattr(model, "ref_sigma", None)
    if sigma and getattr(model, "family", "") in ("descriptor", "wgcn", "ggcn"):
        return GaussianReference(
            shape, mean=-lo / (hi - lo), sigma=float(sigma) * math.sqrt(temperature) / (hi - lo)
        )
    return UniformReference(shape, 0.0, 1.0)


def model_bits_per_dim(
    model,
    test_images,
    *,
    num_chains: int = 32,
    num_temps: int = 200,
    sampler: str = "hmc",
    step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
    temperature: float | str = 1.0,
    reference: GaussianReference | UniformReference | None = None,
    **sampler_settings,
) -> dict:
    """Test-set bits/dim of a model from AIS, through its public API (`model.energy` on [0, 1]).

    log Z of exp(−E/T) in [0, 1] space (T = `temperature`, see `model_temperature`) from
    `reference` (default `model_reference(model, T)`; pass `UniformReference` to take the density
    on the pixel box instead of a descriptor's unbounded Gaussian one) by `ais_log_z`, then
    `bits_per_dim` of `test_images` [N, H, W, C] in [0, 1] with bins of 1/256. Returns a dict
    with log_z, its standard error, the weights' ESS, acceptance, the mean E/T of the test
    images (`energy_mean`), mean bits/dim = bits_per_dim(energy_mean, log_z, D) and the
    bits/dim uncertainty from log Z alone (se / (D ln 2)). AIS underestimates log Z on average
    (Jensen), so an unconverged run gives too low a bits/dim. step_size defaults to half the
    reference's per-pixel sd (Gaussian) or 0.05 (uniform), in [0, 1] units.
    """
    from ebm_zoo.utils.checks import check_seed, seed_pair

    seed = check_seed(seed) or 0
    temperature = model_temperature(model, temperature)
    reference = model_reference(model, temperature) if reference is None else reference
    if step_size is None:
        step_size = 0.5 * reference.sigma if isinstance(reference, GaussianReference) else 0.05
    res = ais_log_z(
        lambda x: model.energy(x) / temperature,
        reference,
        num_chains=num_chains,
        num_temps=num_temps,
        sampler=sampler,
        step_size=step_size,
        seed=seed_pair(seed),
        **sampler_settings,
    )
    x = np.asarray(test_images, np.float32)
    energies = model_energies(model, x, batch_size) / temperature
    d = int(np.prod(x.shape[1:]))
    bpd = bits_per_dim(energies, res.log_z, d)
    return {
        "reference": type(reference).__name__,
        "temperature": temperature,
        "log_z": res.log_z,
        "log_z_se": res.log_z_se,
        "weights_ess": res.weights_ess,
        "log_weights_sd": float(np.std(res.log_weights)),
        "num_chains": num_chains,
        "num_temps": len(res.betas) - 1,
        "accept_rate": res.accept_rate,
        "num_test_images": len(x),
        "num_dims": d,
        "energy_mean": float(np.mean(energies)),
        "bits_per_dim": float(bpd.mean()),
        "bits_per_dim_se_from_log_z": res.log_z_se / (d * math.log(2.0)),
    }


def model_energies(model, images, batch_size: int = 256) -> np.ndarray:
    """E(x) [N] (float64) of images [N, H, W, C] in [0, 1], `batch_size` at a time."""
    x = np.asarray(images, np.float32)
    batch_size = check_count(batch_size, "batch_size")
    return np.concatenate(
        [np.asarray(model.energy(x[i : i + batch_size]), np.float64) for i in range(0, len(x), batch_size)]
    )
