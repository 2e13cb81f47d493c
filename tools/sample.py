"""Sample grids (and Langevin trajectory strips) from any model handle.

    python tools/sample.py --handle=descriptor_brick --num_samples=16 --out=samples/brick.png
    python tools/sample.py --handle=runs/descriptor_brick --trajectory_every=5 --trajectory_chains=4
    python tools/sample.py --savedmodel=exports/descriptor_brick/1 --num_steps=40

--handle takes a preset name, preset directory, training workdir or URI; --savedmodel a SavedModel
written by tools/export.py. For MCMC models (descriptor, wgcn) --trajectory_every=k also writes
<out>_trajectory.png: each row one chain, each column its state every k Langevin steps; for
multi-grid models <out>_grids.png shows the synthesis at every grid.
"""

from __future__ import annotations

import os

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("handle", None, "Preset name, preset directory, training workdir or URI.")
flags.DEFINE_alias("preset", "handle")
flags.DEFINE_string("savedmodel", None, "Or: a SavedModel version directory.")
flags.DEFINE_integer("num_samples", 16, "Images in the grid.")
flags.DEFINE_integer("seed", 0, "Sampler seed.")
flags.DEFINE_integer("num_steps", None, "Sampler steps (default: the model's).")
flags.DEFINE_integer("trajectory_every", 0, "Record the Langevin chain state every k steps (0 = off).")
flags.DEFINE_integer("trajectory_chains", 4, "Chains shown in the trajectory strip.")
flags.DEFINE_string("out", None, "Output PNG (default: samples/<name>.png).")


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if FLAGS.handle and FLAGS.savedmodel:
        raise EbmZooError("Give one of --handle or --savedmodel, not both.")
    if not FLAGS.handle and not FLAGS.savedmodel:
        raise EbmZooError("Give --handle=NAME|DIR (or --preset=NAME) or --savedmodel=DIR; see --help.")
    checks.check_handle(FLAGS.handle or FLAGS.savedmodel, "--handle" if FLAGS.handle else "--savedmodel")
    checks.check_count(FLAGS.num_samples, "--num_samples")
    checks.check_seed(FLAGS.seed, "--seed")
    checks.check_num_steps(FLAGS.num_steps, "--num_steps")
    checks.check_count(FLAGS.trajectory_every, "--trajectory_every", minimum=0)
    checks.check_count(FLAGS.trajectory_chains, "--trajectory_chains")
    if FLAGS.out:
        checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")


def main(argv):
    del argv
    from ebm_zoo.evaluation import harness as evaluate
    from ebm_zoo.utils import checks
    from ebm_zoo.utils import images as image_utils

    if FLAGS.savedmodel:
        gen = evaluate.open_model(savedmodel=FLAGS.savedmodel)
    elif FLAGS.handle and os.path.isfile(os.path.join(FLAGS.handle, "model_config.json")):
        gen = evaluate.open_model(workdir=FLAGS.handle)
    else:
        gen = evaluate.open_model(preset=FLAGS.handle)
    gen.num_steps = FLAGS.num_steps
    handle = os.path.normpath(FLAGS.handle or FLAGS.savedmodel)
    name = os.path.basename(handle)
    if name.isdigit():
        name = os.path.basename(os.path.dirname(handle))
    out = FLAGS.out or os.path.join("samples", f"{name}.png")
    checks.check_output_dir(os.path.dirname(os.path.abspath(out)), "--out")
    images = gen.sample(FLAGS.num_samples, FLAGS.seed)
    written = [image_utils.save_grid(images, out)]
    stem = os.path.splitext(out)[0]
    if FLAGS.trajectory_every > 0:
        states = evaluate.langevin_trajectory(
            gen, FLAGS.trajectory_chains, FLAGS.seed, FLAGS.trajectory_every, FLAGS.num_steps
        )
        written.append(evaluate.save_trajectory(states, f"{stem}_trajectory.png"))
    grids = evaluate.grids_strip(gen, FLAGS.trajectory_chains, FLAGS.seed, f"{stem}_grids.png")
    if grids:
        written.append(grids)
    print("Wrote " + ", ".join(written))


if __name__ == "__main__":
    cli.run(main, check=check_flags)
