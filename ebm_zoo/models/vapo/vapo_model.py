r"""VAPO — variational potential flow (Loo et al., arXiv:2407.15238; MODELS.md §4).

A potential Φ_θ(x, t) = ½‖x − U_θ(x, t)‖² (summed over pixels; U a time-conditioned U-Net with a
zero-initialised output, so Φ = ½‖x‖² at init) defines the flow dx/dt = ∇ₓΦ(x, t). Images are
generated without MCMC by integrating it from x(0) ~ N(0, I) at t = 1e-5 to t = 1 − 1e-5 and
mapping (x + 1)/2 to [0, 1]. Internal pixel range: [−1, 1].

Training (official code). Path x_t = t·y + (1 − t)·ε, t ~ U(1e-5, 1), ε ~ N(0, I), y ∈ [−1, 1];
g = ∂Φ/∂x, g_t = ∂Φ/∂t (second-order gradients: the loss contains ∇ₓΦ). With D pixels:

  Γ     = mean_pixels[(ε² − y·ε)]·(1 − t)                      (no gradient)
  corr  = mean(Γ_c·Φ) / (std Γ · sg[std Φ] + 1e-8)             Γ_c = Γ − mean Γ   (weight 1)
  norm  = mean g²                                               (weight 0.5)
  time  = mean g_t²                                             (weight 0.1)
  align = −mean[ (g·v) / (‖g‖·‖v‖ + 1e-8)^t ],  v = y − ε        (weight 1)

As in the official code (ljun0004/VAPO, `losses.py`, CIFAR-10 config `reduce_mean=True`):
g² and the elementwise products g∘v are averaged over pixels *and* batch
(`pixel_reduction="mean"`), and the correlation's normaliser std Φ is taken without gradient
(sg = stop-gradient; `detach_corr_scale=True`). `pixel_reduction="sum"` sums over pixels instead
(then the batch mean), which makes the two flow terms D times stronger next to the correlation
and turns norm + align at t → 0 into ½‖g − v‖² + const (conditional flow matching). std is the
unbiased (N − 1) estimate, as `torch.std`.

`loss="v1"` (arXiv v1): L = ½(Cov(Γ, Φ) + E‖∇ₓΦ‖²) with Γ = ‖y − x_t‖²/σ² (σ = `v1_sigma`).

The correlation/covariance terms are statistics of the *global* batch: Φ and Γ are all-gathered
(without gradient), the statistic and its derivative w.r.t. each Φ_i are computed on the global
batch, and each replica back-propagates Σ_local (∂stat/∂Φ_i)·Φ_i. So R replicas give the same
gradient as one replica with the same global batch *and the same weights* (tested). The U-Net's
initial weights come from Keras' global RNG (`seed` drives only the training noise): compare
runs from copied weights (`set_weights`). Loss values alone cannot show a weight mismatch at
init — the zero output conv makes Φ = ½‖x‖² whatever the other weights — but the gradients do.

Optimisation: Adam (1e-4, β 0.9/0.999, ε 1e-8) with linear warm-up, gradient clipping of the
*global* (all-replica) gradient — the official per-element "std" rule |G| ≤ c·sqrt(v̂) + 0.1 with
Adam's bias-corrected second moment v̂ (c = 3), or a global-norm clip — and an EMA of the weights (`ema_net`) used by `sample`, `energy`,
`interpolate`, `inpaint` and `ood_score`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models import serving
from ebm_zoo.models.base import EnergyModel, apply_gradients, scale_for_replicas
from ebm_zoo.nets.unet import TimeUNet
from ebm_zoo.sampling import ode
from ebm_zoo.utils.checks import (
    EbmZooError,
    check_choice,
    check_count,
    check_positive,
    check_seed,
    check_tolerance,
    seed_pair,
)

LOSSES = ("official", "v1")
CLIP_MODES = ("std", "norm")


# ------------------------------------------------------------------------------------------------
# Learning-rate schedule.
@keras.saving.register_keras_serializable(package="ebm_zoo")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak · min(1, (step + 1) / warmup_steps); constant peak when warmup_steps = 0."""

    def __init__(self, peak: float, warmup_steps: int):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        if self.warmup_steps <= 0:
            return tf.constant(self.peak, tf.float32)
        frac = (tf.cast(step, tf.float32) + 1.0) / float(self.warmup_steps)
        return self.peak * tf.minimum(1.0, frac)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


# ------------------------------------------------------------------------------------------------
# Loss terms (pure functions of per-example tensors; shapes in the docstrings).
def _std(x: tf.Tensor) -> tf.Tensor:
    """Unbiased standard deviation of a [N] vector."""
    n = tf.cast(tf.size(x), x.dtype)
    return tf.sqrt(tf.reduce_sum(tf.square(x - tf.reduce_mean(x))) / tf.maximum(n - 1.0, 1.0))


def correlation(gamma: tf.Tensor, phi: tf.Tensor, detach_scale: bool = True) -> tf.Tensor:
    """mean(Γ_c·Φ) / (std Γ · std Φ + 1e-8) for Γ, Φ [N] (the official correlation term).

    detach_scale: the official code divides by std Γ · std(Φ.detach()) — the normaliser carries
    no gradient, so ∂/∂Φ_i = Γ_c,i / (N·std Γ·std Φ) (a covariance gradient rescaled). False
    differentiates the normaliser too (the gradient of a true correlation, which vanishes along
    Φ ↦ aΦ + b).
    """
    gamma_c = gamma - tf.reduce_mean(gamma)
    std_phi = _std(phi)
    if detach_scale:
        std_phi = tf.stop_gradient(std_phi)
    return tf.reduce_mean(gamma_c * phi) / (_std(gamma) * std_phi + 1e-8)


def covariance(gamma: tf.Tensor, phi: tf.Tensor) -> tf.Tensor:
    """Cov(Γ, Φ) = mean(Γ_c·Φ) for Γ, Φ [N] (the v1 loss)."""
    return tf.reduce_mean((gamma - tf.reduce_mean(gamma)) * phi)


def global_batch_statistic(stat_fn, gamma: tf.Tensor, phi: tf.Tensor) -> tf.Tensor:
    """A statistic stat_fn(Γ, Φ) of the global batch, differentiable w.r.t. the local Φ.

    Args:
      stat_fn: (Γ [M], Φ [M]) -> scalar, M = global batch.
      gamma: this replica's Γ [N] (treated as constant).
      phi: this replica's Φ [N] (carries the gradient).
    Returns a scalar whose *value* is the global statistic and whose gradient, once multiplied
    by 1/R (scale_for_replicas) and summed over the R replicas, is ∇_θ stat of the global batch.
    """
    gamma_all = distribute.all_gather(tf.stop_gradient(gamma))
    phi_all = distribute.all_gather(tf.stop_gradient(phi))
    with tf.GradientTape() as tape:
        tape.watch(phi_all)
        value = stat_fn(gamma_all, phi_all)
    weights = distribute.local_rows(tape.gradient(value, phi_all), tf.shape(phi)[0])
    r = float(distribute.num_replicas())
    return value + r * tf.reduce_sum(tf.stop_gradient(weights) * (phi - tf.stop_gradient(phi)))


def official_terms(
    phi,
    g,
    g_t,
    y,
    eps,
    t,
    pixel_reduction: str = "mean",
    align_time_power: bool = True,
    detach_corr_scale: bool = True,
) -> dict:
    """The four loss terms of the official code (unweighted, local part of the batch).

    Args: phi [N]; g, y, eps [N, H, W, C]; g_t, t [N].
    Returns {"corr", "norm", "time", "align"} scalars; "corr" is global-batch (see above).
    """
    n = tf.shape(y)[0]
    flat = lambda a: tf.reshape(a, [n, -1])  # noqa: E731
    gf, vf = flat(g), flat(y - eps)
    gamma = tf.stop_gradient(tf.reduce_mean(flat(tf.square(eps) - y * eps), axis=1) * (1.0 - t))
    dot = tf.reduce_sum(gf * vf, axis=1)
    sq_norm = tf.reduce_sum(tf.square(gf), axis=1)
    if pixel_reduction == "mean":
        d = tf.cast(tf.shape(gf)[1], dot.dtype)
        dot, sq_norm = dot / d, sq_norm / d
    power = t if align_time_power else tf.zeros_like(t)  # False: plain g·v (flow-matching ablation)
    denom = tf.pow(tf.norm(gf, axis=1) * tf.norm(vf, axis=1) + 1e-8, power)
    return {
        "corr": global_batch_statistic(lambda a, b: correlation(a, b, detach_corr_scale), gamma, phi),
        "norm": tf.reduce_mean(sq_norm),
        "time": tf.reduce_mean(tf.square(g_t)),
        "align": -tf.reduce_mean(dot / denom),
    }


def v1_terms(phi, g, y, x_t, sigma: float) -> dict:
    """arXiv-v1 loss terms: {"cov": Cov(Γ, Φ), "norm": E‖g‖²}, Γ = ‖y − x_t‖²/σ²."""
    n = tf.shape(y)[0]
    gamma = tf.stop_gradient(tf.reduce_sum(tf.reshape(tf.square(y - x_t), [n, -1]), axis=1) / sigma**2)
    return {
        "cov": global_batch_statistic(covariance, gamma, phi),
        "norm": tf.reduce_mean(tf.reduce_sum(tf.reshape(tf.square(g), [n, -1]), axis=1)),
    }


# ------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="ebm_zoo")
class VAPO(EnergyModel):
    """Variational potential flow (see the module docstring).

    Args (besides image_size, channels, seed):
      base_channels, channel_mults, num_res_blocks, attn_resolutions, dropout, time_embed_dim,
        max_groups, time_scale: the U-Net (ebm_zoo.nets.unet.TimeUNet).
      loss: "official" or "v1".
      w_corr, w_norm, w_time, w_align: weights of the official terms (1, 0.5, 0.1, 1).
      pixel_reduction: "mean" (official) or "sum" over pixels for g² and g·v (module docstring).
      detach_corr_scale: True (official) takes std Φ in the correlation's normaliser without
        gradient; False differentiates through it.
      align_time_power: True (official) divides g·v by (‖g‖‖v‖ + 1e-8)^t; False keeps the plain
        g·v, which with w_corr = w_time = 0 is conditional flow matching (an ablation).
      v1_sigma: σ of the v1 loss.
      t_min: smallest training time (t ~ U(t_min, 1)).
      learning_rate, beta_1, beta_2, epsilon, warmup_steps: Adam with linear warm-up.
      grad_clip, grad_clip_mode: "std" (official, c = 3): every element of the all-replica
        gradient is clipped to ±(c·sqrt(v̂) + 0.1), v̂ = Adam's bias-corrected second moment
        (skipped on the first step); "norm": clip of the global gradient norm to c. 0 disables.
      ema_decay: EMA rate of the sampling weights (0.9999; e.g. 0.995 for short CPU runs).
      solver, num_steps, rtol, atol, max_solver_steps, t_start, t_end: sampling defaults.
    """

    family = "vapo"
    internal_range = (-1.0, 1.0)
    sample_overrides = ("solver", "rtol", "atol", "max_solver_steps")

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        seed: int = 0,
        base_channels: int = 128,
        channel_mults=(2, 2, 2),
        num_res_blocks: int = 4,
        attn_resolutions=(16,),
        dropout: float = 0.1,
        time_embed_dim: int = 128,
        max_groups: int = 32,
        time_scale: float = 1.0,
        loss: str = "official",
        w_corr: float = 1.0,
        w_norm: float = 0.5,
        w_time: float = 0.1,
        w_align: float = 1.0,
        pixel_reduction: str = "mean",
        align_time_power: bool = True,
        detach_corr_scale: bool = True,
        v1_sigma: float = 1.0,
        t_min: float = 1e-5,
        learning_rate: float = 1e-4,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        warmup_steps: int = 5000,
        grad_clip: float = 3.0,
        grad_clip_mode: str = "std",
        ema_decay: float = 0.9999,
        solver: str = "dopri5",
        num_steps: int = 100,
        rtol: float = 1e-3,
        atol: float = 1e-3,
        max_solver_steps: int = 1000,
        t_start: float = 1e-5,
        t_end: float = 1.0 - 1e-5,
        **kwargs,
    ):
        super().__init__(image_size=image_size, channels=channels, seed=seed, **kwargs)
        check_choice(loss, "loss", LOSSES)
        check_choice(pixel_reduction, "pixel_reduction", ("mean", "sum"))
        check_choice(grad_clip_mode, "grad_clip_mode", CLIP_MODES)
        check_choice(solver, "solver", ode.SOLVERS)
        ode.check_tolerances(rtol, atol)
        if not 0.0 <= ema_decay < 1.0:
            raise EbmZooError(f"`ema_decay` must lie in [0, 1), got {ema_decay!r}.")
        if not 0.0 < t_min < 1.0 or not 0.0 <= t_start < t_end <= 1.0:
            raise EbmZooError(
                f"Times must satisfy 0 < t_min < 1 and 0 <= t_start < t_end <= 1; got t_min={t_min}, "
                f"t_start={t_start}, t_end={t_end}."
            )
        check_positive(learning_rate, "learning_rate")
        self.net_kwargs = dict(
            base_channels=int(base_channels),
            channel_mults=[int(m) for m in channel_mults],
            num_res_blocks=int(num_res_blocks),
            attn_resolutions=[int(r) for r in attn_resolutions],
            dropout=float(dropout),
            time_embed_dim=int(time_embed_dim),
            max_groups=int(max_groups),
            time_scale=float(time_scale),
        )
        self.loss_name = loss
        self.w_corr, self.w_norm, self.w_time, self.w_align = map(float, (w_corr, w_norm, w_time, w_align))
        self.pixel_reduction = pixel_reduction
        self.align_time_power = bool(align_time_power)
        self.detach_corr_scale = bool(detach_corr_scale)
        self.v1_sigma = float(v1_sigma)
        self.t_min = float(t_min)
        self.learning_rate = float(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.warmup_steps = int(warmup_steps)
        self.grad_clip = float(grad_clip)
        self.grad_clip_mode = grad_clip_mode
        self.ema_decay = float(ema_decay)
        self.solver = solver
        self.num_steps = int(num_steps)
        self.rtol, self.atol = float(rtol), float(atol)
        self.max_solver_steps = int(max_solver_steps)
        self.t_start, self.t_end = float(t_start), float(t_end)

        unet = dict(out_channels=self.channels, image_size=self.image_size, **self.net_kwargs)
        self.net = TimeUNet(name="unet", **unet)
        self.ema_net = TimeUNet(name="unet_ema", **unet)
        dummy = tf.zeros([1, *self.image_shape])
        self.net(dummy, tf.zeros([1]))
        self.ema_net(dummy, tf.zeros([1]))
        self.ema_net.trainable = False
        self.ema_net.set_weights(self.net.get_weights())
        self.built = True  # every variable exists now (so load_weights works before any call)
        names = ("loss", "loss_corr", "loss_norm", "loss_time", "loss_align", "potential", "grad_norm")
        self._trackers = {k: keras.metrics.Mean(name=k) for k in names}
        self._compiled = {}

    # ---------------------------------------------------------------------------------------
    # Optimiser.
    def compile(self, optimizer=None, **kwargs):
        """Compiles with the model's own Adam + linear warm-up unless `optimizer` is given.

        Gradient clipping is done in `train_step` on the all-replica gradient (Keras would clip
        each replica's partial gradient), so do not pass clipnorm to a custom optimizer.
        """
        if optimizer is None:
            optimizer = keras.optimizers.Adam(
                learning_rate=LinearWarmup(self.learning_rate, self.warmup_steps),
                beta_1=self.beta_1,
                beta_2=self.beta_2,
                epsilon=self.epsilon,
            )
        super().compile(optimizer=optimizer, **kwargs)
        if not self.optimizer.built:  # the "std" clip reads Adam's slots from the first step
            self.optimizer.build(self.net.trainable_variables)

    def build_all(self) -> None:
        """Both U-Nets are built in the constructor; this builds the model and Adam's slots."""
        super().build_all()

    @property
    def metrics(self):
        return list(self._trackers.values())

    # ---------------------------------------------------------------------------------------
    # The potential and its derivatives.
    def _potential(self, net, x: tf.Tensor, t: tf.Tensor, dropout_seed=None) -> tf.Tensor:
        """Φ(x, t) [N] = ½‖x − U(x, t)‖² for x [N, H, W, C] in [−1, 1], t [N] or scalar."""
        u = net(x, t, dropout_seed=dropout_seed)
        return 0.5 * tf.reduce_sum(tf.reshape(tf.square(x - u), [tf.shape(x)[0], -1]), axis=1)

    def _potential_and_grads(self, net, x, t, dropout_seed=None):
        """(Φ [N], g = ∂Φ/∂x [N, H, W, C], g_t = ∂Φ/∂t [N]), differentiable w.r.t. θ."""
        with tf.GradientTape() as tape:
            tape.watch([x, t])
            phi = self._potential(net, x, t, dropout_seed)
            total = tf.reduce_sum(phi)
        g, g_t = tape.gradient(total, [x, t])
        return phi, g, g_t

    def velocity(self, t: tf.Tensor, x: tf.Tensor, net=None) -> tf.Tensor:
        """∇ₓΦ(x, t) [N, H, W, C] (EMA weights by default); x internal [−1, 1] scale, t scalar/[N].

        With the EMA net the computation is one `tf.function`, so an ODE solver that calls it
        7 times per dopri5 step traces the U-Net and its gradient once, not 7 times (the first
        `sample` call compiles ~1.6× faster, measured on the tiny test net)."""
        if net is None:
            fn = self._compiled.get("velocity")
            if fn is None:
                fn = tf.function(lambda t, x: self._velocity(self.ema_net, t, x), autograph=False)
                self._compiled["velocity"] = fn
            return fn(tf.convert_to_tensor(t, tf.float32), x)
        return self._velocity(net, t, x)

    def _velocity(self, net, t, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(self._potential(net, x, t))
        return tape.gradient(total, x)

    def _energy(self, x: tf.Tensor) -> tf.Tensor:
        """E(x) = Φ(x, t=1) [N] under the EMA weights (x internal [−1, 1])."""
        return self._potential(self.ema_net, x, tf.ones([tf.shape(x)[0]]))

    def potential(self, images01, t) -> tf.Tensor:
        """Φ(x, t) [N] of images [N, H, W, C] in [0, 1] at times t (scalar or [N]) in [0, 1]."""
        x = self.to_internal(self.check(images01))
        t_arr = np.asarray(t, dtype=np.float32)
        if t_arr.size == 0 or not np.all(np.isfinite(t_arr)) or t_arr.min() < 0.0 or t_arr.max() > 1.0:
            raise EbmZooError(f"`t` must lie in [0, 1] (0 = prior, 1 = data), got {t!r}.")
        t_vec = tf.broadcast_to(tf.constant(t_arr), [x.shape[0]])
        return self._potential(self.ema_net, x, t_vec)

    # ---------------------------------------------------------------------------------------
    # Training.
    def train_step(self, data):
        """One VAPO step (Loo et al. 2024, Algorithm 1) on this replica's images [N, H, W, C] in
        [0, 1]: ε ~ N(0, I), t ~ U(t_min, 1), minimise the loss of `loss_terms` on x_t = t·y +
        (1 − t)·ε, clip the all-replica gradient, Adam step, EMA update."""
        y = self.to_internal(data[0] if isinstance(data, (tuple, list)) else data)
        eps = distribute.global_normal(tf.shape(y), self.step_seed(0))
        t = distribute.global_uniform([tf.shape(y)[0]], self.step_seed(1), minval=self.t_min, maxval=1.0)
        drop_seed = self.step_seed(2) if self.net_kwargs["dropout"] > 0 else None
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            loss, terms = self.loss_terms(y, eps, t, drop_seed)
            scaled = scale_for_replicas(loss)
        norms = []  # the all-replica gradient norm before clipping, for the log
        apply_gradients(
            self.optimizer, tape.gradient(scaled, variables), variables, lambda g: self._clip(g, norms)
        )
        self._update_ema()
        values = {"loss": loss, **{f"loss_{k}": terms[k] for k in ("corr", "norm", "time", "align")}}
        values.update(potential=terms["potential"], grad_norm=norms[0])
        for k, v in values.items():
            self._trackers[k].update_state(v)
        return {k: m.result() for k, m in self._trackers.items()}

    def loss_terms(self, y, eps, t, dropout_seed=None) -> tuple[tf.Tensor, dict]:
        """(loss, {"corr", "norm", "time", "align", "potential"}) of images y [N, H, W, C] in
        [−1, 1], noise eps like y and times t [N] (module docstring; `train_step` calls this)."""
        t4 = t[:, None, None, None]
        x_t = t4 * y + (1.0 - t4) * eps
        phi, g, g_t = self._potential_and_grads(self.net, x_t, t, dropout_seed)
        if self.loss_name == "official":
            terms = official_terms(
                phi, g, g_t, y, eps, t, self.pixel_reduction, self.align_time_power, self.detach_corr_scale
            )
            weights = {"corr": self.w_corr, "norm": self.w_norm, "time": self.w_time, "align": self.w_align}
            loss = tf.add_n([weights[k] * terms[k] for k in ("corr", "norm", "time", "align")])
        else:
            v1 = v1_terms(phi, g, y, x_t, self.v1_sigma)
            terms = {"corr": v1["cov"], "norm": v1["norm"], "time": 0.0, "align": 0.0}
            loss = 0.5 * (terms["corr"] + terms["norm"])
        return loss, {**terms, "potential": tf.reduce_mean(phi)}

    def _clip(self, grads, norms: list):
        """Clips the all-replica gradient G (mode "std" or "norm", class docstring); appends its
        norm before clipping to `norms`. Used as the `process` of base.apply_gradients, which
        sums the replicas' gradients first, so clipping acts on the same G on 1 and R replicas."""
        norm = tf.linalg.global_norm(grads)
        norms.append(norm)
        if self.grad_clip > 0 and self.grad_clip_mode == "norm":
            return tf.clip_by_global_norm(grads, self.grad_clip, use_norm=norm)[0]
        if self.grad_clip > 0:
            return self._clip_by_adam_std(grads)
        return list(grads)

    def _clip_by_adam_std(self, grads):
        """Official "std" clip: |G| ≤ c·sqrt(v / (1 − β₂^k)) + 0.1 elementwise, k = steps taken
        (v = Adam's second moment before this step); no clipping before the first step."""
        opt = self.optimizer
        if not hasattr(opt, "_velocities"):
            raise EbmZooError(
                f"grad_clip_mode='std' reads Adam's second moments, but the optimizer is "
                f"{type(opt).__name__}; use an Adam optimizer or grad_clip_mode='norm'."
            )
        k = tf.cast(opt.iterations, tf.float32)
        correction = 1.0 - tf.pow(tf.constant(float(opt.beta_2)), k)
        out = []
        for g, var in zip(grads, self.net.trainable_variables):
            v = opt._velocities[opt._get_variable_index(var)]
            bound = self.grad_clip * tf.sqrt(tf.convert_to_tensor(v) / tf.maximum(correction, 1e-12)) + 0.1
            out.append(tf.where(k >= 1.0, tf.clip_by_value(g, -bound, bound), g))
        return out

    def _update_ema(self) -> None:
        """ema ← d·ema + (1 − d)·θ for every U-Net weight (in a cross-replica merge)."""
        d = self.ema_decay
        pairs = [(e.value, w.value) for e, w in zip(self.ema_net.weights, self.net.weights)]

        def merge_fn(strategy, pairs):
            for ema, w in pairs:
                strategy.extended.update(
                    ema, lambda e, v: e.assign(d * e + (1.0 - d) * v), args=(w,), group=False
                )

        tf.distribute.get_replica_context().merge_call(merge_fn, args=(pairs,))

    # ---------------------------------------------------------------------------------------
    # Sampling.
    def _solver_settings(self, overrides: dict, validate: bool = True) -> dict:
        """The ODE settings: the model's, replaced by overrides (solver, num_steps, rtol, atol,
        max_solver_steps); validated unless `validate=False` (already checked at the public call)."""
        if validate:
            unknown = set(overrides) - {"num_steps", *self.sample_overrides}
            if unknown:
                raise EbmZooError(
                    f"Unknown VAPO sampler option(s) {sorted(unknown)}; valid: solver, num_steps, rtol, "
                    "atol, max_solver_steps."
                )
            check_choice(overrides.get("solver", self.solver), "solver", ode.SOLVERS)
            for key in ("num_steps", "max_solver_steps"):
                if key in overrides:
                    check_count(overrides[key], key)
            for key in ("rtol", "atol"):
                if key in overrides:
                    check_tolerance(overrides[key], key)
        return {
            "solver": overrides.get("solver", self.solver),
            "num_steps": int(overrides.get("num_steps", self.num_steps)),
            "rtol": overrides.get("rtol", self.rtol),
            "atol": overrides.get("atol", self.atol),
            "max_steps": int(overrides.get("max_solver_steps", self.max_solver_steps)),
        }

    def check_overrides(self, overrides: dict, where: str = "sample()") -> None:
        super().check_overrides(overrides, where)
        if overrides:
            self._solver_settings(overrides)

    def sampler_settings(self) -> dict:
        s = self._solver_settings({}, validate=False)
        return {**super().sampler_settings(), **s, "t_start": self.t_start, "t_end": self.t_end}

    def _integrate(self, x0: tf.Tensor, settings: dict, fn=None) -> ode.ODEResult:
        fn = fn or (lambda t, x: self.velocity(t, x))
        return ode.solve(fn, x0, self.t_start, self.t_end, **settings)

    @property
    def default_num_steps(self) -> int:
        """Steps of a fixed-step solver (euler / rk4); the default sampler may be adaptive."""
        return self.num_steps

    def chain_start(self, n, seed: tf.Tensor) -> tf.Tensor:
        """x(0) ~ N(0, I), [n, H, W, C]."""
        return distribute.global_normal(tf.concat([[n], list(self.image_shape)], 0), seed)

    @tf.autograph.experimental.do_not_convert  # plain TF ops and explicit while_loops
    def _sample(self, n, seed, num_steps, max_steps, **overrides) -> tf.Tensor:
        """Samples [n, H, W, C] in [−1, 1]: x(0) ~ N(0, I) moved by dx/dt = ∇ₓΦ (EMA weights).

        num_steps = -1: the model's solver (adaptive dopri5 by default); K >= 0: K steps of the
        fixed-step solver (the model's if euler / rk4, else Euler); K = 0 returns x(0).
        """
        settings = self._solver_settings(overrides, validate=False)
        x0 = self.chain_start(n, seed)
        fixed = settings["solver"] if settings["solver"] in ("euler", "rk4") else "euler"
        step = ode.euler if fixed == "euler" else ode.rk4

        def k_steps(k):
            x = step(
                lambda t, x: self.velocity(t, x), x0, self.t_start, self.t_end, tf.maximum(k, 1), max_steps
            )
            return tf.where(k > 0, x.state, x0)

        if settings["solver"] in ("euler", "rk4"):
            return k_steps(self.steps_or_default(num_steps))
        return tf.cond(num_steps < 0, lambda: self._integrate(x0, settings).state, lambda: k_steps(num_steps))

    def sample_with_nfe(self, n: int, seed: int = 0, **overrides) -> tuple[tf.Tensor, int]:
        """(samples [n, H, W, C] in [0, 1], number of velocity evaluations) for one solve."""
        settings = self._solver_settings(overrides)
        n = self.check_count_n(n)
        key = ("nfe", tuple(sorted(settings.items())))  # one trace for every n
        if key not in self._compiled:

            def fn(n, s):
                res = self._integrate(self.chain_start(n, s), settings)
                return self.from_internal(res.state), res.nfe

            spec = [tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)]
            self._compiled[key] = tf.function(fn, autograph=False, input_signature=spec)
        images, nfe = self._compiled[key](tf.constant(int(n), tf.int32), seed_pair(check_seed(seed)))
        return images, int(nfe)

    def interpolate(self, n: int, seed: int = 0, num_points: int = 8, **overrides) -> tf.Tensor:
        """Spherical interpolation between two prior samples, pushed through the flow.

        Returns [n, num_points, H, W, C] in [0, 1]: row i goes from the sample of prior draw
        z0_i to that of z1_i along slerp(z0_i, z1_i, α), α = 0 … 1.
        """
        n, num_points = self.check_count_n(n), check_count(num_points, "num_points", minimum=2)
        if int(n) < 1 or int(num_points) < 2:
            raise EbmZooError(
                f"interpolate needs n >= 1 and num_points >= 2, got n={n}, num_points={num_points}."
            )
        settings = self._solver_settings(overrides)
        z = tf.random.stateless_normal([2, int(n), int(np.prod(self.image_shape))], self.seed_tensor(seed, 1))
        z0, z1 = z[0], z[1]
        cos = tf.reduce_sum(z0 * z1, 1) / (tf.norm(z0, axis=1) * tf.norm(z1, axis=1))
        theta = tf.acos(tf.clip_by_value(cos, -1.0, 1.0))[:, None, None]  # [n, 1, 1]
        alpha = tf.linspace(0.0, 1.0, int(num_points))[None, :, None]  # [1, P, 1]
        w0 = tf.sin((1.0 - alpha) * theta) / tf.sin(theta)
        w1 = tf.sin(alpha * theta) / tf.sin(theta)
        zs = w0 * z0[:, None] + w1 * z1[:, None]  # [n, P, D]
        x0 = tf.reshape(zs, [-1, *self.image_shape])
        x = tf.function(lambda x0: self._integrate(x0, settings).state, autograph=False)(x0)
        return tf.reshape(self.from_internal(x), [int(n), int(num_points), *self.image_shape])

    @tf.autograph.experimental.do_not_convert
    def _inpaint(self, y: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, **overrides) -> tf.Tensor:
        """Masked generation (internal [−1, 1]; mask 1 = generate, 0 = known): the known pixels
        follow their own path x_t = t·y + (1 − t)·ε (velocity y − ε), the masked ones the learned
        drift ∇ₓΦ evaluated on the combined image; ε drawn with fold_in(seed, 2)."""
        settings = self._solver_settings(overrides, validate=False)
        m = mask
        eps = tf.random.stateless_normal(tf.shape(y), distribute.split_seed(seed, 2))

        def fn(t, x):
            known = t * y + (1.0 - t) * eps
            x = m * x + (1.0 - m) * known
            return m * self.velocity(t, x) + (1.0 - m) * (y - eps)

        return self._integrate(eps, settings, fn).state

    def serving_functions(self) -> dict:
        """The common signatures and `sample_ode`: num_samples int32 [], seed int64 [], rtol
        float32 [], atol float32 [] (both > 0) -> {"images", "nfe" int32 []}, dopri5 at the given
        tolerances; rtol = atol = model.rtol reproduces `sample` with the default dopri5."""
        out = super().serving_functions()
        settings = {**self._solver_settings({}, validate=False), "solver": "dopri5"}

        def sample_ode(num_samples, seed, rtol, atol):
            x0 = self.chain_start(serving.checked_count(num_samples), serving.served_seed_pair(seed))
            tol = {
                "rtol": serving.checked_positive(rtol, "rtol"),
                "atol": serving.checked_positive(atol, "atol"),
            }
            res = self._integrate(x0, {**settings, **tol})
            return {"images": self.from_internal(res.state), "nfe": res.nfe}

        spec = [serving.NUM_SAMPLES, serving.SEED, tf.TensorSpec([], tf.float32, name="rtol")]
        out["sample_ode"] = (sample_ode, [*spec, tf.TensorSpec([], tf.float32, name="atol")])
        return out

    # ---------------------------------------------------------------------------------------
    # Out-of-distribution scores.
    ood_methods = ("nll", "potential", "typicality")

    def _ood_base(self, images01) -> tf.Tensor:
        """The typicality statistics' base score: −Φ(x, t_end) (method="potential"); traceable."""
        x = self.to_internal(images01)
        return -self._potential(self.ema_net, x, tf.fill([tf.shape(x)[0]], self.t_end))

    def ood_score(self, images, method: str = "nll", num_steps: int = 16, seed: int = 0) -> tf.Tensor:
        """Per-image OOD score [N] (overrides EnergyModel.ood_score); higher = less like the
        training data.

        method="nll" (default): negative log-likelihood in bits per dimension of the flow's
          density at t_end, by integrating the flow backwards to t_start and accumulating the
          divergence, log p_1(x) = log N(x(0); 0, I) − ∫ ΔΦ(x(t), t) dt, with a Hutchinson
          estimate ΔΦ ≈ zᵀ∇²Φ z (one Gaussian probe z per image, fixed along the path) and
          `num_steps` RK4 steps; includes the log 2 per pixel of the [0, 1] → [−1, 1] map.
        method="potential": −Φ(x, t_end) under the EMA weights. The flow climbs Φ (dx/dt = +∇Φ),
          so data sit at *high* Φ: measured on digits, Φ itself ranks OOD images perfectly
          backwards (AUROC 0.0), hence the minus sign (docs/vapo.md).
        method="typicality": EnergyModel's fitted score (`fit_ood` first) on the statistics of −Φ.
        """
        check_choice(method, "method", self.ood_methods)
        if method == "typicality":
            return self._typicality_score(images, seed)
        seed, num_steps = self.check_seed_arg(seed), check_count(num_steps, "num_steps")
        x = self.to_internal(self.check(images))
        if method == "potential":
            return -self._potential(self.ema_net, x, tf.fill([tf.shape(x)[0]], self.t_end))
        if int(num_steps) < 1:
            raise EbmZooError(f"`num_steps` must be >= 1, got {num_steps!r}.")
        key = ("nll", int(num_steps), x.shape[0], int(seed))
        if key not in self._compiled:
            self._compiled[key] = tf.function(
                lambda x: self._nll(x, int(num_steps), int(seed)), autograph=False
            )
        return self._compiled[key](x)

    def _nll(self, x1: tf.Tensor, num_steps: int, seed: int) -> tf.Tensor:
        n = tf.shape(x1)[0]
        d = int(np.prod(self.image_shape))
        z = tf.random.stateless_normal(tf.shape(x1), [seed, 3])

        def fn(t, state):
            x = tf.reshape(state[:, :d], tf.shape(x1))
            with tf.GradientTape() as outer:
                outer.watch(x)
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    total = tf.reduce_sum(self._potential(self.ema_net, x, t))
                g = inner.gradient(total, x)
                gz = tf.reduce_sum(g * z)
            hz = outer.gradient(gz, x)
            div = tf.reduce_sum(tf.reshape(z * hz, [n, -1]), axis=1, keepdims=True)
            return tf.concat([tf.reshape(g, [n, -1]), div], axis=1)

        state1 = tf.concat([tf.reshape(x1, [n, -1]), tf.zeros([n, 1])], axis=1)
        # Backwards from t_end to t_start: state(t_start) = (x(0), −∫ ΔΦ dt).
        res = ode.rk4(fn, state1, self.t_end, self.t_start, num_steps)
        x0, minus_int_div = res.state[:, :d], res.state[:, d]
        log_p0 = -0.5 * tf.reduce_sum(tf.square(x0), axis=1) - 0.5 * d * math.log(2 * math.pi)
        log_p1 = log_p0 + minus_int_div  # log p_1(x1) = log p_0(x0) − ∫ ΔΦ dt
        log_p01 = log_p1 + d * math.log(2.0)  # density of the [0, 1] image
        return -log_p01 / (d * math.log(2.0))

    # ---------------------------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            **self.net_kwargs,
            "loss": self.loss_name,
            "w_corr": self.w_corr,
            "w_norm": self.w_norm,
            "w_time": self.w_time,
            "w_align": self.w_align,
            "pixel_reduction": self.pixel_reduction,
            "align_time_power": self.align_time_power,
            "detach_corr_scale": self.detach_corr_scale,
            "v1_sigma": self.v1_sigma,
            "t_min": self.t_min,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "warmup_steps": self.warmup_steps,
            "grad_clip": self.grad_clip,
            "grad_clip_mode": self.grad_clip_mode,
            "ema_decay": self.ema_decay,
            "solver": self.solver,
            "num_steps": self.num_steps,
            "rtol": self.rtol,
            "atol": self.atol,
            "max_solver_steps": self.max_solver_steps,
            "t_start": self.t_start,
            "t_end": self.t_end,
        }
