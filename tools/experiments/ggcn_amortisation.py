"""Does amortisation pay? Sample quality vs sampling seconds at an equal training budget.

Each model is trained on the same shipped data (LFW faces, 16×16 gray, the 90 training faces) for
the same budget of CPU seconds (of this process, all threads: the machine is shared), then draws
100 samples per sampler setting; we time the draw and compare the samples with the 100 LFW faces (train + test) by SWD and the Fréchet distance / KID in
the shipped feature extractor (ebm_zoo.metrics.evaluate_samples).

    python tools/experiments/ggcn_amortisation.py --budget_cpu_seconds=300 \
        --out_json=/tmp/ggcn_amortisation.json --image_dir=docs/images

Models: GGCN (configs/ggcn_cpu.py), wGCN (configs/wgcn_cpu.py: the same energy net as GGCN,
persistent chains, T = 20 implicit steps), the descriptor (= wgcn_cpu with explicit Langevin) and,
when present, the multi-grid model (configs/multigrid_cpu.py).
"""

from __future__ import annotations

import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_float(
    "budget_cpu_seconds",
    300.0,
    "Training budget per model in CPU seconds of this process (all threads): robust to the load "
    "other processes put on a shared machine, unlike wall-clock time.",
)
flags.DEFINE_list("models", ["ggcn", "descriptor", "wgcn", "multigrid"], "Models to compare.")
flags.DEFINE_integer("num_samples", 100, "Samples per sampler setting.")
flags.DEFINE_string("out_json", "/tmp/ggcn_amortisation.json", "Results file.")
flags.DEFINE_string("image_dir", None, "Where to write sample grids (docs/images/ggcn_amortisation_*.png).")
flags.DEFINE_integer("timing_repeats", 3, "Timed sample() calls per setting (median).")


class TimeBudget(keras.callbacks.Callback):
    """Stops `fit` once the process CPU time spent training exceeds the budget (checked every batch)."""

    def __init__(self, cpu_seconds: float):
        super().__init__()
        self.cpu_seconds = cpu_seconds
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.process_time() - self.c0 > self.cpu_seconds:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.elapsed = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0


def descriptor_faces_config():
    """The descriptor = `wgcn_cpu` with explicit Langevin: same net, pixel scale, σ, τ, T, noise
    and optimizer; only the sampler differs (MODELS.md §1 update, J = 1)."""
    from ebm_zoo.config import get_config

    cfg = get_config("wgcn_cpu")
    tau = cfg.model.tau
    for key in ("tau", "implicit_iters", "solver", "trace_points"):
        del cfg.model[key]
    cfg.model.family = "descriptor"
    cfg.model.step_size = math.sqrt(2 * tau)
    return cfg


def model_setups():
    """name -> (config, [(sampler label, sample() overrides), ...])."""
    from ebm_zoo.config import get_config

    setups = {
        "ggcn": (get_config("ggcn_cpu"), [("K=0 (generator)", {"num_steps": 0}), ("K=10", {})]),
        "descriptor": (
            descriptor_faces_config(),
            [("T=20 from noise", {}), ("T=200 from noise", {"num_steps": 200})],
        ),
        "wgcn": (get_config("wgcn_cpu"), [("T=20, J=3", {}), ("T=200, J=3", {"num_steps": 200})]),
    }
    try:
        setups["multigrid"] = (get_config("multigrid_cpu"), [("1→4→16, T=30/grid", {})])
    except Exception as e:  # noqa: BLE001 — the multi-grid config may not exist in this checkout
        print(f"multigrid skipped: {e}")
    return setups


def main(argv):
    del argv
    from ebm_zoo.data import load_array
    from ebm_zoo.metrics import evaluate_samples

    reference = load_array("lfw_faces", 16, split="all", channels=1)
    anchors = {
        "lfw_nonfaces (real images, wrong class)": load_array("lfw_nonfaces", 16, split="all", channels=1)
    }
    metrics = ("swd", "fd_small", "kid_small")
    results = {"reference": f"lfw_faces all ({len(reference)} images, 16x16 gray)", "rows": []}
    for name, arr in anchors.items():
        results["rows"].append(
            dict(model="anchor", sampler=name, **evaluate_samples(arr, reference, metrics))
        )
        print(results["rows"][-1])

    setups = model_setups()
    for name in FLAGS.models:
        if name not in setups:
            print(f"{name}: not available, skipped")
            continue
        try:
            run_model(name, *setups[name], reference, metrics, results)
        except Exception as e:  # noqa: BLE001 — report a model that fails, keep the others
            print(f"{name}: failed: {type(e).__name__}: {str(e)[:500]}")
            results["rows"].append(dict(model=name, error=f"{type(e).__name__}: {str(e)[:500]}"))
        with open(FLAGS.out_json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"wrote {FLAGS.out_json}")


def run_model(name, cfg, samplers, reference, metrics, results):
    """Trains one model for the budget, then times and scores each sampler setting."""
    from ebm_zoo.data import load_dataset
    from ebm_zoo.metrics import evaluate_samples
    from ebm_zoo.models import build_model
    from ebm_zoo.utils import images as image_utils

    keras.utils.set_random_seed(0)
    model = build_model(cfg.model)
    model.compile()
    model.build_all()
    d = cfg.data
    ds = load_dataset(
        d.name, image_size=int(d.image_size), split=d.split, batch_size=int(d.batch_size), channels=1
    )
    budget = TimeBudget(FLAGS.budget_cpu_seconds)
    model.fit(ds, epochs=1, steps_per_epoch=100_000, callbacks=[budget], verbose=0)
    print(f"{name}: trained {budget.steps} steps, {budget.cpu:.0f} CPU s, {budget.elapsed:.0f} s wall")
    for label, overrides in samplers:
        n = FLAGS.num_samples
        samples = np.asarray(model.sample(n, seed=1, **overrides))  # compiles
        times, cpu = [], []
        for r in range(FLAGS.timing_repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            samples = np.asarray(model.sample(n, seed=1 + r, **overrides))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        row = dict(
            model=name,
            sampler=label,
            train_steps=budget.steps,
            train_cpu_s=budget.cpu,
            train_wall_s=budget.elapsed,
            s_per_100=float(np.median(times)) * 100 / n,
            cpu_s_per_100=float(np.median(cpu)) * 100 / n,
            **evaluate_samples(samples, reference, metrics),
        )
        results["rows"].append(row)
        print(row)
        if FLAGS.image_dir:
            tag = "".join(ch for ch in label.split(" ")[0] if ch.isascii() and ch.isalnum())
            path = os.path.join(FLAGS.image_dir, f"ggcn_amortisation_{name}_{tag}.png")
            image_utils.save_grid(samples[:36], path)


if __name__ == "__main__":
    app.run(main)
