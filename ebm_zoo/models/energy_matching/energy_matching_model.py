r"""Energy Matching (Balcerak et al., arXiv:2504.10612, NeurIPS 2025) as an ebm_zoo family.

One time-independent scalar potential V_θ(x) (images in [−1, 1]); samples follow
dx = −∇V dt + sqrt(2ε(t)) dW from x(0) ~ N(0, I) up to a time T (the paper's τ_s).

Training, one `train_step` with a phase switch (`phase`), as the official training script
experiments/cifar10/train_cifar_multigpu.py does per step. Each incoming batch is split into a
flow batch (even rows) and an independent CD batch (odd rows), as the official loop draws two
batches every step (the CD batch is drawn and ignored in the warm-up, as there):

  warm-up (Algorithm 1):  L = L_OT
  main    (Algorithm 2):  L = L_OT + max(λ_CD·(mean V(x⁺) − trimmed-mean V(x⁻)), −cd_neg_clamp)

L_OT = mean_i w(t_i)·mean_pixels(−∇V(x_t) − (x1 − x0))², x_t = t·x1 + (1 − t)·x0, t ~ U[0, 1),
with (x0, x1) drawn from the exact minibatch OT plan between noise and data (torchcfm's
`ExactOptimalTransportConditionalFlowMatcher`, sigma = 0). Negatives x⁻: `n_gibbs` Langevin
steps of size dt_gibbs with temperature ε(k·dt_gibbs), half of them started at data when
`split_negative`, clamped to [−1, 1]. Adam (β = 0.9, 0.95) with a linear learning-rate warm-up
from 0, global-norm clipping of the all-replica gradient, and EMA weights (`ema_net`) used by
`sample`, `energy`, `ood_score` and `inpaint`.

Distribution: the OT coupling, the with-replacement draw from the plan, the half split of the
negatives and the CD statistic (trimming, clamp) are all defined on the *global* batch, so a
step on R replicas equals one replica with the same global batch (tested).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.base import EnergyModel, apply_gradients, scale_for_replicas
from ebm_zoo.models.energy_matching import dynamics
from ebm_zoo.models.energy_matching.nets import build_potential
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive

PHASES = ("warmup", "main", "warmup_then_main")


@keras.saving.register_keras_serializable(package="ebm_zoo")
class WarmupLR(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak·min(step, W)/W (official `warmup_lr` through LambdaLR: 0 at step 0)."""

    def __init__(self, peak: float, warmup_steps: int):
        self.peak, self.warmup_steps = float(peak), int(warmup_steps)

    def __call__(self, step):
        if self.warmup_steps <= 0:
            return tf.constant(self.peak, tf.float32)
        return self.peak * tf.minimum(tf.cast(step, tf.float32), float(self.warmup_steps)) / self.warmup_steps

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


def clip_like_torch(grads, max_norm: float):
    """`torch.nn.utils.clip_grad_norm_`: g·min(1, max_norm/(‖g‖ + 1e-6)); returns (grads, ‖g‖)."""
    norm = tf.linalg.global_norm(grads)
    if max_norm <= 0:
        return list(grads), norm
    coef = tf.minimum(1.0, max_norm / (norm + 1e-6))
    return [g * coef for g in grads], norm


@keras.saving.register_keras_serializable(package="ebm_zoo")
class EnergyMatching(EnergyModel):
    """Energy Matching (see the module docstring and docs/energy_matching.md).

    Args (besides image_size, channels, seed):
      net: "unet_vit" (official CIFAR-10 potential) or "conv_mlp" (official MNIST potential).
      net_config: keyword arguments of that net (ebm_zoo.models.energy_matching.nets).
      phase: "warmup" (Algorithm 1: flow loss only), "main" (Algorithm 2: + CD), or
        "warmup_then_main": the warm-up until optimizer step `main_start_step`, then the main
        phase (the README's two runs, the second resuming the first, as one run; decided
        in-graph from the checkpointed step, so a resumed run keeps its phase).
      main_start_step: the first main-phase step of "warmup_then_main" (official 145,000).
      time_cutoff: τ* of the flow weight and the temperature ε(t) (official flag, 1.0).
      epsilon_max: ε_max, the temperature past t = 1 (0.01), for the negatives and sampling.
      lambda_cd, n_gibbs, dt_gibbs, cd_neg_clamp, cd_trim_fraction, split_negative,
        same_temperature_scheduler: the official CD flags (main phase only).
      ot_resample: True (official, torchcfm) draws the batch's pairs from the OT plan with
        replacement; False uses every pair of the permutation once.
      hflip: random horizontal flips of the training images (official CIFAR-10 transform
        `RandomHorizontalFlip`; not in the official MNIST script), drawn per global row.
      learning_rate, beta_1, beta_2, adam_epsilon, warmup_steps, grad_clip: optimiser.
      ema_decay: EMA rate in the main phase (official 0.99); warmup_ema_decay: in the warm-up
        phase (official 0.9999).
      t_end: default sampling time T (τ_s, 3.25 for CIFAR-10); sampling uses dt_gibbs steps.
      max_sample_steps: static bound of the sampler's loop (a tensor num_steps must not exceed it).
    """

    family = "energy_matching"
    internal_range = (-1.0, 1.0)

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        seed: int = 0,
        net: str = "unet_vit",
        net_config: dict | None = None,
        phase: str = "warmup",
        main_start_step: int = 0,
        time_cutoff: float = 1.0,
        epsilon_max: float = 0.01,
        lambda_cd: float = 1e-3,
        n_gibbs: int = 200,
        dt_gibbs: float = 0.01,
        cd_neg_clamp: float = 0.02,
        cd_trim_fraction: float = 0.1,
        split_negative: bool = True,
        same_temperature_scheduler: bool = True,
        ot_resample: bool = True,
        hflip: bool = False,
        learning_rate: float = 1.2e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.95,
        adam_epsilon: float = 1e-8,
        warmup_steps: int = 10000,
        grad_clip: float = 1.0,
        ema_decay: float = 0.99,
        warmup_ema_decay: float = 0.9999,
        t_end: float = 3.25,
        max_sample_steps: int = 500,
        **kwargs,
    ):
        super().__init__(image_size=image_size, channels=channels, seed=seed, **kwargs)
        check_choice(phase, "phase", PHASES)
        if phase == "warmup_then_main" and int(main_start_step) < 1:
            raise EbmZooError(
                f"phase='warmup_then_main' needs main_start_step >= 1 (the first main-phase step, "
                f"official 145000), got {main_start_step!r}."
            )
        for name, value in (("dt_gibbs", dt_gibbs), ("learning_rate", learning_rate)):
            check_positive(value, name)
        if not 0.0 <= time_cutoff <= 1.0:
            raise EbmZooError(f"`time_cutoff` must lie in [0, 1] (official 1.0), got {time_cutoff!r}.")
        for name, value in (("ema_decay", ema_decay), ("warmup_ema_decay", warmup_ema_decay)):
            if not 0.0 <= value < 1.0:
                raise EbmZooError(f"`{name}` must lie in [0, 1), got {value!r}.")
        if not 0.0 <= cd_trim_fraction < 1.0:
            raise EbmZooError(
                f"`cd_trim_fraction` must lie in [0, 1) (official 0.1), got {cd_trim_fraction!r}."
            )
        for name, value in (
            ("epsilon_max", epsilon_max),
            ("lambda_cd", lambda_cd),
            ("cd_neg_clamp", cd_neg_clamp),
        ):
            if value < 0:
                raise EbmZooError(f"`{name}` must be >= 0, got {value!r}.")
        if int(n_gibbs) < 0 or int(max_sample_steps) < 1:
            raise EbmZooError(
                f"Need n_gibbs >= 0 and max_sample_steps >= 1, got {n_gibbs!r}, {max_sample_steps!r}."
            )
        self.net_name = net
        self.net_config = dict(net_config or {})
        self.phase = phase
        self.main_start_step = int(main_start_step)
        self.time_cutoff, self.epsilon_max = float(time_cutoff), float(epsilon_max)
        self.lambda_cd, self.n_gibbs, self.dt_gibbs = float(lambda_cd), int(n_gibbs), float(dt_gibbs)
        self.cd_neg_clamp, self.cd_trim_fraction = float(cd_neg_clamp), float(cd_trim_fraction)
        self.split_negative = bool(split_negative)
        self.same_temperature_scheduler = bool(same_temperature_scheduler)
        self.ot_resample = bool(ot_resample)
        self.hflip = bool(hflip)
        self.learning_rate, self.beta_1, self.beta_2 = float(learning_rate), float(beta_1), float(beta_2)
        self.adam_epsilon, self.warmup_steps = float(adam_epsilon), int(warmup_steps)
        self.grad_clip = float(grad_clip)
        self.ema_decay, self.warmup_ema_decay = float(ema_decay), float(warmup_ema_decay)
        self.t_end, self.max_sample_steps = float(t_end), int(max_sample_steps)
        self.steps_for(self.t_end)  # validates t_end against max_sample_steps

        self.net = build_potential(net, self.image_size, self.channels, self.net_config, "potential")
        self.ema_net = build_potential(net, self.image_size, self.channels, self.net_config, "potential_ema")
        dummy = tf.zeros([1, *self.image_shape])
        self.net(dummy)
        self.ema_net(dummy)
        self.ema_net.trainable = False
        self.ema_net.set_weights(self.net.get_weights())
        self.built = True
        names = ("loss", "loss_flow", "loss_cd", "energy_data", "energy_synth", "energy_gap", "grad_norm")
        self._trackers = {k: keras.metrics.Mean(name=k) for k in names}

    # ---------------------------------------------------------------------------------------
    def compile(self, optimizer=None, **kwargs):
        """Compiles with the official Adam (β 0.9/0.95, linear warm-up from 0) unless given one.
        Clipping is done on the all-replica gradient in `train_step`: pass no clipnorm."""
        if optimizer is None:
            optimizer = keras.optimizers.Adam(
                learning_rate=WarmupLR(self.learning_rate, self.warmup_steps),
                beta_1=self.beta_1,
                beta_2=self.beta_2,
                epsilon=self.adam_epsilon,
            )
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def steps_for(self, t_end: float) -> int:
        """Number of sampler steps to reach time T = t_end (the official `arange(0, T, dt)`)."""
        steps = int(math.floor(float(t_end) / self.dt_gibbs + 1e-6))
        if float(t_end) < 0 or steps > self.max_sample_steps:
            raise EbmZooError(
                f"t_end={t_end} needs {steps} steps of dt_gibbs={self.dt_gibbs}; it must lie in "
                f"[0, {self.max_sample_steps * self.dt_gibbs:g}] (raise max_sample_steps for longer)."
            )
        return steps

    # ---------------------------------------------------------------------------------------
    def _energy(self, x: tf.Tensor) -> tf.Tensor:
        """V(x) [N] under the EMA weights, x in [−1, 1]."""
        return self.ema_net(x)

    def potential(self, images01, ema: bool = True) -> tf.Tensor:
        """V(x) [N] of images [N, H, W, C] in [0, 1] (EMA weights unless ema=False)."""
        x = self.to_internal(self.check(images01))
        return (self.ema_net if ema else self.net)(x)

    #: ood_score's default "potential" is the EMA potential V(x) = the energy (the Boltzmann density
    #: ∝ exp(−V/ε_max) is highest at low V); "typicality" as in EnergyModel.ood_score.
    ood_methods = ("potential", "typicality")

    # ---------------------------------------------------------------------------------------
    # Training.
    def _flow_pairs(self, x1: tf.Tensor):
        """(noise, data) pairs [B_local, ...] drawn from the global batch's exact OT plan."""
        x1_all = distribute.all_gather(x1)
        g = tf.shape(x1_all)[0]
        x0_all = tf.random.stateless_normal(tf.shape(x1_all), self.step_seed(0))
        perm = dynamics.ot_pairing(x1_all, x0_all)
        if self.ot_resample:  # torchcfm `sample_plan`: pairs drawn from the plan with replacement
            idx = tf.random.stateless_uniform([g], self.step_seed(1), 0, g, dtype=tf.int32)
        else:
            idx = tf.range(g)
        b = tf.shape(x1)[0]
        data = distribute.local_rows(tf.gather(x1_all, idx), b)
        noise = distribute.local_rows(tf.gather(x0_all, tf.gather(perm, idx)), b)
        return noise, data

    def _negatives(self, x_cd: tf.Tensor) -> tf.Tensor:
        """Official `gibbs_sampling_time_sweep` from data (first half of the global batch when
        `split_negative`) or noise, with the training weights (no dropout inside the chain)."""
        b = tf.shape(x_cd)[0]
        noise = distribute.global_normal(tf.shape(x_cd), self.step_seed(3))
        at_data = None
        if self.split_negative:
            rid, r = distribute.replica_context_info()
            rows = rid * b + tf.range(b)  # global row numbers
            from_data = rows < (b * r) // 2
            x_init = tf.where(from_data[:, None, None, None], x_cd, noise)
            if not self.same_temperature_scheduler:
                at_data = from_data
        else:
            x_init = noise
        return dynamics.langevin_negatives(
            lambda x: self.net(x),
            x_init,
            n_gibbs=self.n_gibbs,
            dt_gibbs=self.dt_gibbs,
            epsilon_max=self.epsilon_max,
            time_cutoff=self.time_cutoff,
            seed=self.step_seed(4),
            at_data=at_data,
            max_steps=max(self.n_gibbs, 1),
        )

    def _in_main(self):
        """None when the phase is static; for "warmup_then_main" the tensor switch on the
        (replica-identical, checkpointed) optimizer step: step >= main_start_step."""
        if self.phase != "warmup_then_main":
            return None
        return self.optimizer.iterations >= self.main_start_step

    def _switch(self, in_main, main_fn, warmup_fn):
        """main_fn() in the main phase, warmup_fn() in the warm-up (a `tf.cond` when switched)."""
        if self.phase == "warmup" or self.lambda_cd <= 0:
            return warmup_fn()
        return main_fn() if in_main is None else tf.cond(in_main, main_fn, warmup_fn)

    def loss_terms(self, x_flow: tf.Tensor, x_cd: tf.Tensor, x_neg: tf.Tensor, in_main=None) -> dict:
        """{loss, loss_flow, loss_cd, energy_data, energy_synth, energy_gap} of one step (internal
        images, this replica's rows): L = L_OT (+ the CD term in the main phase)."""
        noise, data_pairs = self._flow_pairs(x_flow)
        t = distribute.global_uniform(tf.shape(data_pairs)[:1], self.step_seed(2))
        loss_flow, _ = dynamics.flow_matching_loss(
            lambda z: self.net(z, seed=self.step_seed(5)), noise, data_pairs, t, self.time_cutoff
        )
        loss_cd = gap = energy_data = energy_synth = tf.zeros([])
        if self.phase != "warmup" and self.lambda_cd > 0:
            zeros = tf.zeros(tf.shape(x_cd)[:1])

            def cd_energies():  # V(x⁺), V(x⁻) [N]; no collectives inside a `tf.cond` branch
                return self.net(x_cd, seed=self.step_seed(6)), self.net(x_neg, seed=self.step_seed(7))

            pos, neg = self._switch(in_main, cd_energies, lambda: (zeros, zeros))
            loss_cd, gap = dynamics.global_cd_term(
                pos, neg, self.lambda_cd, self.cd_neg_clamp, self.cd_trim_fraction
            )  # global-batch statistic: its all-gathers stay outside the switch
            if in_main is not None:
                loss_cd, gap = tf.where(in_main, loss_cd, 0.0), tf.where(in_main, gap, 0.0)
            energy_data, energy_synth = tf.reduce_mean(pos), tf.reduce_mean(neg)
        return {
            "loss": loss_flow + loss_cd,
            "loss_flow": loss_flow,
            "loss_cd": loss_cd,
            "energy_data": energy_data,
            "energy_synth": energy_synth,
            "energy_gap": gap,
        }

    def _clip_and_apply(self, grads, variables) -> tf.Tensor:
        """Official global-norm clipping of the all-replica gradient, then the optimizer; returns
        the norm. V's output bias (and, in the warm-up, any weight only V's level depends on) has
        no gradient through ∇ₓV: a zero gradient leaves it unchanged, as torch skips it."""
        grads = [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables)]
        norm_box = []

        def clip(global_grads):
            clipped, norm = clip_like_torch(global_grads, self.grad_clip)
            norm_box.append(norm)
            return clipped

        apply_gradients(self.optimizer, grads, variables, process=clip)
        return norm_box[0]

    def train_step(self, data):
        """One Energy Matching step (Algorithm 1 in the warm-up, Algorithm 2 in the main phase) on
        images [N, H, W, C] in [0, 1] (this replica's rows)."""
        x = self.to_internal(data[0] if isinstance(data, (tuple, list)) else data)
        if self.hflip:
            flip = distribute.global_uniform(tf.shape(x)[:1], self.step_seed(8)) < 0.5
            x = tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)
        x_flow, x_cd = x[0::2], x[1::2]  # two independent batches, as the official loop draws
        in_main = self._in_main()
        x_neg = self._switch(in_main, lambda: self._negatives(x_cd), lambda: x_cd)  # Langevin x⁻
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x_flow, x_cd, x_neg, in_main)
            scaled = scale_for_replicas(terms["loss"])
        grad_norm = self._clip_and_apply(tape.gradient(scaled, variables), variables)
        if in_main is None:  # EMA rate: warm-up 0.9999, main 0.99 (official)
            decay = self.ema_decay if self.phase == "main" else self.warmup_ema_decay
        else:
            decay = tf.where(in_main, self.ema_decay, self.warmup_ema_decay)
        self._update_ema(decay)
        for k, v in {**terms, "grad_norm": grad_norm}.items():
            self._trackers[k].update_state(v)
        return {k: m.result() for k, m in self._trackers.items()}

    def _update_ema(self, decay) -> None:
        """ema ← d·ema + (1 − d)·θ for every weight (official `ema`), in a cross-replica merge."""
        pairs = [(e.value, w.value) for e, w in zip(self.ema_net.weights, self.net.weights)]

        def merge_fn(strategy, pairs):
            for ema, w in pairs:
                strategy.extended.update(
                    ema, lambda e, v: e.assign(decay * e + (1.0 - decay) * v), args=(w,), group=False
                )

        tf.distribute.get_replica_context().merge_call(merge_fn, args=(pairs,))

    # ---------------------------------------------------------------------------------------
    # Sampling (the EnergyModel contract: `sample`, `inpaint` and the served signatures run
    # `_sample` / `_inpaint` with the same tensors).
    sample_overrides = ("t_end",)

    @property
    def default_num_steps(self) -> int:
        """Heun steps of dt_gibbs to reach T = t_end (the official `arange(0, T, dt)`)."""
        return self.steps_for(self.t_end)

    @property
    def max_num_steps(self) -> int:
        """Static bound of a tensor step count: the constructor's `max_sample_steps`."""
        return self.max_sample_steps

    def check_overrides(self, overrides: dict, where: str = "sample()") -> None:
        """t_end must be reachable within max_sample_steps; num_steps and t_end exclude each other."""
        super().check_overrides(overrides, where)
        if "t_end" in overrides:
            self.steps_for(overrides["t_end"])
            if overrides.get("num_steps") is not None:
                raise EbmZooError("Give either `t_end` (time T) or `num_steps` (T / dt_gibbs), not both.")
        steps = overrides.get("num_steps")
        if isinstance(steps, (int, np.integer)) and not 0 <= int(steps) <= self.max_sample_steps:
            raise EbmZooError(
                f"`num_steps` must lie in [0, {self.max_sample_steps}] (max_sample_steps), got {steps!r}."
            )

    def sample(self, n: int, seed: int | None = None, num_steps: int | None = None, **overrides) -> tf.Tensor:
        """`EnergyModel.sample` (Heun integration up to T, EMA weights); `num_steps` (<=
        max_sample_steps) or the override `t_end` (T) sets the sampling time."""
        self.check_overrides({**overrides, "num_steps": num_steps})
        return super().sample(n, seed, num_steps, **overrides)

    def inpaint(self, images01, mask, seed: int = 0, **overrides) -> tf.Tensor:
        """`EnergyModel.inpaint` (see `_inpaint`), with num_steps / t_end checked as in `sample`."""
        self.check_overrides(overrides, "inpaint()")
        return super().inpaint(images01, mask, seed, **overrides)

    def sampler_settings(self) -> dict:
        return {
            **super().sampler_settings(),
            "solver": "heun",
            "t_end": self.t_end,
            "dt": self.dt_gibbs,
            "epsilon_max": self.epsilon_max,
            "time_cutoff": self.time_cutoff,
        }

    def chain_start(self, n, seed: tf.Tensor) -> tf.Tensor:
        """x(0) ~ N(0, I), [n, H, W, C] (internal [−1, 1] scale)."""
        return distribute.global_normal(tf.concat([[n], list(self.image_shape)], 0), seed)

    def _steps(self, num_steps, overrides: dict) -> tf.Tensor:
        """int32 K: num_steps, or (-1) the steps of T = overrides' t_end or the model's t_end."""
        default = self.steps_for(overrides.get("t_end", self.t_end))
        num_steps = tf.cast(num_steps, tf.int32)
        return tf.where(num_steps < 0, tf.constant(default, tf.int32), num_steps)

    def _sample(self, n, seed: tf.Tensor, num_steps: tf.Tensor, max_steps: int, **overrides) -> tf.Tensor:
        """Internal [−1, 1] samples: `chain_start` moved by `dynamics.heun_flow` for K steps of
        dt_gibbs (noise from fold_in(seed, 1))."""
        x0 = self.chain_start(n, seed)
        steps = self._steps(num_steps, overrides)
        return self.integrate(x0, steps, tf.random.experimental.stateless_fold_in(seed, 1), max_steps)

    def integrate(self, x0, num_steps, seed, max_steps: int | None = None, project=None) -> tf.Tensor:
        """Heun flow of the EMA potential from internal x0 for `num_steps` steps of dt_gibbs."""
        return dynamics.heun_flow(
            self.ema_net,
            x0,
            num_steps=num_steps,
            dt=self.dt_gibbs,
            epsilon_max=self.epsilon_max,
            time_cutoff=self.time_cutoff,
            seed=seed,
            max_steps=self.max_sample_steps if max_steps is None else int(max_steps),
            project=project,
        )

    def _inpaint(self, y: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, **overrides) -> tf.Tensor:
        """Masked generation (internal; mask 1 = generate, 0 = known). Every pixel starts as noise
        x0 = N(0, I) (fold_in(seed, 2)); the unknown ones follow the Heun flow, the known ones the
        training path min(t, 1)·y + (1 − min(t, 1))·x0 (the data from t = 1 on); K = num_steps
        (default: T = t_end), Heun noise from fold_in(seed, 3)."""
        steps = overrides.get("num_steps")
        steps = self._steps(-1 if steps is None else steps, overrides)
        x0 = tf.random.stateless_normal(tf.shape(y), tf.random.experimental.stateless_fold_in(seed, 2))

        def project(t, x):
            s = tf.minimum(t, 1.0)
            return mask * x + (1.0 - mask) * (s * y + (1.0 - s) * x0)

        seed3 = tf.random.experimental.stateless_fold_in(seed, 3)
        return self.integrate(project(tf.constant(0.0), x0), steps, seed3)

    # ---------------------------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "net": self.net_name,
            "net_config": dict(self.net_config),
            "phase": self.phase,
            "main_start_step": self.main_start_step,
            "time_cutoff": self.time_cutoff,
            "epsilon_max": self.epsilon_max,
            "lambda_cd": self.lambda_cd,
            "n_gibbs": self.n_gibbs,
            "dt_gibbs": self.dt_gibbs,
            "cd_neg_clamp": self.cd_neg_clamp,
            "cd_trim_fraction": self.cd_trim_fraction,
            "split_negative": self.split_negative,
            "same_temperature_scheduler": self.same_temperature_scheduler,
            "ot_resample": self.ot_resample,
            "hflip": self.hflip,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "adam_epsilon": self.adam_epsilon,
            "warmup_steps": self.warmup_steps,
            "grad_clip": self.grad_clip,
            "ema_decay": self.ema_decay,
            "warmup_ema_decay": self.warmup_ema_decay,
            "t_end": self.t_end,
            "max_sample_steps": self.max_sample_steps,
        }
