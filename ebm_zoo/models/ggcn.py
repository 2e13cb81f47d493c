r"""wGCN and GGCN — "Generalizing Energy-based Generative ConvNets from Particle Evolution
Perspective" (arXiv:1910.14216). MODELS.md §3; what is our reading of the paper: docs/ggcn.md.

Energy (MODELS.md §1): E(x) = −f_θ(x) + ‖x‖²/(2σ²), with f_θ a bottom-up ConvNet (the score).

**wGCN** (particle flow under W₂, a JKO step): each particle moves by an *implicit* Langevin step

    x_{k+1} = x_k − τ·∇E(x_{k+1}) + √(2τ)·s·z,     τ = δ²/2,  z ~ N(0, I),  s = noise scale,

i.e. x_{k+1} = prox_{τE}(x_k + √(2τ)·s·z). Two solvers with the same fixed point, J iterations each:

  solver="fixed_point"  x⁽ʲ⁺¹⁾ = x_k + √(2τ)sz − τ∇E(x⁽ʲ⁾)            (MODELS.md's text; J = 1 is
                        ordinary Langevin). Converges only when τ·Lip(∇E) < 1 — *stricter* than
                        the explicit step's τ·Lip(∇E) < 2, so on its own it cannot stabilise a
                        step size at which Langevin is unstable (tests/test_wgcn_flow.py shows both).
  solver="split"        x⁽ʲ⁺¹⁾ = (x_k + √(2τ)sz + τ∇f(x⁽ʲ⁾)) / (1 + τ/σ²)   (our default): the
                        Gaussian reference term, whose stiffness 1/σ² is what makes Langevin blow
                        up, is solved in closed form; only ∇f is iterated. With ReLU-type nets f is
                        piecewise linear, ∇f piecewise constant, so this converges once the
                        activation pattern settles, for any τ.

The mean energy of the particles before the first and after every step is recorded (the
"energy dissipation" of the flow) and logged as metrics.

**GGCN** (amortised, symmetrical learning), one iteration on a data batch X:

    h ~ N(0, I)  →  x₀ = G_α(h)  →  K wGCN steps under E_θ  →  x̃ (stop-gradient)
    [optional, off by default] h ← Langevin on p(h | x̃) ∝ exp(−‖x̃ − G(h)‖²/(2s_g²) − ‖h‖²/2)
    θ:  minimise  mean f_θ(x̃) − mean f_θ(X)                  (ML, MODELS.md §1)
    α:  minimise  mean ‖x̃ − G_α(h)‖² / (2s_g²)               (G learns to produce x̃ directly)

both from the same x̃, each with its own optimizer. Sampling: h → G(h) → K steps (K = 0: fast path).

Internal pixel scale: GGCN [−1, 1] (the generator ends in tanh); WGCN the Descriptor's
(`pixel_scale`, `pixel_offset`).
"""

from __future__ import annotations

import math
import threading

import keras
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.base import EnergyModel, scale_for_replicas
from ebm_zoo.models.descriptor import Descriptor
from ebm_zoo.nets.convnets import EnergyConvNet
from ebm_zoo.nets.generators import build_generator, check_latent_shape
from ebm_zoo.sampling.langevin import LangevinResult, langevin
from ebm_zoo.utils.checks import EbmZooError, as_float_tensor, check_choice, check_positive

SOLVERS = ("split", "fixed_point")
FLOW_OVERRIDES = ("num_steps", "step_size", "noise_scale", "implicit_iters", "solver")


# --------------------------------------------------------------------------------------------------
# The wGCN particle flow.
# --------------------------------------------------------------------------------------------------


def check_flow_args(num_steps, step_size, implicit_iters, noise_scale, solver) -> None:
    """Validates wGCN flow settings; raises EbmZooError naming the bad value and the fix."""
    if not isinstance(num_steps, int) or num_steps < 0:
        raise EbmZooError(f"`num_steps` (K) must be an int >= 0 (0 = generator only), got {num_steps!r}.")
    if not step_size > 0:
        raise EbmZooError(
            f"`step_size` δ must be > 0 (the JKO time step is τ = δ²/2 > 0), got {step_size!r}."
        )
    if not isinstance(implicit_iters, int) or implicit_iters < 1:
        raise EbmZooError(
            f"`implicit_iters` (J) must be an int >= 1 (1 = one solver iteration), got {implicit_iters!r}."
        )
    check_positive(noise_scale, "noise_scale", allow_zero=True)
    check_choice(solver, "solver", SOLVERS)


def _score_and_grad(score_fn, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """f(x) [N] and ∇ₓ Σ f, [N, ...]."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        f = score_fn(x)
        total = tf.reduce_sum(f)
    return f, tape.gradient(total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _half_sq_norm(x: tf.Tensor) -> tf.Tensor:
    """½‖x‖² per example, [N]."""
    return 0.5 * tf.reduce_sum(tf.square(tf.reshape(x, [tf.shape(x)[0], -1])), axis=1)


def wgcn_flow(
    score_fn,
    x0: tf.Tensor,
    *,
    ref_sigma: float,
    num_steps: int,
    step_size: float,
    seed: tf.Tensor,
    noise_scale: float = 1.0,
    implicit_iters: int = 1,
    solver: str = "split",
    trace: bool = True,
    clip: tuple[float, float] | None = None,
    mask: tf.Tensor | None = None,
) -> LangevinResult:
    """Runs K implicit (JKO / proximal) Langevin steps under E(x) = −f(x) + ‖x‖²/(2σ²).

    Args:
      score_fn: f, maps x [N, H, W, C] to scores [N].
      x0: initial particles [N, H, W, C] (internal scale).
      ref_sigma: σ of the Gaussian reference.
      num_steps: K >= 0 (Python int; K = 0 returns x0).
      step_size: δ > 0; the JKO time step is τ = δ²/2 and the noise √(2τ)·s·z = δ·s·z.
      seed: [2] stateless seed, same on every replica; step t uses fold_in(seed, t), and each
        replica takes its rows of the global-batch noise (as ebm_zoo.sampling.langevin).
      noise_scale: s (0 = deterministic proximal gradient flow).
      implicit_iters: J solver iterations per step (see the module docstring for both solvers).
      solver: "split" or "fixed_point" (the latter is ebm_zoo.sampling.langevin(implicit_iters=J)).
      trace: record the mean energy before the first and after every step.
      clip: optional (low, high): each step's result is projected onto the pixel box.
      mask: optional {0, 1} tensor broadcastable to x0; only pixels where mask == 1 move.

    Returns:
      LangevinResult(samples [N, H, W, C], energy_trace [K + 1] or None, grad_norm scalar).
    """
    check_flow_args(num_steps, step_size, implicit_iters, noise_scale, solver)
    inv_var = 1.0 / float(ref_sigma) ** 2

    def energy_fn(x):
        return -score_fn(x) + inv_var * _half_sq_norm(x)

    if solver == "fixed_point":
        return langevin(
            energy_fn,
            x0,
            num_steps=num_steps,
            step_size=step_size,
            seed=seed,
            noise_scale=noise_scale,
            implicit_iters=implicit_iters,
            clip=clip,
            mask=mask,
            trace=trace,
        )

    x0 = tf.convert_to_tensor(x0)
    if mask is not None:
        mask = tf.cast(mask, x0.dtype)
    delta = tf.constant(step_size, x0.dtype)
    tau = 0.5 * delta * delta
    shrink = 1.0 / (1.0 + tau * inv_var)  # the exact proximal map of the reference term

    def body(t, x, trace_arr, gnorm):
        kick = x
        if noise_scale != 0:
            z = distribute.global_normal(tf.shape(x), distribute.split_seed(seed, t), x.dtype)
            kick = x + delta * noise_scale * z
        y = x
        for j in range(implicit_iters):  # J is a small static number
            f, grad_f = _score_and_grad(score_fn, y)
            if j == 0:
                trace_arr = trace_arr.write(t, tf.reduce_mean(-f + inv_var * _half_sq_norm(y)))
            y_prev = y
            y = shrink * (kick + tau * grad_f)
            if clip is not None:
                y = tf.clip_by_value(y, clip[0], clip[1])
            if mask is not None:
                y = mask * y + (1.0 - mask) * x
        grad_e = inv_var * y_prev - grad_f  # ∇E at the last iterate (divergence diagnostic)
        gnorm = tf.reduce_mean(tf.norm(tf.reshape(grad_e, [tf.shape(y)[0], -1]), axis=1))
        return t + 1, y, trace_arr, gnorm

    trace_arr = tf.TensorArray(x0.dtype, size=num_steps + 1)
    _, x, trace_arr, gnorm = tf.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (tf.constant(0, tf.int32), x0, trace_arr, tf.zeros([], x0.dtype)),
        maximum_iterations=num_steps,
    )
    energy_trace = None
    if trace:
        trace_arr = trace_arr.write(num_steps, tf.reduce_mean(energy_fn(x)))
        energy_trace = trace_arr.stack()
    return LangevinResult(samples=x, energy_trace=energy_trace, grad_norm=gnorm)


class FlowTraceMetrics:
    """Mean trackers for the energy of the particles along the flow (energy dissipation).

    `flow_e{t:02d}` is the mean energy after t of K steps, at `points` evenly spaced t (t = 0 is
    the start, t = K the end); `flow_rises` is the fraction of the K steps that *raised* the mean
    energy (0 for a monotone dissipation; with noise on a few rises are expected).
    """

    def __init__(self, num_steps: int, points: int):
        self.num_steps = int(num_steps)
        if points <= 0 or num_steps == 0:
            self.steps: list[int] = []
        else:
            n = min(int(points), num_steps + 1)
            grid = [round(i * num_steps / max(n - 1, 1)) for i in range(n)]
            self.steps = sorted(set(grid))
        self.trackers = {t: keras.metrics.Mean(name=f"flow_e{t:02d}") for t in self.steps}
        self.rises = keras.metrics.Mean(name="flow_rises") if num_steps > 0 else None

    @property
    def metrics(self) -> list:
        return list(self.trackers.values()) + ([self.rises] if self.rises is not None else [])

    def update(self, energy_trace: tf.Tensor) -> None:
        """energy_trace: [K + 1] mean energy before the first and after every step."""
        for t, tracker in self.trackers.items():
            tracker.update_state(energy_trace[t])
        if self.rises is not None:
            rose = tf.cast(energy_trace[1:] > energy_trace[:-1], tf.float32)
            self.rises.update_state(tf.reduce_mean(rose))


@keras.saving.register_keras_serializable(package="ebm_zoo")
class WGCN(Descriptor):
    """wGCN: the generative ConvNet (ebm_zoo.models.descriptor) whose particles move by the
    implicit JKO step `wgcn_flow` instead of explicit Langevin (MODELS.md §3).

    Net, pixel scale, chains (noise / zeros / persistent / CD), ML learning and gradient
    processing are the Descriptor's; see its docstring for those arguments.

    Args (beyond Descriptor's):
      tau: the JKO time step τ > 0; sets δ = √(2τ). Give `tau` or `step_size` (δ), not both
        (both are accepted when they agree, as in a saved config).
      implicit_iters: J >= 1 solver iterations per step.
      solver: "split" (default; reference term in closed form) or "fixed_point" (J = 1 is then
        exactly the Descriptor's Langevin step).
      trace_points: how many points of the per-step mean energy become metrics `flow_eXX`.
    """

    family = "wgcn"
    # Energy traces of the flow(s) run by the current train_step, per thread: MirroredStrategy
    # runs the replicas' train_step in separate threads.
    _trace_sinks = threading.local()

    def __init__(
        self,
        tau: float | None = None,
        step_size: float | None = None,
        implicit_iters: int = 3,
        solver: str = "split",
        trace_points: int = 5,
        **kwargs,
    ):
        if tau is not None:
            if not tau > 0:
                raise EbmZooError(f"`tau` (the JKO time step τ) must be > 0, got {tau!r}.")
            delta = math.sqrt(2.0 * float(tau))
            if step_size is not None and not math.isclose(float(step_size), delta, rel_tol=1e-6):
                raise EbmZooError(
                    f"tau={tau} means step_size δ = √(2τ) = {delta:.6g}, but step_size={step_size} was "
                    f"also given; give only one of them."
                )
            step_size = delta
        if step_size is None:
            step_size = 0.3
        check_flow_args(int(kwargs.get("num_steps", 30)), step_size, implicit_iters, 0.0, solver)
        super().__init__(step_size=step_size, **kwargs)
        self.implicit_iters = int(implicit_iters)
        self.solver = solver
        self.trace_points = int(trace_points)
        self._flow_metrics = FlowTraceMetrics(self.num_steps, self.trace_points)

    @property
    def tau(self) -> float:
        return 0.5 * self.step_size**2

    def run_langevin(self, x0, seed, num_steps=None, trace=False, noise_scale=None, mask=None):
        """Internal-scale wGCN flow from x0 (the Descriptor's sampler entry point)."""
        steps = self.num_steps if num_steps is None else int(num_steps)
        res = wgcn_flow(
            self.net,
            x0,
            ref_sigma=self.ref_sigma,
            num_steps=steps,
            step_size=self.step_size,
            seed=seed,
            noise_scale=self.noise_scale if noise_scale is None else noise_scale,
            implicit_iters=self.implicit_iters,
            solver=self.solver,
            clip=self._clip(),
            mask=mask,
            trace=True,
        )
        sink = getattr(self._trace_sinks, "traces", None)
        if sink is not None:
            sink.append(res.energy_trace)
        return res if trace else res._replace(energy_trace=None)

    @property
    def metrics(self):
        return super().metrics + self._flow_metrics.metrics

    def train_step(self, data):
        """The Descriptor's ML/CD iteration with the wGCN flow; also logs the flow's energies."""
        self._trace_sinks.traces = []
        try:
            logs = super().train_step(data)
            (energy_trace,) = self._trace_sinks.traces
        finally:
            self._trace_sinks.traces = None
        self._flow_metrics.update(energy_trace)
        return {**logs, **{m.name: m.result() for m in self._flow_metrics.metrics}}

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            tau=self.tau,
            implicit_iters=self.implicit_iters,
            solver=self.solver,
            trace_points=self.trace_points,
        )
        return cfg


# --------------------------------------------------------------------------------------------------
# GGCN.
# --------------------------------------------------------------------------------------------------


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
      gen_sigma: s_g in the generator loss ‖x̃ − G(h)‖²/(2s_g²) and the latent posterior.
      latent_steps: Langevin steps revising h on p(h | x̃) before the generator update
        (0 = off, the default) [reconstruction].
      latent_step_size: δ_h of that Langevin.
      energy_lr, gen_lr, beta_1, beta_2: Adam for f_θ (the main optimizer) and G_α.
      score_reg: weight of mean(f(X)² + f(x̃)²), a guard against score blow-up (0 = off).
      trace_points: how many points of the flow's energy trace become metrics (0 = none).
    """

    family = "ggcn"
    internal_range = (-1.0, 1.0)

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
        gen_sigma: float = 0.3,
        latent_steps: int = 0,
        latent_step_size: float = 0.1,
        energy_lr: float = 1e-4,
        gen_lr: float = 3e-4,
        beta_1: float = 0.5,
        beta_2: float = 0.999,
        score_reg: float = 0.0,
        trace_points: int = 5,
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
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._flow_metrics = FlowTraceMetrics(self.num_steps, self.trace_points)

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
    # Sampling: h → G(h) → K wGCN steps.
    def _flow_settings(self, overrides: dict) -> dict:
        unknown = sorted(set(overrides) - set(FLOW_OVERRIDES))
        if unknown:
            raise EbmZooError(f"Unknown sampler setting(s) {unknown}; valid: {', '.join(FLOW_OVERRIDES)}.")
        s = {
            "num_steps": self.num_steps,
            "step_size": self.step_size,
            "noise_scale": self.noise_scale,
            "implicit_iters": self.implicit_iters,
            "solver": self.solver,
        }
        s.update(overrides)
        check_flow_args(s["num_steps"], s["step_size"], s["implicit_iters"], s["noise_scale"], s["solver"])
        return s

    def flow(self, x: tf.Tensor, seed: tf.Tensor, trace: bool = False, **overrides) -> LangevinResult:
        """K wGCN steps under E from internal-scale particles x [N, H, W, C]."""
        s = self._flow_settings(overrides)
        return wgcn_flow(self.score, x, ref_sigma=self.ref_sigma, seed=seed, trace=trace, **s)

    def sample(self, n: int, seed: int | None = None, **overrides) -> tf.Tensor:
        """Draws n images [n, H, W, C] in [0, 1]: h ~ N(0, I) → G(h) → K wGCN steps.

        overrides: num_steps (K >= 0; 0 = generator only, the fast path), step_size, noise_scale,
        implicit_iters, solver.
        """
        self._flow_settings(overrides)  # validate eagerly, before tracing
        return super().sample(n, seed=seed, **overrides)

    def _sample(self, n: int, seed: tf.Tensor, **overrides) -> tf.Tensor:
        s = self._flow_settings(overrides)
        h = tf.random.stateless_normal([n, *self.latent_shape], seed)
        x0 = self.generator(h, training=False)
        if s["num_steps"] == 0:
            return x0
        return self.flow(x0, distribute.split_seed(seed, 1), **overrides).samples

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
        for name, value in values.items():
            self._trackers[name].update_state(value)
        if flow.energy_trace is not None:
            self._flow_metrics.update(flow.energy_trace)
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
            "gen_sigma": self.gen_sigma,
            "latent_steps": self.latent_steps,
            "latent_step_size": self.latent_step_size,
            "energy_lr": self.energy_lr,
            "gen_lr": self.gen_lr,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "score_reg": self.score_reg,
            "trace_points": self.trace_points,
        }
