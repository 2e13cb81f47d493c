"""Energy dissipation along the particle flow: explicit Langevin vs the wGCN implicit (JKO) step.

Trains wGCN (configs/wgcn_cpu.py: LFW faces 16×16 gray, [−1, 1] pixels, σ = 0.5) for a few
hundred iterations, then runs chains under the learned energy E(x) = −f(x) + ‖x‖²/(2σ²) from
uniform-noise images, at a time step τ where explicit Langevin is unstable (τ/σ² > 2), and plots
the mean energy per step:

  explicit Langevin (J = 1)        x ← x − τ∇E(x) + √(2τ)·s·z
  fixed-point implicit (J = 3)     the MODELS.md fixed-point iteration (diverges for τ/σ² > 1)
  wGCN split implicit (J = 3)      reference term in closed form (our default solver)
  explicit at the config's τ        (stable, slower)

Noise off (left) and on (right); pixel clipping off so that instability is visible.

    python tools/experiments/ggcn_dissipation.py --train_steps=300 \
        --tau_over_sigma2=4.5 --png=docs/images/wgcn_dissipation.png --out_json=/tmp/wgcn_dissipation.json

Needs matplotlib (pip install matplotlib).
"""

from __future__ import annotations

import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("train_steps", 300, "wGCN training iterations before the comparison.")
flags.DEFINE_float(
    "tau_over_sigma2", 4.5, "The time step of the comparison as τ/σ² (explicit Langevin needs τ/σ² < 2)."
)
flags.DEFINE_integer("num_steps", 40, "Steps per chain.")
flags.DEFINE_integer("num_chains", 64, "Chains (images) per run.")
flags.DEFINE_string("png", "docs/images/wgcn_dissipation.png", "Output plot.")
flags.DEFINE_string("out_json", "/tmp/wgcn_dissipation.json", "Energy traces as JSON.")


def train_wgcn(steps: int):
    from ebm_zoo.config import get_config
    from ebm_zoo.data import load_dataset
    from ebm_zoo.models import build_model

    cfg = get_config("wgcn_cpu")
    model = build_model(cfg.model)
    model.compile()
    model.build_all()
    d = cfg.data
    ds = load_dataset(
        d.name, image_size=int(d.image_size), split=d.split, batch_size=int(d.batch_size), channels=1
    )
    t0 = time.perf_counter()
    hist = model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    logs = {k: float(v[-1]) for k, v in hist.history.items()}
    print(f"trained wgcn_cpu {steps} steps in {time.perf_counter() - t0:.0f} s: {logs}")
    return model, logs


def traces(model, tau: float, usual_tau: float, num_steps: int, num_chains: int) -> dict:
    import tensorflow as tf

    from ebm_zoo.sampling.langevin import wgcn_flow

    lo, hi = model.internal_range
    x0 = tf.random.stateless_uniform(
        [num_chains, model.image_size, model.image_size, model.channels], [0, 42], lo, hi
    )
    runs = {
        "explicit Langevin (J=1)": dict(solver="fixed_point", implicit_iters=1, tau=tau),
        "fixed-point implicit (J=3)": dict(solver="fixed_point", implicit_iters=3, tau=tau),
        "wGCN split implicit (J=3)": dict(solver="split", implicit_iters=3, tau=tau),
        f"explicit, config tau={usual_tau:g}": dict(solver="fixed_point", implicit_iters=1, tau=usual_tau),
    }
    out = {}
    for noise in (0.0, 1.0):
        for label, r in runs.items():
            fn = tf.function(
                lambda x, r=r, noise=noise: (
                    wgcn_flow(
                        model.net,
                        x,
                        ref_sigma=model.ref_sigma,
                        num_steps=num_steps,
                        step_size=math.sqrt(2 * r["tau"]),
                        seed=tf.constant([3, 4]),
                        noise_scale=noise,
                        implicit_iters=r["implicit_iters"],
                        solver=r["solver"],
                    ).energy_trace
                )
            )
            out[f"{label} | noise={noise:g}"] = [float(v) for v in fn(x0).numpy()]
    return out


def plot(results: dict, tau: float, sigma: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    styles = ["tab:red", "tab:orange", "tab:blue", "tab:gray"]
    for ax, noise in zip(axes, ("0", "1")):
        labels = [k for k in results if k.endswith(f"noise={noise}")]
        for color, key in zip(styles, labels):
            e = np.asarray(results[key], dtype=np.float64)
            e = np.where(np.isfinite(e), e, np.nan)
            ax.plot(np.arange(len(e)), e, color=color, marker=".", label=key.split(" | ")[0])
        ax.set_yscale("symlog", linthresh=10.0)
        ax.set_xlabel("step k")
        ax.set_title(
            f"noise {'off' if noise == '0' else 'on (s = 1)'}, τ = {tau:g} (τ/σ² = {tau / sigma**2:g})"
        )
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean energy E(x_k) (symlog)")
    axes[0].legend(fontsize=8)
    fig.suptitle("wGCN on LFW faces 16×16: energy of 64 particles from uniform noise, learned E")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv):
    del argv
    model, logs = train_wgcn(FLAGS.train_steps)
    tau = FLAGS.tau_over_sigma2 * model.ref_sigma**2
    results = traces(model, tau, model.tau, FLAGS.num_steps, FLAGS.num_chains)
    for k, v in results.items():
        e = np.asarray(v)
        rises = int(np.sum(np.diff(e) > 0))
        big = int(np.sum(np.diff(e) > 1e-4 * abs(e[0])))
        print(f"{k:45s} E0={e[0]:.4g}  E_end={e[-1]:.4g}  rises={rises}/{len(e) - 1} (>1e-4·|E0|: {big})")
    with open(FLAGS.out_json, "w") as f:
        json.dump({"tau": tau, "train_logs": logs, "traces": results}, f, indent=1)
    plot(results, tau, model.ref_sigma, FLAGS.png)


if __name__ == "__main__":
    app.run(main)
