"""Do a model's MCMC chains mix? K chains on its energy, with ESS, split-R-hat and a figure.

    python tools/diagnose.py --handle=descriptor_brick
    python tools/diagnose.py --handle=short_run_digits --sampler=hmc --num_chains=8 --num_steps=400
    python tools/diagnose.py --handle=runs/descriptor --sampler=langevin --init=noise --out=diag/run

Uses the model's public API only: `ebm_zoo.load(handle)`, `model.energy` on [0, 1] images and
`model.sample` for the starting states. The chains target exp(−E(x)) on [0, 1]^D (MALA / HMC
reject proposals outside the box, Langevin clips) — see ebm_zoo.sampling.diagnostics.

Writes <out>.json (settings, acceptance, energy ESS per chain / pooled, split-R-hat,
autocorrelation, CPU seconds) and <out>.png: per-chain energy traces, the energy
autocorrelation after burn-in, acceptance and gradient norm per step, and a trajectory strip
(rows = chains, columns = states at the listed steps). Default out: diagnostics/<name>_<sampler>.
"""

from __future__ import annotations

import math
import os

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("handle", None, "Preset name, preset directory or URI (as ebm_zoo.load).")
flags.DEFINE_enum("sampler", "mala", ["langevin", "mala", "hmc"], "MCMC sampler.")
flags.DEFINE_integer("num_chains", 4, "K chains (>= 2).")
flags.DEFINE_integer("num_steps", 200, "Steps per chain.")
flags.DEFINE_integer("burn_in", None, "Steps left out of ESS / R-hat (default num_steps // 4).")
flags.DEFINE_float("step_size", None, "Step size in [0, 1] units (default: the model's, rescaled).")
flags.DEFINE_float(
    "target_accept", None, "MALA/HMC: adapt the step size during burn-in to this (default 0.57 / 0.65)."
)
flags.DEFINE_bool("adapt", True, "MALA/HMC: adapt the step size during burn-in.")
flags.DEFINE_integer("num_leapfrog_steps", 5, "HMC: leapfrog steps L per transition.")
flags.DEFINE_enum("init", "sample", ["sample", "noise"], "Start from model.sample(K) or uniform noise.")
flags.DEFINE_integer("num_segments", 8, "Snapshots in the trajectory strip (after the burn-in).")
flags.DEFINE_string(
    "temperature",
    "1",
    "Target exp(-E/temperature); 'model' = the model's Langevin temperature noise_scale**2.",
)
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("out", None, "Output path without extension.")


def _clean(v):
    """JSON-safe: non-finite floats become null."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def figure(report: dict, run, name: str):
    import numpy as np

    from ebm_zoo.utils import plots

    e = report["energy"]
    burn = report["burn_in"]
    head = (
        f"{name}: {report['sampler']['name']}, temperature {report['temperature']:.3g}, K={report['num_chains']}, T={report['num_steps']}, "
        f"accept={report['acceptance']['mean']:.2f}, split-Rhat={e['split_rhat']:.3g}, "
        f"ESS/chain={e['ess_mean_per_chain']:.1f} of {e['draws']}"
    )
    panels = [
        plots.text_panel([head]),
        plots.line_panel(
            list(run.energy_trace.T),
            title=f"energy per chain (burn-in ends at step {burn})",
            xlabel="step",
        ),
        plots.line_panel(
            [run.autocorrelation],
            title="energy autocorrelation after burn-in (mean over chains)",
            xlabel="lag",
            hline=0.0,
        ),
        plots.line_panel(
            [run.accept_trace], title="fraction of chains accepted per step", xlabel="step", height=150
        ),
        plots.line_panel([run.grad_norm_trace], title="mean |grad E| per step", xlabel="step", height=150),
    ]
    snaps = np.asarray(run.snapshots)
    if snaps.ndim == 5:
        shown = min(snaps.shape[1], 8)
        panels.append(
            plots.image_strip(
                snaps[:, :shown],
                title="trajectory strip: rows = chains, columns = state at step",
                labels=list(run.snapshot_steps),
                scale=max(1, 64 // snaps.shape[2]),
            )
        )
    return plots.stack(panels)


def _temperature():
    from ebm_zoo.utils.checks import EbmZooError

    if FLAGS.temperature == "model":
        return "model"
    try:
        value = float(FLAGS.temperature)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise EbmZooError(f"--temperature must be a number > 0 or 'model', got {FLAGS.temperature!r}.")
    return value


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if not FLAGS.handle:
        raise EbmZooError("--handle is required (a preset name such as descriptor_brick, or a directory).")
    checks.check_handle(FLAGS.handle, "--handle")
    checks.check_count(FLAGS.num_chains, "--num_chains", minimum=2)
    checks.check_count(FLAGS.num_steps, "--num_steps")
    if FLAGS.burn_in is not None:
        checks.check_count(FLAGS.burn_in, "--burn_in", minimum=0, maximum=FLAGS.num_steps - 1)
    checks.check_count(FLAGS.num_leapfrog_steps, "--num_leapfrog_steps")
    checks.check_seed(FLAGS.seed, "--seed")
    _temperature()
    if FLAGS.out:
        checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")


def main(argv):
    del argv
    import tensorflow as tf

    import ebm_zoo
    from ebm_zoo.sampling.diagnostics import diagnose_model
    from ebm_zoo.utils import atomic

    # TFP's FFT autocorrelation warns about a complex-to-real cast it does on purpose.
    tf.get_logger().setLevel("ERROR")
    model = ebm_zoo.load(FLAGS.handle)
    settings = {}
    if FLAGS.sampler == "hmc":
        settings["num_leapfrog_steps"] = FLAGS.num_leapfrog_steps
    if FLAGS.sampler != "langevin":
        if not FLAGS.adapt:
            settings["target_accept"] = None
        elif FLAGS.target_accept is not None:
            settings["target_accept"] = FLAGS.target_accept
    report, run = diagnose_model(
        model,
        num_chains=FLAGS.num_chains,
        num_steps=FLAGS.num_steps,
        sampler=FLAGS.sampler,
        step_size=FLAGS.step_size,
        init=FLAGS.init,
        seed=FLAGS.seed,
        burn_in=FLAGS.burn_in,
        num_segments=FLAGS.num_segments,
        temperature=_temperature(),
        **settings,
    )
    name = os.path.basename(os.path.normpath(FLAGS.handle))
    out = FLAGS.out or os.path.join("diagnostics", f"{name}_{FLAGS.sampler}")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    report = {"handle": FLAGS.handle, **report}
    atomic.write_json(out + ".json", _clean(report))
    with atomic.file(out + ".png") as tmp:
        figure(report, run, name).save(tmp, format="PNG")
    e = report["energy"]
    print(
        f"{name} {FLAGS.sampler}: accept {report['acceptance']['mean']:.3f}, step {report['final_step_size_mean']:.3g}, "
        f"split-Rhat {e['split_rhat']:.3f}, ESS/chain {e['ess_mean_per_chain']:.1f} of {e['draws']} "
        f"(pooled {e['ess_pooled']}), energy {report['energy_start_mean']:.4g} -> {report['energy_end_mean']:.4g}, "
        f"{report['cpu_s']:.1f} CPU-s"
    )
    print(f"Wrote {out}.json, {out}.png")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
