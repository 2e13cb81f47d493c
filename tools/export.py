"""Turn a training run into a preset, and/or a model into a SavedModel for TF Serving.

python tools/export.py --workdir=runs/ggcn_celeba --preset=ggcn_celeba
    # -> $EBM_ZOO_HOME/presets/ggcn_celeba/ (default ~/.ebm_zoo), found by ebm_zoo.load("ggcn_celeba")
python tools/export.py --workdir=runs/descriptor_brick --preset=descriptor_brick --shipped
    # -> ebm_zoo/presets/weights/descriptor_brick/ (ships with the package; pin its sha256 in
    #    ebm_zoo/models/<family>/<family>_presets.py, which the command prints)
python tools/export.py --workdir=/work/runs_mnist/ggcn_mnist --preset=ggcn_mnist --shipped \
    --reports=/work/runs_mnist/reports/ggcn_mnist
    # metadata.json also gets the run's MNIST protocol figures (report.json of
    # tools/eval.py --protocol=mnist), OOD AUROCs (ood.json, --protocol=mnist_ood), sampling
    # CPU-s per 100 images and the training wall-clock / CPU seconds (the run's timing.json).
    # Without --reports they are looked for in <workdir>/reports/ and <workdir>/../reports/<run>/.
python tools/export.py --workdir=/work/runs_mnist/ggcn_mnist --checkpoint=4600 --preset=ggcn_mnist \
    --shipped --reports=/work/runs_mnist/reports/ggcn_mnist_ckpt4600
    # the run as it was at its training checkpoint 4600 (e.g. the last one before a divergence);
    # the reports must be those of tools/eval.py --checkpoint=4600, the training time is the
    # budget up to that checkpoint.
python tools/export.py --workdir=runs/descriptor_brick --out=exports/descriptor_brick/1
python tools/export.py --handle=descriptor_brick --out=exports/descriptor_brick/1
    # SavedModel with serving signatures (energy, sample, ...; see ebm_zoo/models/serving.py)
"""

from __future__ import annotations

import os

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished tools/train.py run directory.")
flags.DEFINE_string("handle", None, "Or: a preset name, preset directory or URI (for --out only).")
flags.DEFINE_string("preset", None, "Write the run as this preset (in $EBM_ZOO_HOME/presets/<name>/).")
flags.DEFINE_bool("shipped", False, "Write the preset inside the package (presets/weights/<name>/).")
flags.DEFINE_string("out", None, "Write a SavedModel here (a version directory, e.g. exports/NAME/1).")
flags.DEFINE_string(
    "reports",
    None,
    "Directory of the run's tools/eval.py --protocol=mnist / mnist_ood reports (report.json, ood.json), "
    "stored in the preset's metadata.json (default: <workdir>/reports or <workdir>/../reports/<run>).",
)
flags.DEFINE_integer(
    "checkpoint", None, "With --workdir and --preset: export the run's training checkpoint STEP instead."
)
flags.DEFINE_bool("overwrite", False, "Replace an existing preset of the same name (never done without it).")


def check_flags():
    """Validates every flag before anything is read or written (no TensorFlow needed)."""
    from pathlib import Path

    from ebm_zoo.presets import loader
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if bool(FLAGS.workdir) == bool(FLAGS.handle):
        raise EbmZooError("Give exactly one of --workdir (a training run) or --handle (a preset).")
    if not FLAGS.preset and not FLAGS.out:
        raise EbmZooError("Nothing to do: give --preset=NAME (a preset) and/or --out=DIR/1 (a SavedModel).")
    if FLAGS.preset and not FLAGS.workdir:
        raise EbmZooError("--preset needs --workdir (a preset is made from a training run).")
    if FLAGS.checkpoint is not None:
        if not (FLAGS.workdir and FLAGS.preset) or FLAGS.out:
            raise EbmZooError("--checkpoint goes with --workdir=RUN and --preset=NAME (not --out).")
        checks.check_count(FLAGS.checkpoint, "--checkpoint")
        from ebm_zoo.presets import files

        kept = files.checkpoint_steps(FLAGS.workdir)
        if FLAGS.checkpoint not in kept:
            raise EbmZooError(
                f"--checkpoint={FLAGS.checkpoint}: {FLAGS.workdir} keeps checkpoints "
                f"{', '.join(map(str, kept)) if kept else 'none'}."
            )
    if FLAGS.reports and not FLAGS.preset:
        raise EbmZooError(
            "--reports goes with --preset (the figures are stored in the preset's metadata.json)."
        )
    # Every argument is checked before anything is written.
    if FLAGS.preset:
        checks.check_preset_name(FLAGS.preset, "--preset")
        root = loader.PACKAGE_WEIGHTS if FLAGS.shipped else loader.home() / "presets"
        dest = checks.check_inside(root / FLAGS.preset, root, "--preset")
        checks.check_output_dir(dest, "--preset", must_be_new=True, overwrite=FLAGS.overwrite)
    if FLAGS.out:
        out = Path(FLAGS.out)
        checks.check_output_dir(out if out.name.isdigit() else out / "1", "--out")  # export.version_path


def main(argv):
    del argv
    from ebm_zoo import presets

    model = None
    if FLAGS.preset:
        # Read (and checked) before anything is written: a stale or foreign report stops here.
        bench = presets.files.benchmark_metadata(FLAGS.workdir, FLAGS.reports, FLAGS.checkpoint)
        path = presets.export_workdir(
            FLAGS.workdir,
            FLAGS.preset,
            shipped=FLAGS.shipped,
            overwrite=FLAGS.overwrite,
            step=FLAGS.checkpoint,
        )
        meta = (
            presets.files.update_metadata(path, **bench)
            if bench
            else presets.files.read_json(path / "metadata.json", "metadata")
        )
        _say_benchmark(meta)
        print(f"Preset {FLAGS.preset!r} written to {path} ({meta['weights_bytes']} bytes of weights).")
        print(f"  weights sha256 = {meta['weights_sha256']}")
        if FLAGS.shipped:
            print(
                f'  pin it in ebm_zoo/models/<family>/<family>_presets.py: weights="package", sha256="{meta["weights_sha256"]}"'
            )
        model = presets.load_preset_dir(path)
    if FLAGS.out:
        if model is None:
            model = presets.load(FLAGS.workdir or FLAGS.handle)
        out = model.export(FLAGS.out)
        print(
            f"SavedModel written to {out}; serve with: tensorflow_model_server --rest_api_port=8501 "
            f"--model_name=NAME --model_base_path={os.path.abspath(os.path.dirname(out))}"
        )


def _say_benchmark(meta: dict) -> None:
    """One line per benchmark record stored in metadata.json (or why there is none)."""
    mnist = (meta.get("metrics") or {}).get("mnist")
    ood = (meta.get("metrics") or {}).get("mnist_ood")
    timing = meta.get("training_time")
    if mnist:
        print(
            f"  MNIST protocol: FD-MNIST {mnist['fd_mnist']:.3f}, classifier score {mnist['classifier_score']:.2f}, "
            f"{mnist['effective_classes']:.2f} effective classes, "
            f"{mnist.get('sampling_cpu_seconds_per_100')} sampling CPU-s / 100 images"
            + ("" if mnist.get("standard") else " (NON-standard settings)")
        )
    if ood:
        print("  OOD AUROC: " + ", ".join(f"{k} {v:.3f}" for k, v in ood["auroc"].items()))
    if timing:
        cpu = timing.get("cpu_seconds")
        print(
            f"  training: {timing['wall_seconds']:.0f} s wall-clock, "
            + (f"{cpu:.0f} CPU-s" if cpu is not None else "CPU-s not recorded")
            + ("" if timing.get("complete") else " (may miss earlier invocations)")
        )
    if not (mnist or ood):
        print("  no protocol reports found: metadata.json has no MNIST figures (see --reports).")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
