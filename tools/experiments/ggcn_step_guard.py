"""The wGCN refinement flow of a trained GGCN checkpoint with the step guard off and on.

Builds the model from a run's config.json, restores one checkpoint (weights only are used), and
runs the K refinement steps from G(h) on a few batches, once unguarded (max_backtracks = 0) and
once per guard setting, with the same h and the same noise. Reports per setting:

  flow_rises        fraction of the K steps that raised the batch-mean energy (the training metric)
  chain_step_rises  fraction of (chain, step) pairs whose own energy rose
  chains_end_higher fraction of chains with E(x_K) > E(x_0)
  mean_dE           mean over chains of E(x_K) − E(x_0)
  guard_fires / guard_backtracks / guard_rejects   per chain-step (guarded settings only)
  seconds_per_flow  wall-clock per batch (after one warm-up batch)

    python tools/experiments/ggcn_step_guard.py --run=/tmp/run_copy --ckpt=ckpt-6000 \
        --batches=4 --out_json=/tmp/ggcn_step_guard.json

Read-only on the run directory (copy a run you must not touch to /tmp first).
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "Run directory holding config.json and checkpoints/.")
flags.DEFINE_string("ckpt", "ckpt-6000", "Checkpoint name inside <run>/checkpoints.")
flags.DEFINE_integer("batches", 4, "Batches of the run's batch size.")
flags.DEFINE_list("backtracks", ["0", "3"], "max_backtracks settings to compare (0 = unguarded).")
flags.DEFINE_string("out_json", None, "Optional JSON output.")


def main(argv):
    del argv
    import tensorflow as tf

    from ebm_zoo import distribute
    from ebm_zoo.models import build_model
    from ebm_zoo.presets.files import read_json

    cfg = read_json(os.path.join(FLAGS.run, "config.json"), "The run's config")
    model = build_model(cfg["model"])
    model.compile()
    model.build_all()
    path = os.path.join(FLAGS.run, "checkpoints", FLAGS.ckpt)
    tf.train.Checkpoint(**model.checkpoint_items()).restore(path).expect_partial()
    batch = int(cfg["data"]["batch_size"])
    settings = [int(v) for v in FLAGS.backtracks]
    out = {"run": FLAGS.run, "ckpt": FLAGS.ckpt, "batches": FLAGS.batches, "batch_size": batch}

    # Per-chain energies after every step: the K steps are run one call each (step t's noise
    # from split_seed(seed, t)); every setting sees the same h and the same noise.
    from ebm_zoo.sampling.langevin import wgcn_flow

    def chain_energies(x):
        return model._energy(x)

    for m in settings:
        acc = {
            k: []
            for k in ("flow_rises", "chain_step_rises", "chains_end_higher", "mean_dE", "mean_E0", "mean_EK")
        }
        acc.update({k: [] for k in ("guard_fires", "guard_backtracks", "guard_rejects")})
        times = []

        @tf.function
        def step_by_step(h, seed, m=m):
            x = model.generator(h, training=False)
            energies = [chain_energies(x)]
            stats = []
            for t in range(model.num_steps):  # one step per call, the flow's own noise of step t
                res = wgcn_flow(
                    model.score,
                    x,
                    ref_sigma=model.ref_sigma,
                    num_steps=1,
                    step_size=model.step_size,
                    seed=distribute.split_seed(seed, t),
                    noise_scale=model.noise_scale,
                    implicit_iters=model.implicit_iters,
                    solver=model.solver,
                    trace=False,
                    max_backtracks=m,
                )
                x = res.samples
                energies.append(chain_energies(x))
                if res.guard is not None:
                    stats.append(tf.stack(list(res.guard)))
            e = tf.stack(energies)  # [K + 1, N]
            return e, (tf.reduce_mean(tf.stack(stats), axis=0) if stats else tf.zeros([3, tf.shape(h)[0]]))

        @tf.function
        def whole_flow(h, seed, m=m):
            x = model.generator(h, training=False)
            return wgcn_flow(
                model.score,
                x,
                ref_sigma=model.ref_sigma,
                num_steps=model.num_steps,
                step_size=model.step_size,
                seed=seed,
                noise_scale=model.noise_scale,
                implicit_iters=model.implicit_iters,
                solver=model.solver,
                trace=True,
                max_backtracks=m,
            ).samples

        for b in range(FLAGS.batches):
            h = tf.random.stateless_normal([batch, *model.latent_shape], [b, 2026])
            seed = tf.constant([b, 11], tf.int32)
            e, g = step_by_step(h, seed)
            e = e.numpy()
            mean_e = e.mean(axis=1)
            acc["flow_rises"].append(float(np.mean(mean_e[1:] > mean_e[:-1])))
            acc["chain_step_rises"].append(float(np.mean(e[1:] > e[:-1])))
            acc["chains_end_higher"].append(float(np.mean(e[-1] > e[0])))
            acc["mean_dE"].append(float(np.mean(e[-1] - e[0])))
            acc["mean_E0"].append(float(np.mean(e[0])))
            acc["mean_EK"].append(float(np.mean(e[-1])))
            g = g.numpy()
            for i, k in enumerate(("guard_fires", "guard_backtracks", "guard_rejects")):
                acc[k].append(float(g[i].mean()))
            whole_flow(h, seed)  # warm-up / timing of the compiled K-step loop
            t0 = time.perf_counter()
            whole_flow(h, seed).numpy()
            times.append(time.perf_counter() - t0)
        row = {k: round(float(np.mean(v)), 4) for k, v in acc.items()}
        if m == 0:
            for k in ("guard_fires", "guard_backtracks", "guard_rejects"):
                row.pop(k)
        row["seconds_per_flow"] = round(float(np.median(times)), 3)
        out[f"max_backtracks={m}"] = row
        print(f"max_backtracks={m}: {json.dumps(row)}", flush=True)
    if FLAGS.out_json:
        with open(FLAGS.out_json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    flags.mark_flag_as_required("run")
    app.run(main)
