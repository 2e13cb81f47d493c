"""Train a model of the zoo.

    python tools/train.py --model=descriptor                   # default config, shipped data
    python tools/train.py --model=multigrid --workdir=runs/mg --train_steps=2000
    python tools/train.py --model=vapo --dataset=cifar10 --config.data.batch_size=128
    python tools/train.py --model=ggcn --strategy=mirrored --num_cpu_devices=2

`--model` takes a family alias (descriptor, multigrid, multigrid_cd, multigrid_pcd, wgcn, ggcn,
vapo, short_run) or any config name in configs/. `--config.<key>=<value>` overrides any config
entry (dotted keys, e.g. --config.model.step_size=0.1). Re-running with the same --workdir
resumes from its last checkpoint; a workdir is used by one run at a time (train.lock). `--verbose`
sets Keras' progress display here; `--debug` shows TensorFlow logs and Python tracebacks.
"""

from __future__ import annotations

import os

from ebm_zoo.utils import cli

cli.quiet_startup(verbose_is_debug=False)  # --verbose is Keras' progress display here; --debug

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "descriptor", "Family alias or config name (see configs/).")
flags.DEFINE_string(
    "dataset", None, "Dataset name overriding config.data.name (e.g. textures/grass, cifar10)."
)
flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
flags.DEFINE_integer(
    "train_steps", None, "Number of training steps (>= 1) overriding config.train.steps.", lower_bound=1
)
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker"], "tf.distribute strategy.")
flags.DEFINE_integer(
    "num_cpu_devices",
    0,
    "Split the CPU into this many logical devices (e.g. 2 to try --strategy=mirrored).",
    lower_bound=0,
    upper_bound=64,
)
flags.DEFINE_integer(
    "verbose",
    1,
    "Keras verbosity: 1 progress bar, 2 one line per log period, 0 silent.",
    lower_bound=0,
    upper_bound=2,
)

_OVERRIDES: dict[str, str] = {}


def _split_config_overrides(argv: list[str]) -> list[str]:
    """Removes --config.<key>=<value> arguments (absl does not know them) into _OVERRIDES."""
    rest = []
    for arg in argv:
        if arg.startswith("--config."):
            key, sep, value = arg[len("--config.") :].partition("=")
            if not sep:
                raise app.UsageError(
                    f"{arg!r} has no value: config overrides take the form --config.<key>=<value>."
                )
            _OVERRIDES[key] = value
        else:
            rest.append(arg)
    return rest


def build_config():
    """The run's config: --model's config with --dataset, --train_steps and --config.* applied."""
    from ebm_zoo import config as config_lib
    from ebm_zoo.utils import checks

    cfg = config_lib.get_config(FLAGS.model)
    if FLAGS.dataset is not None:
        if not FLAGS.dataset.strip():
            raise checks.EbmZooError(
                "--dataset is empty; give a data set name (see ebm_zoo.data.list_datasets())."
            )
        cfg.data.name = FLAGS.dataset
    if FLAGS.train_steps is not None:
        cfg.train.steps = FLAGS.train_steps
    config_lib.apply_overrides(cfg, _OVERRIDES)
    workdir = FLAGS.workdir or os.path.join("runs", cfg.config_name)
    checks.check_output_dir(workdir, "--workdir")
    return cfg, workdir


def main(argv):
    del argv
    cfg, workdir = build_config()
    if FLAGS.num_cpu_devices > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(FLAGS.num_cpu_devices)]
        )
    from ebm_zoo import training

    print(f"Training {cfg.config_name} ({cfg.description}) in {workdir}")
    metrics = training.train(cfg, workdir, strategy=FLAGS.strategy, verbose=FLAGS.verbose)
    print("Final metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    print(f"Samples: {os.path.join(workdir, 'samples')}   TensorBoard: tensorboard --logdir {workdir}/tb")


if __name__ == "__main__":
    cli.run(main, flags_parser=_split_config_overrides, debug_flag=None, check=build_config)
