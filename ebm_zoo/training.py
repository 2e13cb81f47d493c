"""The training loop behind `tools/train.py`: config → dataset → model → `fit`, resumable.

    from ebm_zoo import config, training
    cfg = config.get_config("descriptor")
    training.train(cfg, workdir="runs/descriptor")

The workdir holds everything needed to reproduce and continue a run:

    config.json            the resolved config (a different model config in the same workdir is refused)
    checkpoints/           tf.train checkpoints: model, optimizer(s), persistent chains, step
    samples/step_XXXXXX.png   a sample grid at every checkpoint (per-grid PNGs where the model has grids)
    tb/                    TensorBoard scalars (every logged metric) and sample images
    model.weights.h5, model_config.json, metrics.json   written at the end
    workers/<task>/        multi-worker runs only: the non-chief workers' own checkpoints

Multi-worker (`strategy="multiworker"`, TF_CONFIG set on every worker): every worker runs the
same command with the same --workdir; the chief (task "chief", else worker 0) writes the files
above, the others only their checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo import config as config_lib
from ebm_zoo.models import build_model
from ebm_zoo.utils import images as image_utils
from ebm_zoo.utils.checks import EbmZooError


class TrainingDiverged(EbmZooError):
    """Raised when a logged metric becomes non-finite or exceeds the divergence threshold."""


def make_strategy(name: str) -> tf.distribute.Strategy:
    """'default' (one device), 'mirrored' (all local devices) or 'multiworker' (TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise EbmZooError(f"Unknown strategy {name!r}; valid: default, mirrored, multiworker.")


def chief_and_task(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is this process the chief?, its task index) — (True, 0) unless multi-worker.

    The chief is task "chief", or worker 0 when the cluster has no "chief" task (TF_CONFIG)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if not task_type:
        return True, 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief), task_id


def _check_schedule(train_cfg) -> None:
    steps, log_every, ckpt_every = (
        int(train_cfg.steps),
        int(train_cfg.log_every),
        int(train_cfg.checkpoint_every),
    )
    if steps <= 0 or log_every <= 0 or ckpt_every <= 0:
        raise EbmZooError(
            f"train.steps ({steps}), train.log_every ({log_every}) and train.checkpoint_every "
            f"({ckpt_every}) must all be > 0."
        )
    if steps % log_every or ckpt_every % log_every:
        raise EbmZooError(
            f"train.steps ({steps}) and train.checkpoint_every ({ckpt_every}) must be multiples of "
            f"train.log_every ({log_every}); e.g. --config.train.log_every={math.gcd(steps, ckpt_every)}."
        )


def _write_config(cfg, workdir: str) -> None:
    path = os.path.join(workdir, "config.json")
    text = config_lib.to_json(cfg)
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old.get("model") != json.loads(text)["model"]:
            raise EbmZooError(
                f"{workdir} holds a run with a different model config ({path}); resuming it with this "
                f"config would not restore. Use a new --workdir, or the original config."
            )
    with open(path, "w") as f:
        f.write(text)


class _RunCallback(keras.callbacks.Callback):
    """Divergence guard, TensorBoard scalars/images, checkpoints and sample-grid PNGs."""

    def __init__(self, run: Run):
        super().__init__()
        self.run = run

    def on_train_batch_end(self, batch, logs=None):
        self.run.check_divergence(logs or {}, self.run.step_after_batch(batch))

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.run.log_every
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.run.check_divergence(logs, step)
        self.run.log_scalars(logs, step)
        if step % self.run.checkpoint_every == 0 or step == self.run.total_steps:
            self.run.save(step)


class Run:
    """One training run in a workdir (see module docstring)."""

    def __init__(self, cfg, workdir: str, strategy: tf.distribute.Strategy | None = None, verbose: int = 1):
        _check_schedule(cfg.train)
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        # Multi-worker: every worker saves checkpoints (saving reads synchronised variables, a
        # collective step), but only the chief writes the workdir; the others keep their own
        # copy in workdir/workers/<task> (which also lets them resume) and skip sample grids.
        replicas = int(self.strategy.num_replicas_in_sync)
        if int(cfg.data.batch_size) % replicas:
            raise EbmZooError(
                f"data.batch_size={int(cfg.data.batch_size)} is the global batch and must be divisible "
                f"by the {replicas} replicas of the strategy (each replica takes an equal share); "
                f"use e.g. --config.data.batch_size={replicas * max(1, int(cfg.data.batch_size) // replicas)}."
            )
        self.is_chief, task = chief_and_task(self.strategy)
        self.workdir = workdir if self.is_chief else os.path.join(workdir, "workers", str(task))
        workdir = self.workdir
        self.verbose = verbose
        self.total_steps = int(cfg.train.steps)
        self.log_every = int(cfg.train.log_every)
        self.checkpoint_every = int(cfg.train.checkpoint_every)
        self.num_samples = int(cfg.train.get("num_samples", 16))
        from ebm_zoo.data import describe

        describe(cfg.data.name)  # fails fast (before any model is built) on an unknown data set
        os.makedirs(workdir, exist_ok=True)
        _write_config(cfg, workdir)

        # Weight initialisation is seeded too, so a config fully determines a run.
        keras.utils.set_random_seed(int(cfg.train.get("seed", 0)))
        with self.strategy.scope():
            self.model = build_model(cfg.model)
            self.model.compile()
            self.model.build_all()
        self.threshold = float(getattr(self.model, "divergence_threshold", 1e12))
        self.checkpoint = tf.train.Checkpoint(**self.model.checkpoint_items())
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(workdir, "checkpoints"), max_to_keep=3, checkpoint_name="ckpt"
        )
        self.start_step = 0
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.start_step = int(self.model.optimizer.iterations.numpy())
            if self.verbose:
                print(f"Resumed from {self.manager.latest_checkpoint} at step {self.start_step}.")
        self.writer = tf.summary.create_file_writer(os.path.join(workdir, "tb"))
        self._epoch_start_step = self.start_step

    # ------------------------------------------------------------------------------------------
    def step_after_batch(self, batch: int) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def check_divergence(self, logs: dict, step: int) -> None:
        for name, value in logs.items():
            v = float(value)
            if not math.isfinite(v) or abs(v) > self.threshold:
                last = self.manager.latest_checkpoint or "none (no checkpoint was written yet)"
                raise TrainingDiverged(
                    f"Training diverged at step {step}: metric {name!r} = {v:.4g} (threshold "
                    f"{self.threshold:.3g}). The last good checkpoint is kept: {last}. Lower the step size "
                    f"or learning rate (e.g. --config.model.learning_rate), or enable gradient clipping."
                )

    def log_scalars(self, logs: dict, step: int) -> None:
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                tf.summary.scalar(name, value)
        self.writer.flush()

    def sample_grids(self, seed: int = 0) -> dict[str, np.ndarray]:
        """{name: images [n, H, W, C] in [0, 1]}: 'samples', plus one per grid where available."""
        grids = {"samples": np.asarray(self.model.sample(self.num_samples, seed=seed))}
        if hasattr(self.model, "training_grids"):
            grids.update(self.model.training_grids(self.num_samples))
        if hasattr(self.model, "sample_all_grids"):
            for i, imgs in enumerate(self.model.sample_all_grids(self.num_samples, seed=seed)):
                imgs = np.asarray(imgs)
                grids[f"grid{i}_{imgs.shape[1]}px"] = imgs
        return grids

    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            return path
        grids = self.sample_grids(seed=int(self.cfg.train.get("seed", 0)))
        with self.writer.as_default(step=step):
            for name, imgs in grids.items():
                suffix = "" if name == "samples" else f"_{name}"
                image_utils.save_grid(
                    imgs, os.path.join(self.workdir, "samples", f"step_{step:06d}{suffix}.png")
                )
                tf.summary.image(name, image_utils.make_grid(imgs)[None], step=step)
        self.writer.flush()
        return path

    # ------------------------------------------------------------------------------------------
    def dataset(self, skip_batches: int):
        from ebm_zoo.data import load_dataset

        d = self.cfg.data
        extra = {k: v for k, v in d.items() if k not in ("name", "image_size", "batch_size", "split")}
        return load_dataset(
            d.name,
            image_size=int(d.image_size),
            split=d.get("split", "train"),
            batch_size=int(d.batch_size),
            seed=int(self.cfg.train.get("seed", 0)),
            skip_batches=skip_batches,
            **extra,
        )

    def fit(self) -> dict:
        """Trains until train.steps; returns the last logged metrics."""
        if self.start_step >= self.total_steps:
            if self.verbose:
                print(
                    f"Nothing to do: the run in {self.workdir} is at step {self.start_step} >= {self.total_steps}."
                )
            return self._final_metrics({})
        if self.start_step % self.log_every:
            raise EbmZooError(
                f"The checkpoint is at step {self.start_step}, not a multiple of train.log_every="
                f"{self.log_every}; resume with the log_every the run was started with."
            )
        ds = self.dataset(skip_batches=self.start_step)
        t0 = time.time()
        history = self.model.fit(
            ds,
            epochs=self.total_steps // self.log_every,
            initial_epoch=self.start_step // self.log_every,
            steps_per_epoch=self.log_every,
            callbacks=[_RunCallback(self)],
            verbose=self.verbose,
            shuffle=False,  # the dataset is shuffled (deterministically) by load_dataset
        )
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        logs["train_seconds"] = time.time() - t0
        return self._final_metrics(logs)

    def _final_metrics(self, logs: dict) -> dict:
        self.model.save_weights(os.path.join(self.workdir, "model.weights.h5"))
        with open(os.path.join(self.workdir, "model_config.json"), "w") as f:
            json.dump(
                {
                    "class_name": type(self.model).__name__,
                    "family": self.model.family,
                    "config": self.model.get_config(),
                },
                f,
                indent=2,
            )
        logs = {"step": int(self.model.optimizer.iterations.numpy()), **logs}
        with open(os.path.join(self.workdir, "metrics.json"), "w") as f:
            json.dump(logs, f, indent=2)
        return logs


def train(cfg, workdir: str, strategy: str | tf.distribute.Strategy = "default", verbose: int = 1) -> dict:
    """Trains `cfg` in `workdir` (resuming if it holds a checkpoint); returns final metrics."""
    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    return Run(cfg, workdir, strategy, verbose).fit()
