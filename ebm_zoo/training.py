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
    timing.json            wall-clock and process CPU seconds of the training loop up to the last
                           checkpoint, summed over resumed invocations (rewritten at each checkpoint)
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
from ebm_zoo.utils import atomic
from ebm_zoo.utils import images as image_utils
from ebm_zoo.utils.checks import EbmZooError, check_output_dir


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
    """train.steps >= 1 and log_every / checkpoint_every (/ max_to_keep, optional) >= 1, all ints
    (any combination runs: a count that is not a multiple of log_every logs and checkpoints at its
    end too)."""
    for key in ("steps", "log_every", "checkpoint_every", "max_to_keep"):
        if key == "max_to_keep" and key not in train_cfg:
            continue  # optional: the checkpoints kept (default 3)
        value = train_cfg.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        hint = (
            " A run needs at least one step; to only load a finished run use ebm_zoo.load(workdir)."
            if key == "steps"
            else ""
        )
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise EbmZooError(
                f"train.{key} must be an int >= 1, got {value!r}; set it with --config.train.{key}=N"
                f"{' or --train_steps=N' if key == 'steps' else ''}.{hint}"
            )


#: Config keys a re-run may change: it continues the same run (more steps, other logging).
RESUMABLE_KEYS = (
    "train.steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.max_to_keep",
    "train.num_samples",
    "description",
    "config_name",
)


def _flat(d, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _is_constructor_default(flat_cfg: dict, key: str) -> bool:
    """True when `key` (absent from a saved run, added to the configs since) holds what the model
    family's constructor uses when the key is not given: the run is the same run. Keys of a
    nested mapping (e.g. `model.sampler_options.step_size`) count as default when the value is
    None and the constructor's default for the mapping is None or empty (None = "the default")."""
    parts = key.split(".")
    if parts[0] != "model" or len(parts) < 2:
        return False
    import inspect

    from ebm_zoo.models import get_model_class

    try:
        cls = get_model_class(flat_cfg.get("model.family"))
    except Exception:  # unknown family: the build reports it
        return False
    param = None
    for klass in cls.__mro__:  # subclasses pass **kwargs on to their bases
        init = klass.__dict__.get("__init__")
        if init is not None and parts[1] in inspect.signature(init).parameters:
            param = inspect.signature(init).parameters[parts[1]]
            break
    if param is None or param.default is inspect.Parameter.empty:
        return False
    value = flat_cfg[key]
    if len(parts) == 2:
        return value == param.default
    return value is None and not param.default


def _write_config(cfg, workdir: str) -> None:
    """Writes config.json; a workdir that already holds a run keeps its config unless only
    RESUMABLE_KEYS differ (then the run continues with the new schedule)."""
    path = os.path.join(workdir, "config.json")
    text = config_lib.to_json(cfg)
    if os.path.exists(path):
        from ebm_zoo.presets.files import read_json

        old = _flat(read_json(path, "The run's config"))
        new = _flat(json.loads(text))
        diff = sorted(
            k
            for k in set(old) | set(new)
            if old.get(k) != new.get(k)
            and k not in RESUMABLE_KEYS
            and not (k not in old and _is_constructor_default(new, k))
        )
        if diff:
            shown = "; ".join(
                f"{k}: {old.get(k, '<absent>')!r} in the run, {new.get(k, '<absent>')!r} now"
                for k in diff[:6]
            )
            more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
            what = (
                "a different model config"
                if any(k.startswith("model.") for k in diff)
                else "a different config"
            )
            raise EbmZooError(
                f"{workdir} holds a run with {what} ({path}): {shown}{more}. Its config.json is left as it is. "
                f"Use a new --workdir for this config, or re-run with the run's own settings (drop those overrides)."
            )
    atomic.write_text(path, text)


def _check_workdir(workdir: str) -> None:
    """A workdir must be (or become) a writable directory."""
    check_output_dir(workdir, "workdir")


class WorkdirLock:
    """An exclusive lock on `<workdir>/train.lock` (fcntl.flock: released by the OS when the
    process ends, even by SIGKILL, so a crashed run never leaves a stale lock behind)."""

    FILE = "train.lock"

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, self.FILE)
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl
        import socket

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                holder = f.read().strip() or "unknown process"
            os.close(fd)
            same = f"pid {os.getpid()} " in f"{holder} "
            hint = (
                "An earlier Run in this process still holds it: let its fit() finish or call run.close()."
                if same
                else "Wait for that run to finish (or stop it), or train in another --workdir."
            )
            raise EbmZooError(
                f"Another training run is using {os.path.dirname(self.path) or '.'} ({holder}); two runs in "
                f"one workdir would overwrite each other's checkpoints. {hint}"
            ) from None
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        self.release()


def clean_stale_files(workdir: str) -> list[str]:
    """Removes what killed runs leave behind: `checkpoints/ckpt-N_temp*` (a checkpoint being
    written) and atomic-write temporaries. Call with the workdir lock held."""
    import shutil

    removed = atomic.clean_stale(workdir)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if os.path.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            if "_temp" in name and name.startswith("ckpt-"):
                full = os.path.join(ckpt_dir, name)
                if os.path.isdir(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.remove(full)
                removed.append(os.path.join("checkpoints", name))
    for sub in ("samples",):
        removed += [os.path.join(sub, n) for n in atomic.clean_stale(os.path.join(workdir, sub))]
    return removed


class _RunCallback(keras.callbacks.Callback):
    """Divergence guard, TensorBoard scalars/images, checkpoints and sample-grid PNGs."""

    def __init__(self, run: Run):
        super().__init__()
        self.run = run

    def on_train_batch_end(self, batch, logs=None):
        self.run.check_divergence(logs or {}, self.run.step_after_batch(batch))

    def on_epoch_end(self, epoch, logs=None):
        step = self.run.current_step()
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.run.check_divergence(logs, step)
        self.run.log_scalars(logs, step)
        self.run.maybe_save(step)


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
        _check_workdir(workdir)
        os.makedirs(workdir, exist_ok=True)
        self.lock = WorkdirLock(workdir)
        self.lock.acquire()
        try:
            self._setup(cfg, workdir)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        """Releases the workdir lock (fit() does it when it returns or fails)."""
        self.lock.release()

    def _setup(self, cfg, workdir: str) -> None:
        removed = clean_stale_files(workdir)
        if removed:  # always said: files were deleted
            print(f"Removed leftovers of an interrupted run: {', '.join(sorted(removed))}")
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
            self.checkpoint,
            os.path.join(workdir, "checkpoints"),
            max_to_keep=int(cfg.train.get("max_to_keep", 3)),
            checkpoint_name="ckpt",
        )
        self.start_step = 0
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.start_step = int(self.model.optimizer.iterations.numpy())
            if self.verbose:
                print(f"Resumed from {self.manager.latest_checkpoint} at step {self.start_step}.")
        self.writer = tf.summary.create_file_writer(os.path.join(workdir, "tb"))
        self._epoch_start_step = self.start_step
        self._last_saved = self.start_step
        self._timing_before = self._previous_timing()
        self._history = list(self._timing_before.get("history", []))  # grows with every timing write
        self._clock = (time.perf_counter(), time.process_time())

    # ------------------------------------------------------------------------------------------
    # Timing: wall-clock and CPU seconds of the training loop, summed over resumed invocations.
    TIMING_FILE = "timing.json"

    def _previous_timing(self) -> dict:
        """Totals up to the checkpoint this invocation resumes from (zero for a fresh run).

        A timing.json that does not belong to the restored checkpoint (a run from before timing
        was recorded, or a file lost) gives the totals of this invocation only, marked
        `complete: false`."""
        path = os.path.join(self.workdir, self.TIMING_FILE)
        zero = {"train_wall_seconds": 0.0, "train_cpu_seconds": 0.0, "invocations": 0, "history": []}
        if self.start_step == 0:
            return {**zero, "complete": True}
        try:
            with open(path, encoding="utf-8") as f:
                before = json.load(f)
            if int(before["step"]) == self.start_step:
                history = [h for h in before.get("history", []) if int(h["step"]) <= self.start_step]
                return {
                    "train_wall_seconds": float(before["train_wall_seconds"]),
                    "train_cpu_seconds": float(before["train_cpu_seconds"]),
                    "invocations": int(before.get("invocations", 1)),
                    "complete": bool(before.get("complete", True)),
                    "history": history,
                }
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return {**zero, "complete": False}

    def timing(self, step: int) -> dict:
        """Totals of the training loop up to `step`: wall-clock (time.perf_counter) and process
        CPU seconds (time.process_time: every thread of this process, all cores counted), this
        invocation's added to those recorded at the checkpoint it resumed from.

        `history` lists the totals at every checkpoint written so far (this one included), so a
        checkpoint can be evaluated at a known training budget (tools/eval.py --checkpoint)."""
        wall = time.perf_counter() - self._clock[0]
        cpu = time.process_time() - self._clock[1]
        b = self._timing_before
        wall_total = round(b["train_wall_seconds"] + wall, 2)
        cpu_total = round(b["train_cpu_seconds"] + cpu, 2)
        here = {"step": int(step), "train_wall_seconds": wall_total, "train_cpu_seconds": cpu_total}
        history = [h for h in self._history if int(h["step"]) < int(step)] + [here]
        return {
            **here,
            "invocations": b["invocations"] + 1,
            "complete": b["complete"],
            "cpu_count": os.cpu_count(),
            "history": history,
        }

    def write_timing(self, step: int) -> dict:
        timing = self.timing(step)
        self._history = timing["history"]
        if self.is_chief:
            atomic.write_json(os.path.join(self.workdir, self.TIMING_FILE), timing, indent=2)
        return timing

    # ------------------------------------------------------------------------------------------
    def step_after_batch(self, batch: int) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def current_step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def maybe_save(self, step: int) -> None:
        """Checkpoints when `step` passed a multiple of checkpoint_every since the last save, and
        at the end of the run."""
        last = self._last_saved
        if step // self.checkpoint_every > last // self.checkpoint_every or step >= self.total_steps:
            if step != last:
                self.save(step)
                self._last_saved = step

    def check_divergence(self, logs: dict, step: int) -> None:
        for name, value in logs.items():
            v = float(value)
            if not math.isfinite(v) or abs(v) > self.threshold:
                last = self.manager.latest_checkpoint or "none (no checkpoint was written yet)"
                raise TrainingDiverged(
                    f"Training diverged at step {step}: metric {name!r} = {v:.4g} (threshold "
                    f"{self.threshold:.3g}). The last good checkpoint is kept: {last}. Lower the step size "
                    f"or learning rate ({config_lib.stability_hint(self.cfg)}), or enable gradient clipping."
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
        self.write_timing(step)
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
        """Trains until train.steps; returns the last logged metrics. Releases the workdir lock."""
        try:
            return self._fit()
        finally:
            self.close()

    def _segments(self) -> list[tuple[int, int]]:
        """(first step, number of steps per log period) of each `model.fit` call: a head up to the
        next multiple of log_every (a run resumed off the grid), the whole log periods, and a
        tail (a step count that is not a multiple of log_every). An aligned run is one call."""
        start, total, k = self.start_step, self.total_steps, self.log_every
        segments = []
        head_end = min(total, -(-start // k) * k)
        if head_end > start:
            segments.append((start, head_end - start, 1))
        body_end = max(head_end, (total // k) * k)
        if body_end > head_end:
            segments.append((head_end, k, (body_end - head_end) // k))
        if total > body_end:
            segments.append((body_end, total - body_end, 1))
        return segments

    def _fit(self) -> dict:
        if self.start_step >= self.total_steps:
            if self.verbose:
                print(
                    f"Nothing to do: the run in {self.workdir} is at step {self.start_step} >= {self.total_steps}."
                )
            return self._final_metrics({})
        t0 = time.time()
        self._clock = (time.perf_counter(), time.process_time())
        logs = {}
        for first, per_epoch, epochs in self._segments():
            # A new dataset per segment starts exactly where the uninterrupted stream would be
            # (the same skip a resumed run uses), so the trajectory does not depend on the split.
            ds = self.dataset(skip_batches=first)
            history = self.model.fit(
                ds,
                epochs=epochs,
                steps_per_epoch=per_epoch,
                callbacks=[_RunCallback(self)],
                verbose=self.verbose,
                shuffle=False,  # the dataset is shuffled (deterministically) by load_dataset
            )
            logs = {k: float(v[-1]) for k, v in history.history.items()}
        logs["train_seconds"] = time.time() - t0  # this invocation only
        step = int(self.model.optimizer.iterations.numpy())
        timing = self.write_timing(step)
        logs.update(
            train_wall_seconds=timing["train_wall_seconds"],  # every invocation, up to the last step
            train_cpu_seconds=timing["train_cpu_seconds"],
            timing_complete=timing["complete"],
        )
        return self._final_metrics(logs)

    def _final_metrics(self, logs: dict) -> dict:
        """Writes model.weights.h5, model_config.json and metrics.json, each atomically (a temp
        file in the workdir renamed into place), so a kill leaves the previous files intact."""
        with atomic.file(os.path.join(self.workdir, "model.weights.h5")) as tmp:
            self.model.save_weights(str(tmp))
        model_config = {
            "class_name": type(self.model).__name__,
            "family": self.model.family,
            "config": self.model.get_config(),
        }
        atomic.write_json(os.path.join(self.workdir, "model_config.json"), model_config, indent=2)
        logs = {"step": int(self.model.optimizer.iterations.numpy()), **logs}
        atomic.write_json(os.path.join(self.workdir, "metrics.json"), logs, indent=2)
        return logs


def train(cfg, workdir: str, strategy: str | tf.distribute.Strategy = "default", verbose: int = 1) -> dict:
    """Trains `cfg` in `workdir` (resuming if it holds a checkpoint); returns final metrics."""
    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    return Run(cfg, workdir, strategy, verbose).fit()  # fit() releases the workdir lock
