r"""GGCN — generator-guided generative ConvNet (arXiv:1910.14216; MODELS.md §3; docs/ggcn.md).

Energy E(x) = −f_θ(x) + ‖x‖²/(2σ²); particles move by the wGCN flow (ebm_zoo.models.wgcn,
ebm_zoo.sampling.langevin.wgcn_flow). One iteration on a data batch X:

    h ~ N(0, I)  →  x₀ = G_α(h)  →  K wGCN steps under E_θ  →  x̃ (stop-gradient)
    [optional, off by default] h ← Langevin on p(h | x̃) ∝ exp(−‖x̃ − G(h)‖²/(2s_g²) − ‖h‖²/2)
    θ:  minimise  mean f_θ(x̃) − mean f_θ(X)                  (ML, MODELS.md §1)
    α:  minimise  mean ‖x̃ − G_α(h)‖² / (2s_g²)               (G learns to produce x̃ directly)

both from the same x̃, each with its own optimizer. Sampling: h → G(h) → K steps (K = 0: fast path).

`sampler="mala"|"hmc"` (config, or a `sample()` override) replaces the K wGCN refinement steps
(training and sampling) by K Metropolis-adjusted steps on the flow's stationary target
exp(−E/s²) with step sδ (ebm_zoo.sampling.family_sampler); the implicit step has no proposal
density to adjust, so `implicit_iters` / `solver` do not apply and are refused as overrides
with them. The latent revision (`latent_steps`) stays unadjusted Langevin.
Internal pixel scale [−1, 1] (the generator ends in tanh).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.base import EnergyModel, scale_for_replicas
from ebm_zoo.models.wgcn.wgcn_model import (
    FlowTraceMetrics,
    check_flow_args,
    check_max_backtracks,
    warn_guard_replaced,
)
from ebm_zoo.nets.convnets import EnergyConvNet
from ebm_zoo.nets.generators import build_generator, check_latent_shape
from ebm_zoo.sampling import (
    METROPOLIS,
    SAMPLERS,
    check_family_sampler,
    make_family_sampler,
    options_for,
    run_family_chain,
)
from ebm_zoo.sampling.langevin import LangevinResult, langevin, wgcn_flow
from ebm_zoo.utils.checks import EbmZooError, as_float_tensor, check_positive

FLOW_OVERRIDES = ("step_size", "noise_scale", "implicit_iters", "solver")
#: Flow settings that only the implicit (JKO) flow has; meaningless for MALA/HMC.
JKO_ONLY = ("implicit_iters", "solver")


def _half_sq_norm(x: tf.Tensor) -> tf.Tensor:
    """½‖x‖² per example, [N]."""
    return 0.5 * tf.reduce_sum(tf.square(tf.reshape(x, [tf.shape(x)[0], -1])), axis=1)


@keras.saving.register_keras_serializable(package="ebm_zoo")
class GGCN(EnergyModel):
    """GGCN: energy net f_θ + generator G_α, amortised and symmetrical learning (MODELS.md §3).

    Args:
      image_size, channels, seed: see EnergyModel.
      latent_shape: [s, s, c] spatial code or [d] vector code of h ~ N(0, I).
      gen_filters, gen_min_filters, gen_base_size, gen_upsample, gen_norm, gen_activation:
        the generator (ebm_zoo.nets.generators.build_generator).
      score_layers, score_top, score_activation: the energy ConvNet f_θ
        (ebm_zoo.nets.EnergyConvNet: [[filters, kernel, stride], ...], "dense" or "sum" top).
      ref_sigma: σ of the Gaussian reference in E(x) = −f(x) + ‖x‖²/(2σ²) (scale [−1, 1]).
      num_steps: K wGCN refinement steps of G(h) per iteration and by default when sampling.
      step_size: δ (τ = δ²/2).
      implicit_iters: J solver iterations per step.
      noise_scale: s.
      solver: "split" (reference term in closed form) or "fixed_point"; see module docstring.
      max_backtracks: the flow's step guard (ebm_zoo.sampling.langevin), 0 = off (default); m >= 1
        halves δ per chain, up to m times, while a refinement step's drift would raise that
        chain's energy, in training and sampling. Logged as guard_fires / guard_backtracks /
        guard_rejects. Only for sampler="langevin" (the implicit flow).
      gen_sigma: s_g in the generator loss ‖x̃ − G(h)‖²/(2s_g²) and the latent posterior.
      latent_steps: Langevin steps revising h on p(h | x̃) before the generator update
        (0 = off, the default) [reconstruction].
      latent_step_size: δ_h of that Langevin.
      energy_lr, gen_lr, beta_1, beta_2: Adam for f_θ (the main optimizer) and G_α.
      score_reg: weight of mean(f(X)² + f(x̃)²), a guard against score blow-up (0 = off).
      trace_points: how many points of the flow's energy trace become metrics (0 = none).
      sampler: "langevin" (default: the wGCN flow) or "mala"/"hmc" (see the module docstring).
      sampler_options: settings of "mala"/"hmc" (ebm_zoo.sampling.FAMILY_SAMPLER_OPTIONS).
    """

    family = "ggcn"
    internal_range = (-1.0, 1.0)
    sample_overrides = (*FLOW_OVERRIDES, "sampler", "sampler_options")

    def __init__(
        self,
        image_size: int = 16,
        channels: int = 1,
        seed: int = 0,
        latent_shape=(4, 4, 8),
        gen_filters: int = 64,
        gen_min_filters: int = 16,
        gen_base_size: int = 4,
        gen_upsample: str = "transpose",
        gen_norm: str = "none",
        gen_activation: str = "leaky_relu",
        score_layers=((32, 3, 2), (64, 3, 2), (64, 3, 1)),
        score_top: str = "dense",
        score_activation: str = "leaky_relu",
        ref_sigma: float = 1.0,
        num_steps: int = 10,
        step_size: float = 0.1,
        implicit_iters: int = 2,
        noise_scale: float = 1.0,
        solver: str = "split",
        max_backtracks: int = 0,
        gen_sigma: float = 0.3,
        latent_steps: int = 0,
        latent_step_size: float = 0.1,
        energy_lr: float = 1e-4,
        gen_lr: float = 3e-4,
        beta_1: float = 0.5,
        beta_2: float = 0.999,
        score_reg: float = 0.0,
        trace_points: int = 5,
        sampler: str = "langevin",
        sampler_options: dict | None = None,
        **kwargs,
    ):
        super().__init__(image_size=image_size, channels=channels, seed=seed, **kwargs)
        check_flow_args(num_steps, step_size, implicit_iters, noise_scale, solver)
        check_positive(ref_sigma, "ref_sigma")
        check_positive(gen_sigma, "gen_sigma")
        check_positive(latent_step_size, "latent_step_size")
        check_positive(energy_lr, "energy_lr")
        check_positive(gen_lr, "gen_lr")
        check_positive(score_reg, "score_reg", allow_zero=True)
        self.max_backtracks = check_max_backtracks(max_backtracks)
        if self.max_backtracks and sampler in METROPOLIS:
            raise EbmZooError(
                f"max_backtracks={max_backtracks!r} guards the implicit wGCN flow, which "
                f"sampler={sampler!r} does not run (its Metropolis test already rejects bad steps); "
                "use max_backtracks=0 or sampler='langevin'."
            )
        if not isinstance(latent_steps, int) or latent_steps < 0:
            raise EbmZooError(f"`latent_steps` must be an int >= 0 (0 = off), got {latent_steps!r}.")
        self.latent_shape = [int(v) for v in latent_shape]
        check_latent_shape(self.latent_shape, self.image_size, gen_base_size)
        self.gen_filters, self.gen_min_filters = int(gen_filters), int(gen_min_filters)
        self.gen_base_size, self.gen_upsample = int(gen_base_size), gen_upsample
        self.gen_norm, self.gen_activation = gen_norm, gen_activation
        self.score_layers = [[int(v) for v in spec] for spec in score_layers]
        self.score_top, self.score_activation = score_top, score_activation
        self.ref_sigma, self.num_steps, self.step_size = float(ref_sigma), int(num_steps), float(step_size)
        self.implicit_iters, self.noise_scale, self.solver = int(implicit_iters), float(noise_scale), solver
        self.gen_sigma, self.latent_steps = float(gen_sigma), int(latent_steps)
        self.latent_step_size = float(latent_step_size)
        self.energy_lr, self.gen_lr, self.beta_1, self.beta_2 = (
            float(energy_lr),
            float(gen_lr),
            beta_1,
            beta_2,
        )
        self.score_reg, self.trace_points = float(score_reg), int(trace_points)
        self.sampler = sampler
        self.sampler_options = self._checked_sampler(sampler, sampler_options, {}, "GGCN")

        try:
            self.score_net = EnergyConvNet(
                layers=self.score_layers, top=score_top, activation=score_activation, name="f"
            )
        except ValueError as e:
            raise EbmZooError(
                f"Bad energy net settings (score_layers / score_top / score_activation): {e}"
            ) from e
        self.generator = build_generator(
            self.latent_shape,
            self.image_size,
            self.channels,
            filters=self.gen_filters,
            min_filters=self.gen_min_filters,
            base_size=self.gen_base_size,
            upsample=gen_upsample,
            norm=gen_norm,
            activation=gen_activation,
            output="tanh",
        )
        self.gen_optimizer = None
        names = ["loss", "gen_loss", "energy_data", "energy_synth", "energy_gap", "gen_mse", "grad_norm"]
        if sampler in METROPOLIS:
            names += ["accept_rate", "sampler_energy"]
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._flow_metrics = FlowTraceMetrics(
            self.num_steps, self.trace_points, guard=self.max_backtracks > 0 and sampler not in METROPOLIS
        )

    # ----------------------------------------------------------------------------------------
    # Energy and generator.
    def score(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """f_θ(x) [N] of internal-scale images x [N, H, W, C] in [−1, 1]."""
        return self.score_net(x, training=training)

    def _energy(self, x: tf.Tensor) -> tf.Tensor:
        return -self.score(x) + _half_sq_norm(x) / self.ref_sigma**2

    def generate(self, latents) -> tf.Tensor:
        """G_α(h) → images [N, H, W, C] in [0, 1], no refinement. latents: [N, *latent_shape]."""
        h = as_float_tensor(latents, "latents")
        if h.shape.rank is None or list(h.shape[1:]) != self.latent_shape:
            raise EbmZooError(
                f"`latents` has shape {tuple(h.shape)} but this GGCN's latent codes have shape "
                f"[N, {', '.join(map(str, self.latent_shape))}] (latent_shape={self.latent_shape})."
            )
        return self.from_internal(self.generator(h, training=False))

    # ----------------------------------------------------------------------------------------
    # Sampling: h → G(h) → K wGCN steps. Overrides of sample(): step_size, noise_scale,
    # implicit_iters, solver (validated once, in check_overrides).
    @property
    def default_num_steps(self) -> int:
        return self.num_steps

    def check_overrides(self, overrides: dict, where: str = "sample()") -> None:
        super().check_overrides(overrides, where)
        if overrides:
            s = self._flow_settings(overrides)
            check_flow_args(0, s["step_size"], s["implicit_iters"], s["noise_scale"], s["solver"])
        if "sampler" in overrides or "sampler_options" in overrides:
            name = overrides.get("sampler") or self.sampler
            opts = options_for(name, self.sampler, self.sampler_options, overrides.get("sampler_options"))
            self._checked_sampler(name, opts, overrides, f"GGCN.{where}")

    def _checked_sampler(self, sampler, options, overrides: dict, where: str) -> dict:
        """Validated sampler_options of `sampler` with the flow settings (model's + overrides)."""
        options = check_family_sampler(sampler, options, choices=SAMPLERS, where=where)
        if sampler in METROPOLIS:
            jko = sorted(k for k in JKO_ONLY if overrides.get(k) is not None)
            if jko:
                raise EbmZooError(
                    f"{where}: {', '.join(f'{k}={overrides[k]!r}' for k in jko)} set(s) the implicit "
                    f"wGCN flow, which sampler={sampler!r} does not run (it Metropolis-adjusts an "
                    f"explicit step on the same target); drop {', '.join(jko)} or use sampler='langevin'."
                )
            s = self._flow_settings(overrides)
            make_family_sampler(
                sampler, options, step_size=s["step_size"], noise_scale=s["noise_scale"], clip=None
            )
        return options

    def _flow_settings(self, overrides: dict) -> dict:
        """The flow's settings: the model's, replaced by (already validated) overrides."""
        s = {k: getattr(self, k) for k in FLOW_OVERRIDES}
        s.update({k: v for k, v in overrides.items() if k in FLOW_OVERRIDES and v is not None})
        return s

    def sampler_settings(self) -> dict:
        out = {**super().sampler_settings(), **self._flow_settings({}), "ref_sigma": self.ref_sigma}
        if self.max_backtracks:
            out["max_backtracks"] = self.max_backtracks
        out["sampler"] = self.sampler
        if self.sampler_options:
            out["sampler_options"] = dict(self.sampler_options)
        return out

    def flow(self, x, seed, trace=False, num_steps=None, max_steps=None, **overrides) -> LangevinResult:
        """K wGCN steps under E from internal-scale particles x [N, H, W, C] (K = num_steps, an
        int or an int32 tensor with a static `max_steps`; default: the model's K)."""
        steps = self.num_steps if num_steps is None else num_steps
        if max_steps is None:
            max_steps = max(int(steps), 1)
        name = overrides.pop("sampler", None) or self.sampler
        options = overrides.pop("sampler_options", None)
        s = self._flow_settings(overrides)
        warn_guard_replaced(self.max_backtracks, name)
        if name in METROPOLIS:
            return run_family_chain(
                name,
                options_for(name, self.sampler, self.sampler_options, options),
                self._energy,
                x,
                step_size=s["step_size"],
                noise_scale=s["noise_scale"],
                clip=None,
                num_steps=steps,
                max_steps=max_steps,
                seed=seed,
                trace=trace,
            )
        return wgcn_flow(
            self.score,
            x,
            ref_sigma=self.ref_sigma,
            seed=seed,
            trace=trace,
            num_steps=steps,
            max_steps=max_steps,
            max_backtracks=self.max_backtracks,
            **s,
        )

    def chain_start(self, n, seed) -> tf.Tensor:
        """G(h), h ~ N(0, I) [n, *latent_shape]: internal images [n, H, W, C] in [−1, 1]."""
        h = distribute.global_normal(tf.concat([[n], self.latent_shape], 0), seed)
        return self.generator(h, training=False)

    def _sample(self, n, seed, num_steps, max_steps, **overrides) -> tf.Tensor:
        x0 = self.chain_start(n, seed)
        k = self.steps_or_default(num_steps)
        return self.flow(
            x0, distribute.split_seed(seed, 1), num_steps=k, max_steps=max_steps, **overrides
        ).samples

    # ----------------------------------------------------------------------------------------
    # Training.
    def compile(self, optimizer=None, gen_optimizer=None, **kwargs):
        """Adam(energy_lr) for f_θ (the main optimizer: its step counts iterations and seeds the
        RNG) and Adam(gen_lr) for G_α unless given."""
        if optimizer is None:
            optimizer = keras.optimizers.Adam(self.energy_lr, beta_1=self.beta_1, beta_2=self.beta_2)
        if gen_optimizer is None:
            gen_optimizer = keras.optimizers.Adam(self.gen_lr, beta_1=self.beta_1, beta_2=self.beta_2)
        self.gen_optimizer = gen_optimizer
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, **kwargs)

    def build_all(self) -> None:
        self.score_net(tf.zeros([1, *self.image_shape]))
        self.generator(tf.zeros([1, *self.latent_shape]))
        self.built = True
        if getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.score_net.trainable_variables)
        if self.gen_optimizer is not None:
            self.gen_optimizer.build(self.generator.trainable_variables)

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        if self.gen_optimizer is not None:
            items["gen_optimizer"] = self.gen_optimizer
        return items

    @property
    def metrics(self):
        return list(self._trackers.values()) + self._flow_metrics.metrics

    def revise_latents(self, h: tf.Tensor, x_tilde: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Langevin on p(h | x̃) ∝ exp(−‖x̃ − G(h)‖²/(2s_g²) − ‖h‖²/2) [reconstruction]."""

        def posterior_energy(hh):
            resid = x_tilde - self.generator(hh, training=False)
            return _half_sq_norm(resid) / self.gen_sigma**2 + _half_sq_norm(hh)

        return langevin(
            posterior_energy, h, num_steps=self.latent_steps, step_size=self.latent_step_size, seed=seed
        ).samples

    def energy_update(self, x_data: tf.Tensor, x_tilde: tf.Tensor):
        """One step on θ: minimise mean f(x̃) − mean f(X) (+ score_reg·mean(f(X)² + f(x̃)²)).

        x_data, x_tilde: [b, H, W, C] internal scale, this replica's rows.
        Returns (f(X) [b], f(x̃) [b], the ML loss before regularisation).
        """
        with tf.GradientTape() as tape:
            score_data = self.score(x_data, training=True)
            score_synth = self.score(x_tilde, training=True)
            loss = tf.reduce_mean(score_synth) - tf.reduce_mean(score_data)
            reg = self.score_reg * tf.reduce_mean(tf.square(score_data) + tf.square(score_synth))
            scaled = scale_for_replicas(loss + reg)
        score_vars = self.score_net.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, score_vars), score_vars))
        return score_data, score_synth, loss

    def generator_update(self, h: tf.Tensor, x_tilde: tf.Tensor):
        """One step on α: minimise mean ‖x̃ − G_α(h)‖² / (2s_g²), G learns to produce x̃ itself.

        h: [b, *latent_shape]; x_tilde: [b, H, W, C] internal scale.
        Returns (the loss, per-example squared errors ‖x̃ − G(h)‖² [b] before the step).
        """
        with tf.GradientTape() as tape:
            x_gen = self.generator(h, training=True)
            sq_err = 2.0 * _half_sq_norm(x_tilde - x_gen)
            gen_loss = tf.reduce_mean(sq_err) / (2.0 * self.gen_sigma**2)
            scaled = scale_for_replicas(gen_loss)
        gen_vars = self.generator.trainable_variables
        self.gen_optimizer.apply_gradients(zip(tape.gradient(scaled, gen_vars), gen_vars))
        return gen_loss, sq_err

    def train_step(self, data):
        """One GGCN iteration on a batch of [0, 1] images (this replica's rows):

        h ~ N(0, I) → x₀ = G(h) → K wGCN steps → x̃ (stop-gradient) → [h revised on p(h | x̃)]
        → θ step (data vs x̃) → α step (x̃ vs G(h)). Noise is drawn for the global batch.
        """
        images = data[0] if isinstance(data, (tuple, list)) else data
        x_data = self.to_internal(images)
        batch = tf.shape(x_data)[0]
        seed_h, seed_flow, seed_post = (self.step_seed(i) for i in range(3))

        h = distribute.global_normal(tf.concat([[batch], self.latent_shape], 0), seed_h)
        x_gen0 = self.generator(h, training=True)
        flow = self.flow(x_gen0, seed_flow, trace=True)
        x_tilde = tf.stop_gradient(flow.samples)
        if self.latent_steps > 0:
            h = tf.stop_gradient(self.revise_latents(h, x_tilde, seed_post))

        score_data, score_synth, loss = self.energy_update(x_data, x_tilde)
        gen_loss, sq_err = self.generator_update(h, x_tilde)

        energy_data = tf.reduce_mean(-score_data + _half_sq_norm(x_data) / self.ref_sigma**2)
        energy_synth = tf.reduce_mean(-score_synth + _half_sq_norm(x_tilde) / self.ref_sigma**2)
        values = {
            "loss": loss,
            "gen_loss": gen_loss,
            "energy_data": energy_data,
            "energy_synth": energy_synth,
            "energy_gap": energy_synth - energy_data,
            "gen_mse": tf.reduce_mean(sq_err) / float(self.image_size**2 * self.channels),
            "grad_norm": flow.grad_norm,
        }
        if self.sampler in METROPOLIS:
            values["accept_rate"] = tf.reduce_mean(flow.accept_rate)
            values["sampler_energy"] = tf.reduce_mean(flow.energy)
        for name, value in values.items():
            self._trackers[name].update_state(value)
        if flow.energy_trace is not None:
            self._flow_metrics.update(flow.energy_trace, getattr(flow, "guard", None))
        return {m.name: m.result() for m in self.metrics}

    # ----------------------------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "latent_shape": list(self.latent_shape),
            "gen_filters": self.gen_filters,
            "gen_min_filters": self.gen_min_filters,
            "gen_base_size": self.gen_base_size,
            "gen_upsample": self.gen_upsample,
            "gen_norm": self.gen_norm,
            "gen_activation": self.gen_activation,
            "score_layers": [list(spec) for spec in self.score_layers],
            "score_top": self.score_top,
            "score_activation": self.score_activation,
            "ref_sigma": self.ref_sigma,
            "num_steps": self.num_steps,
            "step_size": self.step_size,
            "implicit_iters": self.implicit_iters,
            "noise_scale": self.noise_scale,
            "solver": self.solver,
            "max_backtracks": self.max_backtracks,
            "gen_sigma": self.gen_sigma,
            "latent_steps": self.latent_steps,
            "latent_step_size": self.latent_step_size,
            "energy_lr": self.energy_lr,
            "gen_lr": self.gen_lr,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "score_reg": self.score_reg,
            "trace_points": self.trace_points,
            "sampler": self.sampler,
            "sampler_options": dict(self.sampler_options),
        }
