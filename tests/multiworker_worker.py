"""One process of tests/test_multiworker.py (not a test module itself).

    python tests/multiworker_worker.py OUT.npz FAMILY          # 1 replica (reference; no TF_CONFIG)
    TF_CONFIG=... python tests/multiworker_worker.py OUT.npz FAMILY   # a MultiWorkerMirroredStrategy worker
    [TF_CONFIG=...] python tests/multiworker_worker.py OUT.npz run WORKDIR   # ebm_zoo.training.train

Builds a tiny model of FAMILY ("vapo" or "descriptor") from a fixed seed, trains it for 2 steps of
global batch 8 with Keras `fit` under the strategy, and saves every model weight before
(init####) and after (w####) training to OUT.npz.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STEPS, GLOBAL_BATCH = 2, 8


def build(family: str):
    if family == "vapo":
        from tests.helpers import tiny_vapo

        return tiny_vapo(dropout=0.2, grad_clip=0.5, grad_clip_mode="std", ema_decay=0.5)
    from ebm_zoo.models import build_model
    from tests.helpers import tiny_descriptor_config

    return build_model(tiny_descriptor_config().model)


def run(out: str, workdir: str) -> None:
    """The training loop itself (tiny descriptor, 4 steps, checkpoints at 2 and 4)."""
    from ebm_zoo import training
    from tests.helpers import tiny_descriptor_config

    strategy = "multiworker" if "TF_CONFIG" in os.environ else "default"
    cfg = tiny_descriptor_config()
    cfg.data.batch_size = 2  # the global batch: one row per worker
    r = training.Run(cfg, workdir, training.make_strategy(strategy), verbose=0)
    r.fit()
    final = {f"w{i:04d}": v.numpy() for i, v in enumerate(r.model.weights)}
    np.savez(out, replicas=r.strategy.num_replicas_in_sync, chief=r.is_chief, workdir=r.workdir, **final)


def main(out: str, family: str) -> None:
    multi = "TF_CONFIG" in os.environ
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if multi else tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)  # the same initial weights in every process
    with strategy.scope():
        model = build(family)
        model.compile()
        model.build_all()
    size, ch = model.image_size, model.channels
    x01 = np.random.default_rng(1).random([STEPS * GLOBAL_BATCH, size, size, ch]).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(x01).batch(GLOBAL_BATCH)
    if multi:  # worker i takes rows [i·B/2, (i+1)·B/2) of every global batch, like replica i
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        ds = ds.with_options(opts)
    init = {f"init{i:04d}": v.numpy() for i, v in enumerate(model.weights)}
    model.fit(ds, epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    final = {f"w{i:04d}": v.numpy() for i, v in enumerate(model.weights)}
    np.savez(out, replicas=strategy.num_replicas_in_sync, **init, **final)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if sys.argv[2] == "run":
        run(sys.argv[1], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
