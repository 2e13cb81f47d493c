r"""Energy Matching's pure functions (Balcerak et al., arXiv:2504.10612; docs/energy_matching.md).

A time-independent scalar potential V(x) moves samples by the gradient flow with temperature ε(t)

    dx = −∇V(x) dt + sqrt(2 ε(t)) dW,

ε(t) = 0 far from the data (t < time_cutoff: optimal-transport flow), rising to ε_max near the
data (t ≥ 1: Langevin dynamics of the Boltzmann density exp(−V/ε_max)). Images are in [−1, 1].

Everything here is a function of tensors and callables (no model state), each tested in
tests/test_energy_matching.py:

  ot_pairing            exact minibatch OT coupling (a permutation) for the squared distance
  flow_weight           the official flow-loss weight w(t) (1, linear decay past the cutoff, 0)
  temperature           the official ε(t)
  flow_matching_loss    Algorithm 1: mean_i w(t_i)·mean_pixels(−∇V(x_t) − (x1 − x0))²
  cd_statistic          Algorithm 2's CD term: max(λ·(mean V⁺ − trimmed mean V⁻), −clamp)
  langevin_negatives    the CD negatives: `ebm_zoo.sampling.langevin` with the ε(t) schedule
  heun_flow             the Stratonovich Heun SDE sampler with ε(t), a `tf.while_loop`
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.sampling.langevin import energy_and_grad, langevin
from ebm_zoo.sampling.sde import heun_sde

PotentialFn = Callable[[tf.Tensor], tf.Tensor]  # x [N, H, W, C] -> V(x) [N]


# ------------------------------------------------------------------------------------------------
# Minibatch optimal transport.
def _assignment(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(np.asarray(cost, np.float64))
    perm = np.empty(len(rows), np.int32)
    perm[rows] = cols
    return perm


def squared_distances(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """C[i, j] = ‖a_i − b_j‖² [N, M] for a [N, ...], b [M, ...] (flattened per example)."""
    a = tf.reshape(a, [tf.shape(a)[0], -1])
    b = tf.reshape(b, [tf.shape(b)[0], -1])
    aa = tf.reduce_sum(tf.square(a), 1)[:, None]
    bb = tf.reduce_sum(tf.square(b), 1)[None, :]
    return tf.maximum(aa + bb - 2.0 * tf.matmul(a, b, transpose_b=True), 0.0)


def ot_pairing(x1: tf.Tensor, x0: tf.Tensor) -> tf.Tensor:
    """The exact OT coupling of two equal-size batches for the squared Euclidean cost.

    Returns perm [N] int32, a permutation: data x1[i] is paired with noise x0[perm[i]], and
    Σ_i ‖x1[i] − x0[perm[i]]‖² is minimal over all permutations. (With uniform weights and equal
    sizes the OT plan of `pot.emd`, used by the official code through torchcfm, is such a
    permutation / N.) Solved by scipy's `linear_sum_assignment` (Jonker–Volgenant, O(N³): a few
    ms for N = 512) through `tf.numpy_function`, so it runs on the host inside a `tf.function`;
    an in-graph exact solver (auction / Hungarian in TF ops) was not worth its slowness.
    """
    cost = squared_distances(x1, x0)
    perm = tf.numpy_function(_assignment, [cost], tf.int32, stateful=False)
    return tf.ensure_shape(perm, [x1.shape[0]])


# ------------------------------------------------------------------------------------------------
# Schedules (official: utils_cifar_imagenet.py `flow_weight`, `plot_epsilon`).
def flow_weight(t: tf.Tensor, time_cutoff: float) -> tf.Tensor:
    """w(t) = 1 for t < τ*, 1 − (t − τ*)/(1 − τ*) for τ* ≤ t < 1, 0 for t ≥ 1 (τ* = time_cutoff)."""
    t = tf.convert_to_tensor(t)
    one = tf.ones_like(t)
    if time_cutoff >= 1.0:
        return tf.where(t >= 1.0, tf.zeros_like(t), one)
    ramp = 1.0 - (t - time_cutoff) / (1.0 - time_cutoff)
    return tf.where(t < time_cutoff, one, tf.where(t < 1.0, ramp, tf.zeros_like(t)))


def temperature(t, epsilon_max: float, time_cutoff: float) -> tf.Tensor:
    """ε(t) = 0 for t < τ*, ε_max·(t − τ*)/(1 − τ*) for τ* ≤ t < 1, ε_max for t ≥ 1.

    Any float dtype; evaluate in float64 when t is a step count times dt (as the official
    Python floats are), so that e.g. 100·0.01 is exactly 1.0 at the switch.
    """
    t = tf.convert_to_tensor(t)
    zero, top = tf.zeros_like(t), tf.fill(tf.shape(t), tf.constant(float(epsilon_max), t.dtype))
    if time_cutoff >= 1.0:  # the official cutoff 1.0: a step at t = 1 (the ramp is empty)
        return tf.where(t < 1.0, zero, top)
    ramp = epsilon_max * (t - time_cutoff) / (1.0 - time_cutoff)
    return tf.where(t < time_cutoff, zero, tf.where(t < 1.0, ramp, top))


def step_time(k, dt: float) -> tf.Tensor:
    """t_k = k·dt in float64 (k an int tensor), the official `step * dt`."""
    return tf.cast(k, tf.float64) * tf.constant(float(dt), tf.float64)


# ------------------------------------------------------------------------------------------------
# Losses.
def flow_matching_loss(
    potential_fn: PotentialFn, x0: tf.Tensor, x1: tf.Tensor, t: tf.Tensor, time_cutoff: float = 1.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Algorithm 1 (warm-up) on *already paired* noise x0 and data x1, [N, H, W, C], t [N].

    x_t = t·x1 + (1 − t)·x0, u = x1 − x0, v = −∇ₓV(x_t) (differentiable w.r.t. V's weights);
    loss = mean_i w(t_i)·mean_pixels (v_i − u_i)²  (official `forward_all`).
    Returns (loss scalar, V(x_t) [N]).
    """
    t4 = tf.reshape(t, [-1, 1, 1, 1])
    x_t = t4 * x1 + (1.0 - t4) * x0
    v_pot, grad = energy_and_grad(potential_fn, x_t)
    mse = tf.reduce_mean(tf.reshape(tf.square(-grad - (x1 - x0)), [tf.shape(x1)[0], -1]), axis=1)
    return tf.reduce_mean(flow_weight(t, time_cutoff) * mse), v_pot


def cd_statistic(
    pos: tf.Tensor, neg: tf.Tensor, lambda_cd: float, cd_neg_clamp: float, trim_fraction: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Algorithm 2's contrastive-divergence term of one batch (official `forward_all`).

    pos [N] = V(data), neg [M] = V(negatives). The highest k = int(trim_fraction·M) negative
    energies are dropped; cd = mean(pos) − mean(rest of neg); returns (max(λ·cd, −clamp), cd)
    (no clamp when cd_neg_clamp = 0).
    """
    if trim_fraction > 0.0:
        m = tf.shape(neg)[0]  # k = int(trim_fraction * M) in float64, as the official Python float
        k = tf.cast(tf.floor(tf.cast(m, tf.float64) * float(trim_fraction)), tf.int32)
        neg_stat = tf.reduce_mean(tf.sort(neg)[: m - k])
    else:
        neg_stat = tf.reduce_mean(neg)
    cd = tf.reduce_mean(pos) - neg_stat
    scaled = lambda_cd * cd
    if cd_neg_clamp > 0:
        scaled = tf.maximum(scaled, -cd_neg_clamp)
    return scaled, cd


def global_cd_term(pos, neg, lambda_cd: float, cd_neg_clamp: float, trim_fraction: float):
    """`cd_statistic` of the *global* batch, differentiable w.r.t. this replica's pos/neg [N].

    The energies of every replica are all-gathered (without gradient), the statistic and its
    derivative w.r.t. each energy are computed on the global batch, and the returned surrogate
    has that value and, once divided by R (scale_for_replicas) and summed over the R replicas,
    the global-batch gradient. So trimming and the clamp act on the global batch: R replicas
    equal one replica with the same global batch. Returns (term, cd) scalars.
    """
    pos_all = distribute.all_gather(tf.stop_gradient(pos))
    neg_all = distribute.all_gather(tf.stop_gradient(neg))
    with tf.GradientTape() as tape:
        tape.watch([pos_all, neg_all])
        value, cd = cd_statistic(pos_all, neg_all, lambda_cd, cd_neg_clamp, trim_fraction)
    w_pos, w_neg = tape.gradient(value, [pos_all, neg_all])
    n = tf.shape(pos)[0]
    w_pos, w_neg = distribute.local_rows(w_pos, n), distribute.local_rows(w_neg, n)
    r = float(distribute.num_replicas())
    surrogate = r * (
        tf.reduce_sum(tf.stop_gradient(w_pos) * (pos - tf.stop_gradient(pos)))
        + tf.reduce_sum(tf.stop_gradient(w_neg) * (neg - tf.stop_gradient(neg)))
    )
    return value + surrogate, cd


# ------------------------------------------------------------------------------------------------
# Samplers.
def langevin_negatives(
    potential_fn: PotentialFn,
    x_init: tf.Tensor,
    *,
    n_gibbs,
    dt_gibbs: float,
    epsilon_max: float,
    time_cutoff: float,
    seed: tf.Tensor,
    at_data: tf.Tensor | None = None,
    max_steps: int | None = None,
) -> tf.Tensor:
    """CD negatives (official `gibbs_sampling_time_sweep`), clamped to [−1, 1] once at the end.

    x_{k+1} = x_k − dt·∇V(x_k) + sqrt(2·dt·ε(k·dt))·z_k, k = 0 … n_gibbs − 1, run by
    `ebm_zoo.sampling.langevin` with δ = sqrt(2·dt) (so δ²/2 = dt) and noise scale
    s_k = sqrt(ε(k·dt)). at_data [N] bool: rows that use ε_max at every step (the official
    `at_data_mask`, all False when `same_temperature_scheduler`). No gradient flows out.
    """
    n = tf.shape(x_init)[0]

    def noise_scale(k):
        eps = tf.cast(temperature(step_time(k, dt_gibbs), epsilon_max, time_cutoff), x_init.dtype)
        if at_data is None:
            return tf.sqrt(eps)
        per_row = tf.where(at_data, tf.cast(epsilon_max, x_init.dtype), eps)
        return tf.reshape(tf.sqrt(per_row), [n, 1, 1, 1])

    res = langevin(
        potential_fn,
        tf.stop_gradient(x_init),
        num_steps=n_gibbs,
        step_size=math.sqrt(2.0 * dt_gibbs),
        seed=seed,
        noise_scale=noise_scale,
        max_steps=max_steps,
    )
    return tf.stop_gradient(tf.clip_by_value(res.samples, -1.0, 1.0))


def heun_flow(
    potential_fn: PotentialFn,
    x0: tf.Tensor,
    *,
    num_steps,
    dt: float,
    epsilon_max: float,
    time_cutoff: float,
    seed: tf.Tensor,
    max_steps: int,
    t_start: float = 0.0,
    project: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
    clip: tuple[float, float] | None = (-1.0, 1.0),
) -> tf.Tensor:
    r"""Stratonovich Heun integration of dx = −∇V dt + sqrt(2ε(t)) dW (official sampler:
    `torchsde.sdeint(method="heun")` in sample_cifar_heun_1gpu.py / fid_cifar_heun_1gpu.py); the
    loop is the shared `ebm_zoo.sampling.sde.heun_sde`.

    With t_k = t_start + k·dt, f = −∇V, g_k = sqrt(2ε(t_k)), ΔW_k = sqrt(dt)·z_k:
        x' = x + dt·f(x) + g_k·ΔW_k
        x ← x + ½dt·(f(x) + f(x')) + ½(g_k + g_{k+1})·ΔW_k
    for k = 0 … num_steps − 1, then a final clip (the official clamp to [−1, 1]).

    Args:
      num_steps: int or int32 scalar tensor (0 <= num_steps <= max_steps, asserted in-graph);
        T = t_start + num_steps·dt is the sampling time τ_s of the paper (official `t_end`).
      max_steps: static bound of the `tf.while_loop`.
      seed: [2] int32 stateless seed; each replica takes its rows of the global-batch noise.
      project: optional (t_{k+1} float32 scalar, x) -> x applied after every step (inpainting).
    """
    dtype = tf.convert_to_tensor(x0).dtype

    def g(k):
        t = tf.constant(float(t_start), tf.float64) + step_time(k, dt)
        return tf.cast(tf.sqrt(2.0 * temperature(t, epsilon_max, time_cutoff)), dtype)

    return heun_sde(
        lambda x: -energy_and_grad(potential_fn, x)[1],
        g,
        x0,
        num_steps=num_steps,
        dt=dt,
        seed=seed,
        max_steps=max_steps,
        project=project,
        time_fn=lambda k: tf.cast(tf.constant(float(t_start), tf.float64) + step_time(k, dt), dtype),
        clip=clip,
    )
