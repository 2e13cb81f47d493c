r"""Chain diagnostics: effective sample size, split-R̂, autocorrelation, acceptance.

The estimators are TFP's (`tfp.mcmc.effective_sample_size`, `tfp.mcmc.potential_scale_reduction`,
`tfp.stats.auto_correlation`); this module only arranges traces and reports. A trace is a
[T, K] array: T draws of a scalar summary (the energy, by default) of each of K chains.

`diagnose(energy_fn, x0, sampler, ...)` runs K chains with any `Sampler` in `num_segments`
segments (each one `Sampler.run`, so one `tf.while_loop`), keeping a snapshot of the states
after every segment for a trajectory strip, and returns a report dict plus the arrays to plot.
`diagnose_model(model, ...)` does the same through a model's public API only: `model.energy`
on [0, 1] images and `model.sample` for the starting states; the chains run in [0, 1] space.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ebm_zoo import distribute
from ebm_zoo.sampling.mcmc import Sampler, get_sampler
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_count, check_seed, seed_pair


def _trace(trace) -> tf.Tensor:
    t = tf.convert_to_tensor(trace, tf.float64)
    if t.shape.rank != 2:
        raise EbmZooError(f"A trace must be [T draws, K chains], got shape {tuple(t.shape)}.")
    return t


def effective_sample_size(trace, cross_chain: bool = False) -> np.ndarray | float:
    """ESS of a [T, K] trace: per chain ([K], each chain alone) or pooled over chains (scalar,
    Vehtari et al. 2021 cross-chain estimate, needs K >= 2). Autocorrelations are summed up to
    the first non-positive pair (Geyer's initial positive sequence), as TFP does."""
    t = _trace(trace)
    if cross_chain:
        if t.shape[1] < 2:
            raise EbmZooError(f"Cross-chain ESS needs >= 2 chains, got {t.shape[1]}.")
        return float(tfp.mcmc.effective_sample_size(t, filter_beyond_positive_pairs=True, cross_chain_dims=1))
    return tfp.mcmc.effective_sample_size(t, filter_beyond_positive_pairs=True).numpy()


def split_rhat(trace) -> float:
    """Split-R̂ (Gelman et al. 2013) of a [T, K] trace: each chain is cut in two halves, so a
    single drifting chain also shows R̂ > 1. Values near 1 mean the chains agree."""
    t = _trace(trace)
    if t.shape[0] < 4:
        raise EbmZooError(f"split-R-hat needs >= 4 draws per chain, got {t.shape[0]}.")
    return float(tfp.mcmc.potential_scale_reduction(t, independent_chain_ndims=1, split_chains=True))


def autocorrelation(trace, max_lag: int | None = None) -> np.ndarray:
    """Autocorrelation of each chain's trace at lags 0..max_lag, averaged over chains: [max_lag + 1]."""
    t = _trace(trace)
    max_lag = int(t.shape[0]) - 1 if max_lag is None else min(int(max_lag), int(t.shape[0]) - 1)
    acf = tfp.stats.auto_correlation(t, axis=0, max_lags=max_lag)
    return tf.reduce_mean(acf, axis=1).numpy()


def summarize_trace(trace, name: str = "energy") -> dict:
    """Mean, sd, per-chain and pooled ESS, split-R̂ and lag-1/5/10 autocorrelation of a trace."""
    t = np.asarray(trace, np.float64)
    num_draws, num_chains = t.shape
    ess = effective_sample_size(t) if num_draws >= 2 else np.full([num_chains], np.nan)
    acf = autocorrelation(t, 10) if num_draws >= 2 else np.array([1.0])
    out = {
        "name": name,
        "draws": int(num_draws),
        "chains": int(num_chains),
        "mean": float(t.mean()),
        "sd_between_chains": float(t.mean(0).std()),
        "sd_within_chains": float(t.std(0).mean()),
        "ess_per_chain": [float(v) for v in ess],
        "ess_mean_per_chain": float(np.mean(ess)),
        "ess_pooled": effective_sample_size(t, cross_chain=True)
        if num_chains >= 2 and num_draws >= 4
        else None,
        "split_rhat": split_rhat(t) if num_chains >= 1 and num_draws >= 4 else None,
        "autocorrelation": {f"lag{k}": float(acf[k]) for k in (1, 5, 10) if k < len(acf)},
    }
    return out


class ChainRun(NamedTuple):
    """Arrays from `diagnose` for plots: energy_trace [T + 1, K], accept_trace [T],
    grad_norm_trace [T], snapshots [S + 1, K, ...] (states before and after each segment),
    snapshot_steps [S + 1], autocorrelation [L + 1] (after burn-in)."""

    energy_trace: np.ndarray
    accept_trace: np.ndarray
    grad_norm_trace: np.ndarray
    snapshots: np.ndarray
    snapshot_steps: np.ndarray
    autocorrelation: np.ndarray


def diagnose(
    energy_fn,
    x0: tf.Tensor,
    sampler: Sampler,
    *,
    num_steps: int,
    seed: tf.Tensor,
    burn_in: int = 0,
    num_segments: int = 8,
    max_lag: int = 50,
) -> tuple[dict, ChainRun]:
    """Runs every row of x0 as a chain for `num_steps` steps and reports its mixing.

    Args:
      energy_fn: x [K, ...] → [K] energies (traceable).
      x0: [K, ...] initial states.
      sampler: any `Sampler` (see `get_sampler`).
      num_steps: total steps T: an adapting sampler's `adapt_steps` first, the rest split into
        `num_segments` runs (a snapshot of the states after each).
      seed: [2] int32 stateless seed.
      burn_in: leading steps left out of ESS / R̂ / autocorrelation (the adaptation phase of an
        adapting sampler should lie inside it).
    Returns:
      (report dict: settings, cpu/wall seconds of the chains (tracing excluded), acceptance,
      energy summary, grad norm; ChainRun).
    """
    num_steps = check_count(num_steps, "num_steps")
    burn_in = check_count(burn_in, "burn_in", minimum=0, maximum=num_steps - 4)
    adapt = int(getattr(sampler, "adapt_steps", 0))
    # An adapting sampler adapts in a first run of `adapt` steps; the later runs continue each
    # chain from its adapted step size with adaptation off (exact MCMC).
    lengths = [adapt] if adapt else []
    rest = num_steps - adapt
    if rest < 1:
        raise EbmZooError(f"`num_steps`={num_steps} must exceed the sampler's adapt_steps={adapt}.")
    num_segments = check_count(num_segments, "num_segments", maximum=rest)
    lengths += [len(c) for c in np.array_split(np.arange(rest), num_segments)]
    fixed = sampler
    if adapt:
        settings = {k: v for k, v in sampler.get_config().items() if k != "name"}
        fixed = get_sampler(sampler.name, **{**settings, "adapt_steps": 0})
    x = tf.convert_to_tensor(x0, tf.float32)
    longest = max(lengths)

    def make(s):
        def seg(x, seed, k, n, delta):
            kw = {} if s.name == "langevin" else {"initial_step_size": delta}
            return s.run(
                energy_fn,
                x,
                num_steps=n,
                max_steps=longest,
                seed=distribute.split_seed(seed, k),
                trace=True,
                **kw,
            )

        return tf.function(seg)

    runs = {id(sampler): make(sampler), id(fixed): make(fixed)}
    energies, accepts, gnorms, snaps, rates, counts = [], [], [], [x.numpy()], [], []
    delta = tf.fill([x.shape[0]], float(sampler.step_size))
    for fn in {id(f): f for f in runs.values()}.values():  # trace outside the timing (0 steps)
        fn(x, seed, tf.constant(0), tf.constant(0), delta)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for k, n in enumerate(lengths):
        s = sampler if (adapt and k == 0) else fixed
        res = runs[id(s)](x, seed, tf.constant(k), tf.constant(n), delta)
        x, delta = res.samples, res.step_size
        energies.append(res.energy_trace.numpy()[: n + 1] if k == 0 else res.energy_trace.numpy()[1 : n + 1])
        accepts.append(res.accept_trace.numpy()[:n])
        gnorms.append(res.grad_norm_trace.numpy()[:n])
        rates.append(res.accept_rate.numpy())
        counts.append(n)
        snaps.append(x.numpy())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    energy = np.concatenate(energies, 0)
    kept = energy[1 + burn_in :]
    acf = autocorrelation(kept, max_lag) if kept.shape[0] >= 2 else np.array([1.0])
    rate = np.average(np.stack(rates), axis=0, weights=counts)
    report = {
        "sampler": sampler.get_config(),
        "num_chains": int(energy.shape[1]),
        "num_steps": num_steps,
        "burn_in": burn_in,
        "final_step_size_mean": float(np.mean(delta.numpy())),
        "wall_s": wall,
        "cpu_s": cpu,
        "acceptance": {"mean": float(rate.mean()), "per_chain": [float(v) for v in rate]},
        "energy_start_mean": float(energy[0].mean()),
        "energy_end_mean": float(energy[-1].mean()),
        "energy": summarize_trace(kept),
        "grad_norm_last": float(np.concatenate(gnorms)[-1]),
    }
    run = ChainRun(
        energy_trace=energy,
        accept_trace=np.concatenate(accepts),
        grad_norm_trace=np.concatenate(gnorms),
        snapshots=np.stack(snaps),
        snapshot_steps=np.concatenate([[0], np.cumsum(lengths)]),
        autocorrelation=acf,
    )
    return report, run


#: Default per-sampler settings of `diagnose_model` beyond the step size.
_DEFAULT_TARGET = {"mala": 0.57, "hmc": 0.65}


def diagnose_model(
    model,
    *,
    num_chains: int = 4,
    num_steps: int = 200,
    sampler: str = "mala",
    step_size: float | None = None,
    init: str = "sample",
    seed: int = 0,
    burn_in: int | None = None,
    num_segments: int = 8,
    temperature: float | str = 1.0,
    **sampler_settings,
) -> tuple[dict, ChainRun]:
    """K chains on a model's energy in [0, 1] image space, through its public API only.

    The target is exp(−E(x)) on the box [0, 1]^D (`model.energy`, the same E the model trains
    with; MALA/HMC reject proposals that leave the box, Langevin clips). Chains start from
    `model.sample(K, seed)` (init="sample": are the model's samples stationary?) or uniform
    noise (init="noise": over-dispersed starts, the usual setting for R̂).

    temperature: the target is exp(−E(x)/temperature); "model" takes the model's own Langevin
      temperature s² (s = its `noise_scale`: x' = x − (δ²/2)∇E + sδz is Langevin on exp(−E/s²)
      with step sδ), which is what its sampler draws from; short-run models use s ≪ 1.
    step_size: in [0, 1] units; default = the model's own `step_size` divided by the width of its
      internal pixel range (e.g. δ/255 for a [0, 255]-scale model), times s when
      temperature="model", or 0.01 when the model has none.
      MALA / HMC adapt it per chain during the burn-in (target acceptance 0.57 / 0.65, adapt_rate
      0.2) unless `target_accept=None` is passed.
    burn_in: default a quarter of num_steps.
    """
    num_chains = check_count(num_chains, "num_chains", minimum=2)
    num_steps = check_count(num_steps, "num_steps", minimum=8)
    seed = check_seed(seed) or 0
    check_choice(init, "init", ("sample", "noise"))
    check_choice(sampler, "sampler", ("langevin", "mala", "hmc"))
    if burn_in is None:
        burn_in = num_steps // 4
    noise = float(getattr(model, "noise_scale", 1.0) or 1.0)
    if temperature == "model":
        temperature, step_scale = noise**2, noise
    else:
        step_scale = 1.0
    if isinstance(temperature, str) or not float(temperature) > 0:
        raise EbmZooError(f"`temperature` must be a number > 0 or 'model', got {temperature!r}.")
    temperature = float(temperature)
    if step_size is None:
        lo, hi = getattr(model, "internal_range", (0.0, 1.0))
        own = getattr(model, "step_size", None)
        step_size = float(own) * step_scale / (hi - lo) if own else 0.01
    settings = dict(sampler_settings)
    if sampler == "langevin":
        settings.setdefault("clip", (0.0, 1.0))
    else:
        settings.setdefault("bounds", (0.0, 1.0))
        settings.setdefault("target_accept", _DEFAULT_TARGET[sampler])
        if settings["target_accept"] is not None:
            settings.setdefault("adapt_steps", burn_in)
            # Fast enough to move δ by 100x within ~50 steps of burn-in when acceptance is ~0.
            settings.setdefault("adapt_rate", 0.2)
    chain_sampler = get_sampler(sampler, step_size=step_size, **settings)
    if init == "sample":
        x0 = tf.convert_to_tensor(model.sample(num_chains, seed=seed), tf.float32)
    else:
        shape = [num_chains, *model.image_shape]
        x0 = tf.random.stateless_uniform(shape, seed_pair(seed))

    report, run = diagnose(
        lambda x: model.energy(x) / temperature,
        x0,
        chain_sampler,
        num_steps=num_steps,
        seed=tf.random.experimental.stateless_fold_in(seed_pair(seed), 101),
        burn_in=burn_in,
        num_segments=num_segments,
    )
    report = {
        "init": init,
        "seed": seed,
        "temperature": temperature,
        "image_shape": list(model.image_shape),
        **report,
    }
    return report, run
