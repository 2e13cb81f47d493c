r"""wGCN — the generative ConvNet whose particles move by an implicit (JKO) Langevin step,
"Generalizing Energy-based Generative ConvNets from Particle Evolution Perspective"
(arXiv:1910.14216); MODELS.md §3; our reading of the paper: docs/ggcn.md.

Energy (MODELS.md §1): E(x) = −f_θ(x) + ‖x‖²/(2σ²), f_θ a bottom-up ConvNet (the score). Each
particle moves by

    x_{k+1} = x_k − τ·∇E(x_{k+1}) + √(2τ)·s·z,     τ = δ²/2,  z ~ N(0, I),  s = noise scale,

solved by J iterations of the "split" (default: reference term in closed form) or "fixed_point"
solver — the loop is ebm_zoo.sampling.langevin (`wgcn_flow`), where both solvers are described.
The mean energy of the particles before the first and after every step (the flow's "energy
dissipation") is logged as metrics by `FlowTraceMetrics`.

`sampler="mala"|"hmc"`: the implicit step has no tractable proposal density, so it cannot be
Metropolis-adjusted itself. These samplers replace the flow by an explicit Metropolis-adjusted
chain on the flow's stationary target exp(−E/s²) (step sδ, box = the pixel range), exact for any
step; `implicit_iters` and `solver` are settings of the flow and do not apply to them.
sampler="langevin" (default) is the JKO flow, unchanged.
"""

from __future__ import annotations

import math
import threading
import warnings

import keras
import tensorflow as tf

from ebm_zoo.models.descriptor.descriptor_model import Descriptor
from ebm_zoo.sampling import METROPOLIS
from ebm_zoo.sampling.langevin import SOLVERS, wgcn_flow
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_count, check_positive


def check_solver_args(implicit_iters, solver) -> None:
    """Validates the JKO solver settings J and solver name (EbmZooError naming the value)."""
    if not isinstance(implicit_iters, int) or implicit_iters < 1:
        raise EbmZooError(
            f"`implicit_iters` (J) must be an int >= 1 (1 = one solver iteration), got {implicit_iters!r}."
        )
    check_choice(solver, "solver", SOLVERS)


def check_step_size(step_size) -> None:
    if not step_size > 0:
        raise EbmZooError(
            f"`step_size` δ must be > 0 (the JKO time step is τ = δ²/2 > 0), got {step_size!r}."
        )


def check_flow_args(num_steps, step_size, implicit_iters, noise_scale, solver) -> None:
    """Validates wGCN flow settings; raises EbmZooError naming the bad value and the fix."""
    if not isinstance(num_steps, int) or num_steps < 0:
        raise EbmZooError(f"`num_steps` (K) must be an int >= 0 (0 = generator only), got {num_steps!r}.")
    check_step_size(step_size)
    check_solver_args(implicit_iters, solver)
    check_positive(noise_scale, "noise_scale", allow_zero=True)


def warn_guard_replaced(max_backtracks: int, sampler: str) -> None:
    """Says (once per trace) that a Metropolis sampler override runs without the flow's guard."""
    if max_backtracks and sampler in METROPOLIS:
        warnings.warn(
            f"This model's flow has a step guard (max_backtracks={max_backtracks}), but "
            f"sampler={sampler!r} runs the {sampler.upper()} chain instead: no step is halved; its "
            "Metropolis accept/reject is what rejects energy-raising moves. Leave out `sampler` "
            "to sample with the guarded flow.",
            UserWarning,
            stacklevel=4,
        )


def check_max_backtracks(max_backtracks) -> int:
    """The step guard's m (ebm_zoo.sampling.langevin): an int in [0, 20], 0 = off."""
    try:
        return check_count(max_backtracks, "max_backtracks", minimum=0, maximum=20)
    except EbmZooError as e:
        raise EbmZooError(
            f"{e} It is the flow's step guard: 0 = off, m >= 1 halves δ per chain up to m times "
            "while a step's drift would raise that chain's energy (e.g. max_backtracks=3)."
        ) from None


class FlowTraceMetrics:
    """Mean trackers for the energy of the particles along the flow (energy dissipation).

    `flow_e{t:02d}` is the mean energy after t of K steps, at `points` evenly spaced t (t = 0 is
    the start, t = K the end); `flow_rises` is the fraction of the K steps that *raised* the mean
    energy (0 for a monotone dissipation; with noise on a few rises are expected).
    With `guard=True` (the step guard is on): `guard_fires` is the fraction of chain-steps whose
    drift at the full δ would have raised the chain's energy, `guard_backtracks` the mean number
    of δ halvings per chain-step, `guard_rejects` the fraction of chain-steps whose drift was
    dropped after m halvings.
    """

    def __init__(self, num_steps: int, points: int, guard: bool = False):
        self.num_steps = int(num_steps)
        if points <= 0 or num_steps == 0:
            self.steps: list[int] = []
        else:
            n = min(int(points), num_steps + 1)
            grid = [round(i * num_steps / max(n - 1, 1)) for i in range(n)]
            self.steps = sorted(set(grid))
        self.trackers = {t: keras.metrics.Mean(name=f"flow_e{t:02d}") for t in self.steps}
        self.rises = keras.metrics.Mean(name="flow_rises") if num_steps > 0 else None
        names = ("guard_fires", "guard_backtracks", "guard_rejects")
        self.guard = {n: keras.metrics.Mean(name=n) for n in names} if guard and num_steps > 0 else {}

    @property
    def metrics(self) -> list:
        rises = [self.rises] if self.rises is not None else []
        return list(self.trackers.values()) + rises + list(self.guard.values())

    def update(self, energy_trace: tf.Tensor, guard_stats=None) -> None:
        """energy_trace: [K + 1] mean energy before the first and after every step;
        guard_stats: the flow's GuardStats (per-chain counts over the K steps) when guarded."""
        for t, tracker in self.trackers.items():
            tracker.update_state(energy_trace[t])
        if self.rises is not None:
            rose = tf.cast(energy_trace[1:] > energy_trace[:-1], tf.float32)
            self.rises.update_state(tf.reduce_mean(rose))
        if self.guard and guard_stats is not None:
            per_step = 1.0 / self.num_steps
            self.guard["guard_fires"].update_state(tf.reduce_mean(guard_stats.fires) * per_step)
            self.guard["guard_backtracks"].update_state(tf.reduce_mean(guard_stats.backtracks) * per_step)
            self.guard["guard_rejects"].update_state(tf.reduce_mean(guard_stats.rejects) * per_step)


@keras.saving.register_keras_serializable(package="ebm_zoo")
class WGCN(Descriptor):
    """wGCN: the generative ConvNet (ebm_zoo.models.descriptor) whose particles move by the
    implicit JKO step (ebm_zoo.sampling.langevin.wgcn_flow) instead of explicit Langevin (MODELS.md §3).

    Net, pixel scale, chains (noise / zeros / persistent / CD), ML learning and gradient
    processing are the Descriptor's; see its docstring for those arguments.

    Args (beyond Descriptor's):
      tau: the JKO time step τ > 0; sets δ = √(2τ). Give `tau` or `step_size` (δ), not both
        (both are accepted when they agree, as in a saved config).
      implicit_iters: J >= 1 solver iterations per step.
      solver: "split" (default; reference term in closed form) or "fixed_point" (J = 1 is then
        exactly the Descriptor's Langevin step).
      trace_points: how many points of the per-step mean energy become metrics `flow_eXX`.
      max_backtracks: the flow's step guard (ebm_zoo.sampling.langevin), 0 = off (default);
        m >= 1 halves δ per chain, up to m times, while a step's drift would raise that chain's
        energy. Logged as guard_fires / guard_backtracks / guard_rejects. Only for
        sampler="langevin" (the implicit flow).
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
        max_backtracks: int = 0,
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
        check_solver_args(implicit_iters, solver)
        super().__init__(step_size=step_size, **kwargs)  # validates δ and the Descriptor's settings
        self.implicit_iters = int(implicit_iters)
        self.solver = solver
        self.trace_points = int(trace_points)
        self.max_backtracks = check_max_backtracks(max_backtracks)
        if self.max_backtracks and self.sampler in METROPOLIS:
            raise EbmZooError(
                f"max_backtracks={max_backtracks!r} guards the implicit wGCN flow, which "
                f"sampler={self.sampler!r} does not run (its Metropolis test already rejects bad "
                "steps); use max_backtracks=0 or sampler='langevin'."
            )
        self._flow_metrics = FlowTraceMetrics(
            self.num_steps, self.trace_points, guard=self.max_backtracks > 0
        )

    @property
    def tau(self) -> float:
        return 0.5 * self.step_size**2

    def run_langevin(
        self,
        x0,
        seed,
        num_steps=None,
        trace=False,
        noise_scale=None,
        mask=None,
        max_steps=None,
        sampler=None,
        sampler_options=None,
    ):
        """Internal-scale wGCN flow from x0 (the Descriptor's sampler entry point), or the
        MALA/HMC chain on its target for sampler "mala"/"hmc"; num_steps an int or an int32
        tensor with a static `max_steps`."""
        steps = self.num_steps if num_steps is None else num_steps
        warn_guard_replaced(self.max_backtracks, sampler or self.sampler)
        if (sampler or self.sampler) in METROPOLIS:
            res = super().run_langevin(
                x0, seed, steps, True, noise_scale, mask, max_steps, sampler, sampler_options
            )
            sink = getattr(self._trace_sinks, "traces", None)
            if sink is not None:
                sink.append((res.energy_trace, None))
            return res if trace else res._replace(energy_trace=None)
        res = wgcn_flow(
            self.net,
            x0,
            ref_sigma=self.ref_sigma,
            num_steps=steps,
            max_steps=max_steps if max_steps is not None else max(int(steps), 1),
            step_size=self.step_size,
            seed=seed,
            noise_scale=self.noise_scale if noise_scale is None else noise_scale,
            implicit_iters=self.implicit_iters,
            solver=self.solver,
            clip=self._clip(),
            mask=mask,
            trace=True,
            max_backtracks=self.max_backtracks,
        )
        sink = getattr(self._trace_sinks, "traces", None)
        if sink is not None:
            sink.append((res.energy_trace, res.guard))
        return res if trace else res._replace(energy_trace=None)

    @property
    def metrics(self):
        return super().metrics + self._flow_metrics.metrics

    def train_step(self, data):
        """The Descriptor's ML/CD iteration with the wGCN flow; also logs the flow's energies."""
        self._trace_sinks.traces = []
        try:
            logs = super().train_step(data)
            ((energy_trace, guard),) = self._trace_sinks.traces
        finally:
            self._trace_sinks.traces = None
        self._flow_metrics.update(energy_trace, guard)
        return {**logs, **{m.name: m.result() for m in self._flow_metrics.metrics}}

    def sampler_settings(self) -> dict:
        out = {**super().sampler_settings(), "implicit_iters": self.implicit_iters, "solver": self.solver}
        if self.max_backtracks:
            out["max_backtracks"] = self.max_backtracks
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(  # δ is stored once, as step_size (tau = δ²/2 is derived)
            implicit_iters=self.implicit_iters,
            solver=self.solver,
            trace_points=self.trace_points,
            max_backtracks=self.max_backtracks,
        )
        return cfg
