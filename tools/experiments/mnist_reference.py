"""Reference rows of the MNIST protocol: the floor and the two baselines, by the protocol's own code.

    python tools/experiments/mnist_reference.py                     # all three rows
    python tools/experiments/mnist_reference.py --rows=floor --out=/tmp/ref.json

Rows (ebm_zoo/metrics/mnist_protocol.py, `reference_images`): "floor" = 5,000 MNIST train images,
"gaussian" = independent per-pixel Gaussian fitted on the 60,000 train images, "blur" = the floor's
images through a 7x7 box filter. Each row is evaluated like a model's 5,000 samples against the
10,000 test images (seed 0). Writes the rows as JSON (default docs/benchmarks/mnist_reference.json)
and an 8x8 sheet per row in --sheets_dir.
"""

from __future__ import annotations

import json
import os
import time

from ebm_zoo.utils import cli, machine

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("rows", ["floor", "gaussian", "blur"], "Reference rows to compute.")
flags.DEFINE_string("out", "docs/benchmarks/mnist_reference.json", "JSON file for the rows.")
flags.DEFINE_string("sheets_dir", "reports/mnist_reference", "Directory for <row>/samples.png + report.json.")

KEYS = (
    "fd_mnist",
    "kid_mnist",
    "kid_mnist_std",
    "classifier_score",
    "classifier_score_std",
    "effective_classes",
    "precision",
    "recall",
    "class_fractions",
    "num_samples",
    "num_reference",
    "seed",
    "standard",
    "metric_seconds",
)


ROWS = ("floor", "gaussian", "blur")


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    bad = [r for r in FLAGS.rows if r not in ROWS]
    if bad or not FLAGS.rows:
        raise EbmZooError(f"--rows must list some of {', '.join(ROWS)}, got {FLAGS.rows}.")
    checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
    checks.check_output_dir(FLAGS.sheets_dir, "--sheets_dir")


def main(argv):
    del argv
    from ebm_zoo.metrics import mnist_classifier, mnist_protocol
    from ebm_zoo.utils.atomic import atomic_write_text

    rows = {}
    for kind in FLAGS.rows:
        report = mnist_protocol.reference_report(kind, os.path.join(FLAGS.sheets_dir, kind))
        rows[kind] = {k: report[k] for k in KEYS}
        print(json.dumps({kind: {k: rows[kind][k] for k in KEYS[:8]}}), flush=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    doc = {
        "command": "python tools/experiments/mnist_reference.py",
        "protocol": mnist_protocol.PROTOCOL,
        "classifier_sha256": mnist_classifier.WEIGHTS_SHA256,
        "rows": rows,
        "machine": {"cpu": machine.cpu_name(), "cpus": os.cpu_count(), "loadavg_at_end": load},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    atomic_write_text(FLAGS.out, json.dumps(doc, indent=2) + "\n")
    print(f"Wrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
