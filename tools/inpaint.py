"""Inpainting with a trained multi-grid EBM (or its CD / PCD baselines): PNG + masked-region PSNR.

    python tools/inpaint.py --model=runs/multigrid_cpu                     # a finished workdir
    python tools/inpaint.py --workdir=runs/multigrid_cpu --mask=center     # the same, one mask kind
    python tools/inpaint.py --model=runs/multigrid_cpu --masks=center,random,left,right \
        --split=test --num_images=10 --out=inpaint.png
    python tools/inpaint.py --model=<preset name> --dataset=lfw_faces

For every mask kind it writes `<out stem>_<kind>.png` (rows: masked input with unknown pixels
grey / inpainted / original) and prints the PSNR on the unknown pixels of the model and of the
mean-colour fill (unknown pixels = mean of the known ones).
"""

from __future__ import annotations

import json
import os

from ebm_zoo.utils import cli

cli.quiet_startup()

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Training workdir, preset directory or preset name.")
flags.DEFINE_string("workdir", None, "Or: a finished training workdir (same as --model=WORKDIR).")
flags.DEFINE_string("dataset", None, "Dataset name (default: the workdir's config.json data.name).")
flags.DEFINE_string("split", "test", "Split of the images to inpaint.")
flags.DEFINE_integer("num_images", 10, "Number of images.")
flags.DEFINE_list("masks", ["center", "random", "left"], "Mask kinds: center, random, left, right.")
flags.DEFINE_alias("mask", "masks")

#: = ebm_zoo.models.multigrid.MASK_KINDS (repeated so that flags are checked without TensorFlow;
#: tests/test_bad_input_cli.py asserts they agree).
MASK_KINDS = ("center", "random", "left", "right")
flags.DEFINE_float("box_fraction", 0.5, "Side of the centre box as a fraction of the image side.")
flags.DEFINE_float("drop_rate", 0.5, "Fraction of unknown pixels of the random mask.")
flags.DEFINE_integer("num_steps", None, "Sampler steps per grid (default: the model's T).")
flags.DEFINE_integer("seed", 0, "Seed of the random masks and of the sampler noise.")
flags.DEFINE_string("out", "inpaint.png", "Output PNG path; one file per mask kind: <stem>_<kind>.png.")


def _data_config(handle: str) -> dict:
    path = os.path.join(handle, "config.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f).get("data", {})
    return {}


def check_flags() -> str:
    """Validates the flags (no TensorFlow needed); returns the model handle."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if bool(FLAGS.model) == bool(FLAGS.workdir):
        raise EbmZooError("Give exactly one of --model=HANDLE or --workdir=RUN (a finished training run).")
    handle = checks.check_handle(FLAGS.model or FLAGS.workdir, "--model" if FLAGS.model else "--workdir")
    if not FLAGS.masks:
        raise EbmZooError(f"--masks is empty; give one or more of {', '.join(MASK_KINDS)}.")
    for kind in FLAGS.masks:
        checks.check_choice(kind, "--masks kind", MASK_KINDS)
    checks.check_count(FLAGS.num_images, "--num_images")
    checks.check_fraction(FLAGS.box_fraction, "--box_fraction", allow_zero=False)
    checks.check_fraction(FLAGS.drop_rate, "--drop_rate")
    checks.check_num_steps(FLAGS.num_steps, "--num_steps")
    checks.check_seed(FLAGS.seed, "--seed")
    checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
    return handle


def main(argv):
    del argv
    import ebm_zoo
    from ebm_zoo.data import load_array
    from ebm_zoo.models.multigrid import make_mask, masked_psnr, mean_colour_fill
    from ebm_zoo.utils.checks import EbmZooError
    from ebm_zoo.utils.images import save_grid

    handle = check_flags()
    model = ebm_zoo.load(handle)
    if not model.has_inpaint:
        raise EbmZooError(f"{handle} holds a {type(model).__name__}, which has no `inpaint`.")
    data = _data_config(handle)
    name = FLAGS.dataset or data.get("name")
    if not name:
        raise EbmZooError(f"{handle} has no config.json naming its dataset: pass --dataset=NAME.")
    images = load_array(name, model.image_size, FLAGS.split, limit=FLAGS.num_images, channels=model.channels)
    overrides = {} if FLAGS.num_steps is None else {"num_steps": FLAGS.num_steps}
    stem, ext = os.path.splitext(FLAGS.out)
    print(
        f"{type(model).__name__} mode={getattr(model, 'mode', '?')} on {len(images)} {name} ({FLAGS.split}) images"
    )
    print("| mask | PSNR model (dB) | PSNR mean-colour fill (dB) | png |")
    print("|---|---|---|---|")
    for kind in FLAGS.masks:
        mask = make_mask(
            kind,
            model.image_size,
            len(images),
            box_fraction=FLAGS.box_fraction,
            drop_rate=FLAGS.drop_rate,
            seed=FLAGS.seed,
        )
        filled = np.asarray(model.inpaint(images, mask, seed=FLAGS.seed, **overrides))
        masked = np.where(np.broadcast_to(mask, images.shape) > 0.5, 0.5, images)
        path = save_grid(
            np.concatenate([masked, filled, images]), f"{stem}_{kind}{ext or '.png'}", ncol=len(images)
        )
        psnr = masked_psnr(filled, images, mask)
        base = masked_psnr(mean_colour_fill(images, mask), images, mask)
        print(f"| {kind} | {psnr:.2f} | {base:.2f} | {path} |")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
