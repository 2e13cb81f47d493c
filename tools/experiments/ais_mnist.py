"""Test-set bits/dim of a preset from AIS log Z, at several numbers of temperatures.

    python tools/experiments/ais_mnist.py --preset=descriptor_mnist --num_temps=100,1000,10000 \\
        --out=docs/benchmarks/ais_descriptor_mnist.json
    python tools/experiments/ais_mnist.py --preset=short_run_digits --sampler=hmc --step_size=0.05 \\
        --num_temps=100,400 --out=docs/benchmarks/ais_short_run_digits.json

For each K in --num_temps, one AIS run (ebm_zoo.sampling.ais.ais_log_z, same seed) estimates
log Z of exp(−E(x)/T) in [0, 1] image space (T = --temperature; "model" = the model's own
Langevin temperature noise_scale²), and the --num_test test images of the preset's dataset (MNIST
presets: `mnist_local`, the official 10,000 test images) give

    bits/dim = (mean E(x)/T + log Ẑ − D·log(1/256)) / (D·ln 2).

--support picks the reference and with it the density: "box" = uniform on [0, 1]^D, i.e.
exp(−E/T) restricted to the pixel box (where the models sample: they clip pixels); "reference" =
the model's own tractable reference (`ais.model_reference`: a descriptor's Gaussian
N(·, T·σ²) on all of R^D, the uniform box for other families).

AIS underestimates log Z on average, so an unconverged run reports too low a bits/dim: compare
the rows, and trust a figure only when log Ẑ stops moving with K (beyond its standard error) and
the weights' ESS is not ~1. Writes one JSON with the settings, one row per K (log Ẑ, se,
weights' ESS, sd of the log weights, acceptance, bits/dim, CPU and wall seconds, load average)
and the machine.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time

from ebm_zoo.utils import cli
from ebm_zoo.utils.machine import cpu_flags, cpu_name

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", None, "Preset name or preset directory (as ebm_zoo.load).")
flags.DEFINE_list("num_temps", ["100", "400"], "Numbers of AIS temperatures K, one run each.")
flags.DEFINE_integer("num_chains", 32, "AIS chains per run (>= 2).")
flags.DEFINE_enum("sampler", "mala", ["mala", "hmc"], "AIS transition kernel.")
flags.DEFINE_float("step_size", None, "Transition step in [0, 1] units (default 0.02 box, 0.5 sd reference).")
flags.DEFINE_integer("num_leapfrog_steps", 3, "HMC: leapfrog steps per transition.")
flags.DEFINE_enum("schedule", "linear", ["linear", "sigmoid", "geometric"], "β schedule.")
flags.DEFINE_enum("support", "box", ["box", "reference"], "Reference: uniform box or the model's own.")
flags.DEFINE_string("temperature", "1", "Target exp(-E/T): a number > 0 or 'model' (noise_scale**2).")
flags.DEFINE_string("dataset", None, "Test images (default: the preset's dataset, e.g. mnist_local).")
flags.DEFINE_integer("num_test", 10000, "Test images (the first N of the test split).")
flags.DEFINE_integer("seed", 0, "AIS seed.")
flags.DEFINE_string("out", None, "Output JSON (default ais_<preset>.json).")

FLAG_SUMMARY = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def machine() -> dict:
    """CPU model, count and a summary of the SIMD flags (ebm_zoo.utils.machine, as lscpu shows them)."""
    flags = cpu_flags()
    return {
        "cpu_model": cpu_name(),
        "num_cpus": os.cpu_count(),
        "simd_flags": [f for f in FLAG_SUMMARY if f in flags],
        "hypervisor": "hypervisor" in flags,
    }


def loadavg() -> list[float] | None:
    try:
        with open("/proc/loadavg") as f:
            return [float(v) for v in f.read().split()[:3]]
    except OSError:
        return None


def _num_temps() -> list[int]:
    from ebm_zoo.utils.checks import EbmZooError, check_count

    out = []
    for v in FLAGS.num_temps:
        try:
            k = int(v)
        except ValueError:
            raise EbmZooError(
                f"--num_temps must list integers >= 1, got {v!r}; e.g. --num_temps=100,400."
            ) from None
        out.append(check_count(k, "--num_temps"))
    if not out:
        raise EbmZooError("--num_temps is empty; give one or more counts, e.g. --num_temps=100,400.")
    return out


def _temperature():
    from ebm_zoo.utils.checks import EbmZooError

    if FLAGS.temperature == "model":
        return "model"
    try:
        value = float(FLAGS.temperature)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise EbmZooError(f"--temperature must be a number > 0 or 'model', got {FLAGS.temperature!r}.")
    return value


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if not FLAGS.preset:
        raise EbmZooError("--preset is required (a preset name such as descriptor_mnist, or a directory).")
    checks.check_handle(FLAGS.preset, "--preset")
    _num_temps()
    checks.check_count(FLAGS.num_chains, "--num_chains", minimum=2)
    checks.check_count(FLAGS.num_leapfrog_steps, "--num_leapfrog_steps")
    checks.check_count(FLAGS.num_test, "--num_test")
    checks.check_seed(FLAGS.seed, "--seed")
    if FLAGS.step_size is not None:
        checks.check_positive(FLAGS.step_size, "--step_size")
    _temperature()
    if FLAGS.out:
        checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")


def test_images(model, name: str):
    """The first --num_test images of the preset's (or --dataset's) test split, [N, H, W, C] in [0, 1]."""
    import numpy as np

    from ebm_zoo.data import load_dataset

    h, _, c = model.image_shape
    ds = load_dataset(
        name, image_size=h, split="test", batch_size=500, shuffle=False, repeat=False,
        drop_remainder=False, channels=c, limit=FLAGS.num_test,
    )  # fmt: skip
    return np.concatenate([b.numpy() for b in ds])


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    import ebm_zoo
    from ebm_zoo.presets import PRESETS
    from ebm_zoo.sampling import ais
    from ebm_zoo.utils import atomic, checks

    model = ebm_zoo.load(FLAGS.preset)
    name = os.path.basename(os.path.normpath(FLAGS.preset))
    dataset = FLAGS.dataset or (PRESETS[name].dataset if name in PRESETS else "mnist_local")
    x = test_images(model, dataset)
    temperature = ais.model_temperature(model, _temperature())
    if FLAGS.support == "box":
        reference = ais.UniformReference(model.image_shape, 0.0, 1.0)
    else:
        reference = ais.model_reference(model, temperature)
    step = FLAGS.step_size
    if step is None:
        step = 0.5 * reference.sigma if isinstance(reference, ais.GaussianReference) else 0.02
    settings = {"step_size": step}
    if FLAGS.sampler == "hmc":
        settings["num_leapfrog_steps"] = FLAGS.num_leapfrog_steps
    energies = ais.model_energies(model, x) / temperature
    d = int(np.prod(x.shape[1:]))
    runs = []
    for k in _num_temps():
        load0, cpu0, wall0 = loadavg(), time.process_time(), time.perf_counter()
        res = ais.ais_log_z(
            lambda v: model.energy(v) / temperature,
            reference,
            num_chains=FLAGS.num_chains,
            num_temps=k,
            sampler=FLAGS.sampler,
            schedule_kind=FLAGS.schedule,
            seed=checks.seed_pair(FLAGS.seed),
            **settings,
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        bpd = float(np.mean(ais.bits_per_dim(energies, res.log_z, d)))
        runs.append(
            {
                "num_temps": k,
                "log_z": res.log_z,
                "log_z_se": res.log_z_se,
                "weights_ess": res.weights_ess,
                "log_weights_sd": float(np.std(res.log_weights)),
                "log_weights_max_minus_mean": float(np.max(res.log_weights) - np.mean(res.log_weights)),
                "accept_rate": res.accept_rate,
                "bits_per_dim": bpd,
                "bits_per_dim_se_from_log_z": res.log_z_se / (d * np.log(2.0)),
                "cpu_s": cpu,
                "wall_s": wall,
                "loadavg_before": load0,
                "loadavg_after": loadavg(),
            }
        )
        print(
            f"{name} K={k}: log Z {res.log_z:.4g} ± {res.log_z_se:.3g}, weights' ESS {res.weights_ess:.2f} "
            f"of {FLAGS.num_chains}, accept {res.accept_rate:.3f}, {bpd:.4f} bits/dim, {cpu:.1f} CPU-s "
            f"(load {runs[-1]['loadavg_after'][0] if runs[-1]['loadavg_after'] else '?'})",
            flush=True,
        )
    report = {
        "command": "python tools/experiments/ais_mnist.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "preset": FLAGS.preset,
        "dataset": dataset,
        "split": "test",
        "num_test_images": int(len(x)),
        "num_dims": d,
        "temperature": temperature,
        "reference": {
            "kind": type(reference).__name__,
            "support": FLAGS.support,
            **(
                {"sigma": reference.sigma, "mean": float(reference.mean)}
                if hasattr(reference, "sigma")
                else {}
            ),
        },
        "settings": {
            "sampler": FLAGS.sampler,
            **settings,
            "schedule": FLAGS.schedule,
            "num_chains": FLAGS.num_chains,
            "seed": FLAGS.seed,
            "steps_per_temp": 1,
        },
        "test_energy_mean": float(np.mean(energies)),
        "test_energy_sd": float(np.std(energies)),
        "formula": "bits_per_dim = (test_energy_mean + log_z - num_dims*log(1/256)) / (num_dims*ln 2)",
        "note": "AIS underestimates log Z on average: an unconverged log Z gives too low a bits/dim.",
        "runs": runs,
        "machine": {**machine(), "tensorflow": tf.__version__, "python": platform.python_version()},
    }
    out = FLAGS.out or f"ais_{name}.json"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic.write_json(out, report, indent=2)
    print(f"Wrote {out}")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
