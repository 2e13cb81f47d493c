"""Evaluate a preset, a training run or a SavedModel against a data set.

    python tools/eval.py --preset=descriptor_brick
    python tools/eval.py --workdir=runs/multigrid_cpu --num_samples=512 --out=reports/multigrid_cpu
    python tools/eval.py --savedmodel=exports/ggcn_celeba/1 --dataset=celeb_a --metrics=fid,kid,swd \
        --inception_path=/models/inception_v3_pool3.keras

Offline metrics (default): multi-scale SWD, Fréchet distance / KID / IS analogue in the shipped
classifier's feature space (fd_small, kid_small, is_small), texture Gram distance (gram). The
standard FID / KID need a local Inception-v3 pool3 model (--inception_path or $EBM_ZOO_INCEPTION),
IS an Inception-v3 classifier (--inception_classifier_path or $EBM_ZOO_INCEPTION_CLASSIFIER).
Writes <out>/report.json (every figure and the settings behind it) and <out>/samples.png
(samples above real images).

    python tools/eval.py --preset=ggcn_mnist --protocol=mnist

runs the fixed MNIST protocol instead (ebm_zoo/metrics/mnist_protocol.py, docs/benchmarks.md):
5,000 samples (--num_samples only if given) vs the 10,000 MNIST test images, seed 0; writes
<out>/report.json and an 8x8 <out>/samples.png.

    python tools/eval.py --preset=ggcn_mnist --protocol=mnist_ood

scores MNIST test digits against six out-of-distribution sets with `model.ood_score`
(ebm_zoo/evaluation/ood.py: noise, constant, inverted, textures, faces, photos) and writes the
AUROC per set to <out>/ood.json (defaults: 2,000 test digits, --num_reference to change; 1,000
images per set, --num_samples to change; batches of 250, --batch_size; seed 0).

    python tools/eval.py --workdir=runs/vapo_mnist --checkpoint=1000 --protocol=mnist

runs either protocol on a run as it was at a training checkpoint (finished or not); the report
names the row RUN@STEP and records the training wall-clock and CPU seconds spent up to that
checkpoint (timing.json's history), for comparisons at equal budget.
"""

from __future__ import annotations

import functools
import inspect
import json
import os

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", None, "Preset name, preset directory or URI.")
flags.DEFINE_string("workdir", None, "Or: a finished tools/train.py run directory.")
flags.DEFINE_integer(
    "checkpoint",
    None,
    "With --workdir: evaluate the run at its training checkpoint of this step (finished or not; "
    "the report records the training CPU seconds up to it), e.g. to compare families at equal budget.",
)
flags.DEFINE_string("savedmodel", None, "Or: a SavedModel version directory written by tools/export.py.")
flags.DEFINE_string("dataset", None, "Reference data set (default: the model's training data set).")
flags.DEFINE_string("split", "test", "Reference split.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir for TFDS reference sets.")
flags.DEFINE_integer("num_samples", 256, "Samples to draw.")
flags.DEFINE_integer("num_reference", 256, "Reference images to use (at most).")
flags.DEFINE_integer("batch_size", 64, "Samples per sampler call.")
flags.DEFINE_integer("num_steps", None, "Sampler steps (default: the model's).")
flags.DEFINE_list(
    "metrics", None, "Metric names (default: offline set, plus fid/kid/is when Inception is given)."
)
flags.DEFINE_integer("seed", 0, "Seed of the samples and of every random choice in the metrics.")
flags.DEFINE_string("inception_path", None, "Local Inception-v3 pool3 model for FID / KID.")
flags.DEFINE_string("inception_classifier_path", None, "Local Inception-v3 classifier for IS.")
flags.DEFINE_string("out", None, "Output directory (default: reports/<name>).")
flags.DEFINE_enum(
    "protocol",
    None,
    ["mnist", "mnist_ood"],
    "Run a fixed protocol (mnist: docs/benchmarks.md; mnist_ood: AUROC of model.ood_score).",
)
flags.DEFINE_string(
    "ood_method",
    None,
    "--protocol=mnist_ood: model.ood_score(images, method=NAME) instead of the family's default score "
    "(every family: 'typicality', with the preset's shipped fit (ood_fit.npz) or fitted first on "
    "--ood_fit_images MNIST train digits; VAPO also "
    "'nll' (default) or 'potential').",
)
flags.DEFINE_integer(
    "ood_fit_images",
    4000,
    "--ood_method=typicality: MNIST train digits its statistics are fitted on (model.fit_ood); "
    "given, it re-fits even a preset that ships a fit (default: the shipped fit, else 4000).",
)
flags.DEFINE_bool(
    "record", False, "Also store the figures in the preset's metadata.json (preset directories)."
)


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if sum(bool(h) for h in (FLAGS.preset, FLAGS.workdir, FLAGS.savedmodel)) != 1:
        raise EbmZooError("Give exactly one of --preset, --workdir or --savedmodel; see --help.")
    checks.check_count(FLAGS.num_samples, "--num_samples")
    checks.check_count(FLAGS.num_reference, "--num_reference")
    checks.check_count(FLAGS.ood_fit_images, "--ood_fit_images")
    checks.check_count(FLAGS.batch_size, "--batch_size")
    checks.check_num_steps(FLAGS.num_steps, "--num_steps")
    checks.check_seed(FLAGS.seed, "--seed")
    if FLAGS.out:
        checks.check_output_dir(FLAGS.out, "--out")
    if FLAGS.checkpoint is not None:
        checks.check_count(FLAGS.checkpoint, "--checkpoint")
        if not FLAGS.workdir or not FLAGS.protocol:
            raise EbmZooError(
                f"--checkpoint={FLAGS.checkpoint} picks a training checkpoint of a run: it goes with "
                "--workdir=RUN and --protocol=mnist|mnist_ood."
            )
    if FLAGS.protocol and (FLAGS.savedmodel or FLAGS.record or FLAGS.dataset):
        raise EbmZooError(
            f"--protocol={FLAGS.protocol} evaluates a model loadable by ebm_zoo.load against MNIST "
            "test: pass --preset=NAME (or --workdir=RUN), and no --savedmodel / --dataset / --record."
        )


def _load_for_protocol():
    """(model, row name): the preset / finished run, or the run at --checkpoint."""
    import ebm_zoo
    from ebm_zoo.presets import files

    handle = FLAGS.preset or FLAGS.workdir
    name = os.path.basename(os.path.normpath(handle))
    if FLAGS.checkpoint is not None:
        return files.load_checkpoint(FLAGS.workdir, FLAGS.checkpoint), f"{name}@{FLAGS.checkpoint}"
    return ebm_zoo.load(handle), name


def _with_checkpoint(report: dict, model) -> dict:
    at = (getattr(model, "preset_metadata", None) or {}).get("checkpoint")
    return {**report, "checkpoint": at} if at else report


def _mnist_protocol():
    from ebm_zoo.metrics import mnist_protocol
    from ebm_zoo.utils import atomic

    given = {
        k: FLAGS[f].value
        for k, f in (("num_samples", "num_samples"), ("sample_batch", "batch_size"))
        if FLAGS[f].present
    }
    model, name = _load_for_protocol()
    out = FLAGS.out or os.path.join("reports", f"{name.replace('@', '_ckpt')}_mnist")
    report = mnist_protocol.run_mnist_protocol(model.sample, out, name, seed=FLAGS.seed, **given)
    if FLAGS.checkpoint is not None:
        report = _with_checkpoint(report, model)
        atomic.write_text(report["files"]["report"], json.dumps(report, indent=2) + "\n")
    return report


def _mnist_ood():
    from ebm_zoo.evaluation import ood
    from ebm_zoo.utils import atomic, checks

    model, name = _load_for_protocol()
    out = FLAGS.out or os.path.join("reports", f"{name.replace('@', '_ckpt')}_mnist")
    checks.check_output_dir(out, "--out")
    score_fn, fit = model.ood_score, None
    if FLAGS.ood_method is not None:
        import numpy as np

        method = FLAGS.ood_method
        params = inspect.signature(model.ood_score).parameters
        if "method" not in params:
            raise checks.EbmZooError(
                f"--ood_method={method!r}: {type(model).__name__}.ood_score has no method option (its "
                "score is the energy); drop --ood_method."
            )
        score_fn = functools.partial(model.ood_score, method=method)
        if method == "typicality" and method in getattr(model, "ood_methods", ()):
            shipped = model.ood_fit is not None and not FLAGS["ood_fit_images"].present
            if shipped:
                about = (getattr(model, "preset_metadata", None) or {}).get("ood_fit") or {}
                fit = {"split": about.get("split", "shipped"), "source": "shipped", **model.ood_fit.summary()}
            else:
                fit = {
                    "source": "fitted",
                    **ood.fit_typicality(model, num=FLAGS.ood_fit_images, seed=FLAGS.seed),
                }
        score_fn(np.zeros((1, model.image_size, model.image_size, model.channels), np.float32))  # checks it
    report = ood.evaluate_ood(
        score_fn,
        num_in=FLAGS.num_reference if FLAGS["num_reference"].present else 2000,
        num_per_set=FLAGS.num_samples if FLAGS["num_samples"].present else 1000,
        image_size=model.image_size,
        seed=FLAGS.seed,
        batch_size=FLAGS.batch_size if FLAGS["batch_size"].present else 250,
    )
    report = {"model": name, "family": model.family, "ood_method": FLAGS.ood_method or "default", **report}
    if fit is not None:
        report["ood_fit"] = {k: fit[k] for k in ("source", "split", "num_reference", "bandwidth")}
    report = _with_checkpoint(report, model)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "ood.json")
    atomic.write_text(path, json.dumps(report, indent=2) + "\n")
    report["file"] = path
    return report


def main(argv):
    del argv
    if FLAGS.protocol == "mnist_ood":
        print(json.dumps(_mnist_ood(), indent=2))
        return
    if FLAGS.protocol == "mnist":
        print(json.dumps(_mnist_protocol(), indent=2))
        return
    from ebm_zoo.evaluation import harness as evaluate
    from ebm_zoo.utils import checks

    gen = evaluate.open_model(FLAGS.preset, FLAGS.workdir, FLAGS.savedmodel)
    gen.num_steps = FLAGS.num_steps
    handle = FLAGS.preset or FLAGS.workdir or FLAGS.savedmodel
    name = os.path.basename(os.path.normpath(handle))
    if FLAGS.savedmodel and name.isdigit():
        name = os.path.basename(os.path.dirname(os.path.normpath(handle)))
    out = FLAGS.out or os.path.join("reports", name)
    checks.check_output_dir(out, "--out")
    report = evaluate.evaluate(
        gen,
        out,
        dataset=FLAGS.dataset,
        split=FLAGS.split,
        num_samples=FLAGS.num_samples,
        num_reference=FLAGS.num_reference,
        metrics=FLAGS.metrics,
        seed=FLAGS.seed,
        inception_path=FLAGS.inception_path,
        inception_classifier_path=FLAGS.inception_classifier_path,
        data_dir=FLAGS.data_dir,
        batch_size=FLAGS.batch_size,
    )
    if FLAGS.record:
        evaluate.record_in_preset(gen, report)
    print(json.dumps(report["metrics"], indent=2))
    for k, v in report["not_computed"].items():
        print(f"{k}: {v}")
    print(f"Report: {report['files']['report']}   Samples vs real: {report['files']['sheet']}")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
