"""Scores a trained GGCN / wGCN workdir against held-out images, for several sampler settings.

    python tools/train.py --model=ggcn_digits --workdir=runs/ggcn_digits
    python tools/experiments/ggcn_evaluate.py --workdir=runs/ggcn_digits --split=test \
        --num_steps=0,10 --png_prefix=docs/images/ggcn_digits

Reads `config.json` + `model.weights.h5` of the workdir (written by ebm_zoo.training), draws as
many samples as there are reference images, and prints SWD / FD / KID in the shipped feature
extractor. A real-vs-real row (the same number of *training* images against the reference) gives
the floor the figures can reach with this reference size.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir (config.json, model.weights.h5).", required=True)
flags.DEFINE_string("split", "test", "Reference split of the config's data set.")
flags.DEFINE_list("num_steps", ["0", "10"], "Values of K (GGCN) / T (wGCN) to evaluate.")
flags.DEFINE_string("png_prefix", None, "Write sample grids <prefix>_K<k>.png.")
flags.DEFINE_string("out_json", None, "Optional results file.")


def main(argv):
    del argv
    from ebm_zoo import config as config_lib
    from ebm_zoo.data import load_array
    from ebm_zoo.metrics import evaluate_samples
    from ebm_zoo.models import build_model
    from ebm_zoo.utils import images as image_utils

    with open(os.path.join(FLAGS.workdir, "config.json")) as f:
        cfg = config_lib.from_json(f.read())
    model = build_model(cfg.model)
    model.build_all()
    model.load_weights(os.path.join(FLAGS.workdir, "model.weights.h5"))
    d = cfg.data
    channels = int(d.get("channels", model.channels))
    reference = load_array(d.name, int(d.image_size), split=FLAGS.split, channels=channels)
    n = len(reference)
    metrics = ("swd", "fd_small", "kid_small")
    rows = []
    train = load_array(d.name, int(d.image_size), split="train", channels=channels, limit=n)
    rows.append(dict(sampler=f"real: {n} training images", **evaluate_samples(train, reference, metrics)))
    for k in (int(v) for v in FLAGS.num_steps):
        samples = np.asarray(model.sample(n, seed=0, num_steps=k))  # compiles
        t0, c0 = time.perf_counter(), time.process_time()
        samples = np.asarray(model.sample(n, seed=1, num_steps=k))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append(
            dict(
                sampler=f"num_steps={k}",
                s_per_100=wall * 100 / n,
                cpu_s_per_100=cpu * 100 / n,
                **evaluate_samples(samples, reference, metrics),
            )
        )
        if FLAGS.png_prefix:
            image_utils.save_grid(samples[:64], f"{FLAGS.png_prefix}_K{k}.png")
    for r in rows:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
    if FLAGS.out_json:
        with open(FLAGS.out_json, "w") as f:
            json.dump(
                {"workdir": FLAGS.workdir, "reference": f"{d.name}/{FLAGS.split} ({n})", "rows": rows},
                f,
                indent=2,
            )


if __name__ == "__main__":
    app.run(main)
