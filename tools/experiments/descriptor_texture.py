"""Does the descriptor really learn a texture? Texture distances of its samples vs an untrained net.

    python tools/experiments/descriptor_texture.py --workdir=runs/descriptor_brick

Reads a finished `tools/train.py --model=descriptor` run, and compares with the project's metrics
(texture Gram distance in the shipped classifier, pixel-pyramid Gram distance, multi-scale SWD):
  trained   — the persistent chains (the samples the model learned with) and fresh samples drawn
              from noise with `sample_steps` Langevin steps;
  untrained — the same architecture at its seeded initialisation, sampled the same way.
Writes a JSON report and a PNG sheet (texture | untrained samples | trained samples) to the workdir.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "runs/descriptor_brick", "A finished descriptor run.")
flags.DEFINE_integer("num_samples", 16, "Samples per set.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
    del argv
    import keras

    from ebm_zoo import config as config_lib
    from ebm_zoo.data import load_array
    from ebm_zoo.metrics import evaluate_samples
    from ebm_zoo.models import build_model
    from ebm_zoo.training import Run
    from ebm_zoo.utils.images import make_grid, save_png

    with open(os.path.join(FLAGS.workdir, "config.json")) as f:
        cfg = config_lib.from_json(f.read())
    d = cfg.data
    extra = {k: v for k, v in d.items() if k not in ("name", "image_size", "batch_size", "split")}
    texture = load_array(d.name, int(d.image_size), split=d.split, **extra)
    # SWD compares patch distributions between image sets: use the texture and its mirror images.
    reference = np.concatenate([texture, texture[:, :, ::-1], texture[:, ::-1], texture[:, ::-1, ::-1]])

    run = Run(cfg, FLAGS.workdir, verbose=0)
    trained = run.model
    keras.utils.set_random_seed(int(cfg.train.get("seed", 0)))
    untrained = build_model(cfg.model)
    untrained.build_all()

    n, seed = FLAGS.num_samples, FLAGS.seed
    steps = trained.num_steps * run.start_step if trained.chains is not None else trained.sample_steps
    steps = int(min(max(steps, trained.sample_steps), 2000))
    sets = {
        "untrained": np.asarray(untrained.sample(n, seed=seed, num_steps=steps)),
        "trained_fresh": np.asarray(trained.sample(n, seed=seed, num_steps=steps)),
    }
    if trained.chains is not None:
        sets["trained_chains"] = trained.from_internal(trained.chains.states[:n]).numpy()
    metrics = ("gram", "gram_pixels", "swd")
    report = {"workdir": FLAGS.workdir, "train_step": run.start_step, "sample_steps": steps, "num_samples": n}
    for name, imgs in sets.items():
        report[name] = evaluate_samples(imgs, reference, metrics=metrics, seed=seed)
    for key in metrics:
        base = report["untrained"][key]
        for name in sets:
            if name != "untrained":
                report[f"factor_{key}_{name}"] = base / max(report[name][key], 1e-12)
    with open(os.path.join(FLAGS.workdir, "texture_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    rows = [make_grid(np.repeat(texture, 4, 0), ncol=4)] + [make_grid(sets[k][:4], ncol=4) for k in sets]
    w = max(r.shape[1] for r in rows)
    sheet = np.concatenate(
        [np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    )
    save_png(sheet, os.path.join(FLAGS.workdir, "texture_sheet.png"), upscale=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
