"""Multi-grid vs contrastive divergence vs persistent CD with equal budgets, plus inpainting.

    python tools/experiments/multigrid_compare.py                       # 3 runs, seed 0, 300 steps
    python tools/experiments/multigrid_compare.py --seeds=0,1 --steps=300 \
        --runs=multigrid_cpu,multigrid_cd_cpu,multigrid_pcd_cpu,multigrid_cpu:norm=none
    python tools/experiments/multigrid_compare.py --steps=4 --num_samples=16 --out=/tmp/smoke.json
    python tools/experiments/multigrid_compare.py --table_from=docs/images/multigrid_compare.json,...

Every run trains a config from configs/ (a run is `config[:key=value;key=value]`, the keys being
model constructor arguments) for the same number of iterations on the config's dataset, then:
- generation: `num_samples` samples from scratch vs the reference images (split `ref_split`),
  multi-scale SWD (×1e3) and Fréchet distance in the shipped classifier (ebm_zoo.metrics);
- inpainting: PSNR on the masked pixels of the `inpaint_split` images for each mask kind, for
  the run's model and for the mean-colour fill (every unknown pixel = mean of the known pixels).
Writes a JSON with every figure, a Markdown table on stdout, and PNG grids in --png_dir.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "runs", ["multigrid_cpu", "multigrid_cd_cpu", "multigrid_pcd_cpu"], "Runs: config[:k=v;k=v]."
)
flags.DEFINE_list("seeds", ["0"], "Training seeds (model.seed and data order).")
flags.DEFINE_integer("steps", 300, "Training iterations per run (equal budget).")
flags.DEFINE_integer("num_samples", 100, "Samples for the generation metrics.")
flags.DEFINE_string("ref_split", "all", "Reference split for the generation metrics.")
flags.DEFINE_string("inpaint_split", "test", "Images to inpaint.")
flags.DEFINE_list("masks", ["center", "random", "left"], "Mask kinds for inpainting.")
flags.DEFINE_string("out", "docs/images/multigrid_compare.json", "JSON output.")
flags.DEFINE_string("png_dir", "docs/images", "Directory of the PNG grids ('' = none).")
flags.DEFINE_list("table_from", [], "Only print the table of these result JSONs (no training).")


def parse_run(spec: str) -> tuple[str, dict]:
    """'multigrid_cpu:norm=none;num_steps=10' -> ('multigrid_cpu', {'norm': 'none', 'num_steps': 10})."""
    from ebm_zoo.config import parse_value

    name, _, rest = spec.partition(":")
    overrides = {}
    for item in filter(None, rest.split(";")):
        key, _, value = item.partition("=")
        overrides[key.strip()] = parse_value(value.strip())
    return name, overrides


def run_label(spec: str) -> str:
    return (
        spec.replace("multigrid_", "")
        .replace("_cpu", "")
        .replace(":", "_")
        .replace(";", "_")
        .replace("=", "-")
    )


def train_one(spec: str, seed: int, steps: int):
    from ebm_zoo import config as config_lib
    from ebm_zoo.data import load_dataset
    from ebm_zoo.models import build_model

    name, overrides = parse_run(spec)
    cfg = config_lib.get_config(name)
    cfg.model.update(dict(seed=seed, **overrides))
    model = build_model(cfg.model)
    model.compile()
    model.build_all()
    d = cfg.data
    ds = load_dataset(
        d.name, int(d.image_size), d.split, int(d.batch_size), seed=seed, channels=d.get("channels")
    )
    t0 = time.time()
    hist = model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    train_s = time.time() - t0
    logs = {k: float(v[-1]) for k, v in hist.history.items()}
    return cfg, model, train_s, logs


def main(argv):
    del argv
    if FLAGS.table_from:
        rows = []
        for path in FLAGS.table_from:
            with open(path) as f:
                rows += [dict(r, run=f"{r['run']} ({r['steps']} it.)") for r in json.load(f)["rows"]]
        print_table(rows)
        return
    from ebm_zoo.data import load_array
    from ebm_zoo.metrics import evaluate_samples
    from ebm_zoo.models.multigrid import make_mask, masked_psnr, mean_colour_fill
    from ebm_zoo.utils.images import save_grid

    rows = []
    for seed in [int(s) for s in FLAGS.seeds]:
        for spec in FLAGS.runs:
            cfg, model, train_s, logs = train_one(spec, seed, FLAGS.steps)
            d = cfg.data
            ref = load_array(d.name, int(d.image_size), FLAGS.ref_split, channels=d.get("channels"))
            t0 = time.time()
            samples = np.asarray(model.sample(FLAGS.num_samples, seed=1000 + seed))
            sample_s = time.time() - t0
            if np.all(np.isfinite(samples)):
                gen = evaluate_samples(samples, ref, metrics=("swd", "fd_small"), seed=0)
            else:  # a diverged run: record it instead of stopping the comparison
                gen = {"swd": float("nan"), "fd_small": float("nan")}
            row = {
                "run": spec,
                "seed": seed,
                "steps": FLAGS.steps,
                "train_s": train_s,
                "sample_s": sample_s,
                "swd": gen["swd"],
                "fd_small": gen["fd_small"],
                "final_logs": logs,
            }
            test = load_array(d.name, int(d.image_size), FLAGS.inpaint_split, channels=d.get("channels"))
            for kind in FLAGS.masks:
                mask = make_mask(kind, int(d.image_size), len(test), seed=seed)
                filled = np.asarray(model.inpaint(test, mask, seed=seed))
                row[f"psnr_{kind}"] = masked_psnr(filled, test, mask)
                row[f"psnr_{kind}_meanfill"] = masked_psnr(mean_colour_fill(test, mask), test, mask)
                if FLAGS.png_dir and seed == int(FLAGS.seeds[0]):
                    masked = np.where(np.broadcast_to(mask, test.shape) > 0.5, 0.5, test)
                    save_grid(
                        np.concatenate([masked, filled, test]),
                        os.path.join(FLAGS.png_dir, f"multigrid_inpaint_{run_label(spec)}_{kind}.png"),
                        ncol=len(test),
                    )
            if FLAGS.png_dir and seed == int(FLAGS.seeds[0]):
                save_grid(
                    samples[:64], os.path.join(FLAGS.png_dir, f"multigrid_samples_{run_label(spec)}.png")
                )
                if hasattr(model, "sample_all_grids") and model.mode == "multigrid":
                    for grid in model.sample_all_grids(16, seed=1000 + seed)[1:]:
                        grid = np.asarray(grid)
                        save_grid(
                            grid,
                            os.path.join(
                                FLAGS.png_dir, f"multigrid_samples_{run_label(spec)}_grid{grid.shape[1]}.png"
                            ),
                            ncol=4,
                        )
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "final_logs"}), flush=True)
            if FLAGS.out:
                os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
                with open(FLAGS.out, "w") as f:
                    json.dump({"flags": FLAGS.flag_values_dict(), "rows": rows}, f, indent=2, default=str)
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    """Markdown table: mean ± std over seeds per run."""
    runs = list(dict.fromkeys(r["run"] for r in rows))
    keys = ["train_s", "swd", "fd_small"] + [k for k in rows[0] if k.startswith("psnr_")]
    print("\n| run | seeds | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for run in runs:
        rs = [r for r in rows if r["run"] == run]
        cells = []
        for k in keys:
            v = np.array([r[k] for r in rs], float)
            cells.append(f"{v.mean():.3g}" + (f" ± {v.std(ddof=1):.2g}" if len(v) > 1 else ""))
        print(f"| {run} | {len(rs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    app.run(main)
