"""The contract every ebm_zoo model follows (DESIGN.md, "Contracts / Models").

Public images are float32 NHWC in [0, 1]. A subclass converts to its own internal scale in
`to_internal` / `from_internal` and implements (ebm_zoo.models.registry.CONTRACT; a test fails
for a registered family that misses one):

  family                                      class attribute, the registry name
  _energy(x) -> [N]                           energy E(x) of internal images, lower = more probable
  default_num_steps -> int                    property: sampler steps K of `sample` by default
  chain_start(n, seed) -> x0                  internal [n, H, W, C] start of the sampler
  _sample(n, seed, num_steps, max_steps, **overrides) -> x
                                              internal samples; traceable; n an int or int32 []
                                              tensor, seed [2] int32, num_steps an int32 []
                                              tensor (-1 = the model's default sampler,
                                              0 <= K <= max_steps: K steps); max_steps static
  train_step(images01)                        one learning iteration (so `fit` trains it)
  get_config()                                JSON-serialisable constructor arguments

and optionally `_inpaint(x, mask, seed, **overrides) -> x` (inpainting: `inpaint` and the served
`inpaint` signature appear), `sample_overrides` / `check_overrides` (extra sampler settings),
`sampler_settings()` (reported by the evaluation) and `serving_functions()` (extra signatures).

It gets `energy`, `sample`, `inpaint`, `export`, seeds that survive checkpoints and replica-aware
RNG for free. `sample` and the served `sample` run the same `_sample` with the same tensors, so
they agree pixel for pixel (tests/test_export.py).
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models import serving
from ebm_zoo.models.typicality import TypicalityFit, kde_neg_log_density  # noqa: F401
from ebm_zoo.utils.checks import (
    EbmZooError,
    check_choice,
    check_count,
    check_images,
    check_mask,
    check_num_steps,
    check_sample_memory,
    check_sampler_overrides,
    check_seed,
    seed_pair,
    stream_seed,
)


def overrides_key(overrides: dict) -> tuple:
    """A hashable key of sampler overrides (dict values such as `sampler_options` included), for
    the per-model cache of compiled sampler functions."""

    def freeze(v):
        if isinstance(v, dict):
            return tuple(sorted((k, freeze(x)) for k, x in v.items()))
        if isinstance(v, (list, tuple)):
            return tuple(freeze(x) for x in v)
        return v

    return freeze(dict(overrides))


class _OwnRetracingFilter(logging.Filter):
    """Drops TF's "triggered tf.function retracing" warning for ebm_zoo's own per-model sampler
    functions: every model (and every new n or sampler setting) compiles its own function by
    design, which TF's heuristic reports as excessive retracing on a user's screen."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("retracing" in msg and "EnergyModel." in msg)


tf.get_logger().addFilter(_OwnRetracingFilter())


class EnergyModel(keras.Model):
    """Base class for ebm_zoo models.

    Args:
      image_size: H = W of the images the model is trained on.
      channels: C.
      seed: base seed of every stateless random draw during training.
    """

    #: Name of the family in the registry (ebm_zoo.models.FAMILIES).
    family: str = ""
    #: Internal pixel range, e.g. (0, 255), (-1, 1); used by `to_internal`/`from_internal`.
    internal_range: tuple[float, float] = (0.0, 1.0)
    #: Static bound of a tensor step count: max_steps_factor × max(default_num_steps, 1).
    max_steps_factor: int = 4
    #: Sampler settings `sample(..., **overrides)` accepts besides num_steps (validated once, by
    #: `check_overrides`, at the public call).
    sample_overrides: tuple[str, ...] = ()
    #: Bytes a sampler holds per image, in units of one float32 image (batch copies + network
    #: activations); `sample` refuses an n whose estimate exceeds the available memory.
    sample_memory_copies: int = 64

    def __init__(self, image_size: int = 32, channels: int = 3, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.seed = int(seed)
        self._compiled_sample = {}

    # ----------------------------------------------------------------------------------------
    # Pixel scales.
    def to_internal(self, x01: tf.Tensor) -> tf.Tensor:
        lo, hi = self.internal_range
        return tf.cast(x01, tf.float32) * (hi - lo) + lo

    def from_internal(self, x: tf.Tensor) -> tf.Tensor:
        lo, hi = self.internal_range
        return tf.clip_by_value((x - lo) / (hi - lo), 0.0, 1.0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    def check(self, images, name: str = "images", any_size: bool = False) -> tf.Tensor:
        """Validates public [0, 1] NHWC input (see ebm_zoo.utils.checks.check_images)."""
        return check_images(
            images,
            name=name,
            channels=self.channels,
            image_size=None if any_size else self.image_size,
            allow_empty=False,
        )

    def check_mask(self, mask, n: int, name: str = "mask") -> tf.Tensor:
        """Validates an inpainting mask for n images; float32 [n, S, S, 1 or C] of {0, 1}."""
        return check_mask(mask, int(n), self.image_size, self.channels, name=name)

    def check_count_n(self, n, name: str = "n") -> int:
        """A sample count: an int >= 1 whose sampler working set fits in memory."""
        n = check_count(n, name)
        check_sample_memory(n, self.image_shape, copies=self.sample_memory_copies, name=name)
        return n

    @staticmethod
    def check_steps(num_steps, name: str = "num_steps") -> int | None:
        """None (the model's default) or an int >= 0 number of sampler steps."""
        return check_num_steps(num_steps, name)

    @staticmethod
    def check_seed_arg(seed, name: str = "seed") -> int | None:
        """A public seed: None or an int in [0, 2**62)."""
        return check_seed(seed, name)

    @staticmethod
    def seed_tensor(seed, stream: int = 0) -> tf.Tensor:
        """The stateless [2] seed of a public int seed (checked: ints in [0, 2**62)) and a stream."""
        return stream_seed(seed, stream)

    # ----------------------------------------------------------------------------------------
    # Randomness: stateless, derived from (seed, optimizer step, stream), replica-sliced.
    def step_seed(self, stream: int = 0) -> tf.Tensor:
        step = self.optimizer.iterations if getattr(self, "optimizer", None) is not None else 0
        return distribute.step_seed(self.seed, step, stream)

    # ----------------------------------------------------------------------------------------
    # Public API.
    def energy(self, images) -> tf.Tensor:
        """Energies E(x) [N] of images [N, H, W, C] in [0, 1] (lower = more probable)."""
        x = self.check(images, any_size=getattr(self, "accepts_any_size", False))
        return self._energy(self.to_internal(x))

    def call(self, images, training=False):
        return self._energy(self.to_internal(images))

    def sample(self, n: int, seed: int | None = None, num_steps: int | None = None, **overrides) -> tf.Tensor:
        """Draws `n` images [n, H, W, C] in [0, 1].

        Args:
          n: number of samples (> 0).
          seed: int in [0, 2**62) for reproducible samples (mapped by `checks.seed_pair`); None
            draws a fresh seed.
          num_steps: sampler steps K (0 = the chain start); None = the model's default sampler.
          **overrides: the family's other sampler settings (`sample_overrides`).
        """
        n = self.check_count_n(n)
        seed = check_seed(seed)
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        num_steps = check_num_steps(num_steps)
        self.check_overrides(overrides)
        steps = -1 if num_steps is None else num_steps
        max_steps = max(self.max_num_steps, steps)
        key = ("sample", max_steps, overrides_key(overrides))
        fn = self._compiled_sample.get(key)
        if fn is None:
            fn = tf.function(
                lambda n, s, k: self.from_internal(self._sample(n, s, k, max_steps, **overrides)),
                input_signature=[
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([2], tf.int32),
                    tf.TensorSpec([], tf.int32),
                ],
            )
            self._compiled_sample[key] = fn
        return fn(tf.constant(n, tf.int32), seed_pair(seed), tf.constant(steps, tf.int32))

    @property
    def max_num_steps(self) -> int:
        """Static bound of a tensor `num_steps` (served signatures): max_steps_factor × default."""
        return self.max_steps_factor * max(int(self.default_num_steps), 1)

    def steps_or_default(self, num_steps: tf.Tensor) -> tf.Tensor:
        """The int32 step count K of a `_sample` call: num_steps, or the default when it is -1."""
        num_steps = tf.cast(num_steps, tf.int32)
        return tf.where(num_steps < 0, tf.constant(int(self.default_num_steps), tf.int32), num_steps)

    def check_overrides(self, overrides: dict, where: str = "sample()") -> None:
        """Refuses unknown sampler settings and bad values of known ones (EbmZooError), eagerly,
        before anything is traced; families extend it with their own rules."""
        allowed = ("num_steps", *self.sample_overrides)
        check_sampler_overrides(overrides, allowed, where=f"{type(self).__name__}.{where}")

    def sampler_settings(self) -> dict:
        """The sampler hyper-parameters `sample` uses by default (for evaluation reports)."""
        return {"num_steps": int(self.default_num_steps)}

    # ----------------------------------------------------------------------------------------
    # Out-of-distribution scores.
    #: `ood_score` methods of the family: the first is the default.
    ood_methods: tuple = ("energy", "typicality")
    #: Gray-level scale of the perturbation in the typicality statistics (images in [0, 1]).
    OOD_PERTURBATION = 0.1

    def ood_score(self, images, method: str | None = None, seed: int = 0) -> tf.Tensor:
        """Out-of-distribution scores [N] of images [N, H, W, C] in [0, 1]; higher = less like the
        training data.

        method="energy" (default): the energy E(x) (= −log p(x) up to the constant log Z).
        method="typicality": how untypical the image's energy statistics are for the training data
          (a DoSE-style score, Morningstar et al. 2021): −log of a Gaussian kernel density, fitted
          by `fit_ood(train_images)`, of three statistics of the family's base score s(x)
          (`ood_statistics`): s(x), log ‖∇ₓs(x)‖ and s(x̃) − s(x) with x̃ = clip(x + 0.1·z). It
          catches what the energy alone misses, e.g. blank canvases whose energy is digit-like
          but whose gradient is not. `seed` draws z.
        A family with a better score overrides this method and documents it (VAPO: the flow's
        negative log-likelihood). Models whose energy uses batch statistics (multi-grid with
        norm="batch") score an image relative to its batch; score mixed batches
        (`ebm_zoo.evaluation.ood` does).
        """
        method = self.ood_methods[0] if method is None else method
        check_choice(method, "method", self.ood_methods)
        if method == "typicality":
            return self._typicality_score(images, seed)
        return self.energy(images)

    def _ood_base(self, images01: tf.Tensor) -> tf.Tensor:
        """The score s(x) [N] whose statistics `ood_statistics` takes (the energy by default), of
        checked [0, 1] images; traceable (it runs inside the compiled statistics and the served
        `ood_typicality` signature)."""
        return self._energy(self.to_internal(images01))

    def _ood_statistics_graph(self, x01: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """[N, 3] float32 statistics (see `ood_statistics`) of checked images, traceable."""
        x01 = tf.cast(x01, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x01)
            s = tf.cast(self._ood_base(x01), tf.float32)
        g = tape.gradient(s, x01)
        if g is None:
            raise EbmZooError(f"{type(self).__name__}: its OOD base score has no gradient in the image.")
        grad_norm = tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(g, [tf.shape(g)[0], -1])), axis=1))
        z = tf.random.stateless_normal(tf.shape(x01), seed)
        x_tilde = tf.clip_by_value(x01 + self.OOD_PERTURBATION * z, 0.0, 1.0)
        s_tilde = tf.cast(self._ood_base(x_tilde), tf.float32)
        return tf.stack([s, tf.math.log(tf.maximum(grad_norm, 1e-30)), s_tilde - s], axis=1)

    def ood_statistics(self, images, seed: int = 0) -> np.ndarray:
        """[N, 3] statistics of the base score s (`_ood_base`, the energy by default) per image:
        s(x), log ‖∇ₓs(x)‖ (pixels in [0, 1]) and s(x̃) − s(x), x̃ = clip(x + OOD_PERTURBATION·z),
        z ~ N(0, I) drawn from `seed` (the same z for the same row of every call). Compiled once
        per model (any batch size)."""
        x = tf.convert_to_tensor(self.check(images), tf.float32)
        seed = check_seed(seed, "seed")
        fn = self._compiled_sample.get("ood_statistics")
        if fn is None:
            fn = tf.function(
                self._ood_statistics_graph,
                input_signature=[
                    tf.TensorSpec([None, *self.image_shape], tf.float32),
                    tf.TensorSpec([2], tf.int32),
                ],
            )
            self._compiled_sample["ood_statistics"] = fn
        return fn(x, seed_pair(seed)).numpy().astype(np.float64)

    @property
    def ood_fit(self) -> TypicalityFit | None:
        """The typicality score's fit (`fit_ood`, or the preset's ood_fit.npz), or None."""
        return getattr(self, "_ood_fit", None)

    def fit_ood(self, reference_images, seed: int = 0, batch_size: int = 250) -> dict:
        """Fits the typicality score (`ood_score(method="typicality")`) on in-distribution images
        [M, H, W, C] in [0, 1] (e.g. training images; M ≥ 10): their statistics, whitened by
        their mean and covariance, are the kernel centres (Scott's bandwidth M^(−1/7), as
        `scipy.stats.gaussian_kde`). Returns the fit summary; replaces an earlier fit. Keep it
        with `save_ood_fit`; presets written by `ebm_zoo.presets.save_preset` include it."""
        x = self.check(reference_images)
        batch_size = check_count(batch_size, "batch_size")
        seed = check_seed(seed, "seed")
        if int(x.shape[0]) < 10:
            raise EbmZooError(
                f"fit_ood needs at least 10 reference images, got {int(x.shape[0])}; pass a few "
                "thousand training images."
            )
        stats = np.concatenate(
            [self.ood_statistics(x[i : i + batch_size], seed) for i in range(0, int(x.shape[0]), batch_size)]
        )
        self._ood_fit = TypicalityFit.from_statistics(stats, seed, self.OOD_PERTURBATION)
        return self._ood_fit.summary()

    def save_ood_fit(self, path) -> str:
        """Writes the typicality fit to `path` (.npz of plain arrays, atomically)."""
        import os

        if self.ood_fit is None:
            raise EbmZooError(
                f"{type(self).__name__} has no OOD fit to save; call model.fit_ood(train_images) first."
            )
        if not isinstance(path, (str, os.PathLike)) or not str(os.fspath(path)).strip():
            raise EbmZooError(f"`path` must be a file path (str or pathlib.Path), got {path!r}.")
        if os.path.isdir(path):
            raise EbmZooError(
                f"`path` {os.fspath(path)!r} is a directory; pass a file name such as ood_fit.npz."
            )
        return str(self.ood_fit.save(path))

    def load_ood_fit(self, path) -> dict:
        """Reads a fit written by `save_ood_fit` (checked); returns its summary."""
        fit = TypicalityFit.load(path)
        if abs(fit.perturbation - self.OOD_PERTURBATION) > 1e-12:
            raise EbmZooError(
                f"OOD fit {path} was made with perturbation {fit.perturbation}, but "
                f"{type(self).__name__} uses {self.OOD_PERTURBATION}; re-fit it with model.fit_ood."
            )
        self._ood_fit = fit
        return fit.summary()

    def _typicality_score(self, images, seed: int) -> tf.Tensor:
        seed = check_seed(seed, "seed")
        if self.ood_fit is None:
            raise EbmZooError(
                f"{type(self).__name__}.ood_score(method='typicality') needs a fit: call "
                "model.fit_ood(train_images) first (a few thousand in-distribution images), or "
                "load a preset that ships one (its directory holds ood_fit.npz)."
            )
        return tf.constant(self.ood_fit.neg_log_density(self.ood_statistics(images, seed)), tf.float32)

    # ----------------------------------------------------------------------------------------
    # Inpainting (families that implement `_inpaint`).
    @property
    def has_inpaint(self) -> bool:
        return type(self)._inpaint is not EnergyModel._inpaint

    def inpaint(self, images01, mask, seed: int = 0, **overrides) -> tf.Tensor:
        """Fills the pixels where mask == 1 and keeps the others exactly.

        Args:
          images01: [N, H, W, C] in [0, 1] (values under the mask are ignored).
          mask: [H, W], [N, H, W] or [N or 1, H, W, 1 or C] of 0 (known) / 1 (to fill).
          seed: int in [0, 2**62) (mapped by `checks.seed_pair`).
          **overrides: num_steps and the family's sampler settings (`sample_overrides`).
        Returns [N, H, W, C] in [0, 1].
        """
        if not self.has_inpaint:
            raise EbmZooError(
                f"{type(self).__name__} has no inpainting (its family does not implement _inpaint)."
            )
        x01 = self.check(images01)
        m = self.check_mask(mask, int(x01.shape[0]))
        seed = check_seed(seed, "seed")
        if "num_steps" in overrides:
            overrides["num_steps"] = check_num_steps(overrides["num_steps"], allow_none=False)
        self.check_overrides({k: v for k, v in overrides.items() if k != "num_steps"})
        key = ("inpaint", overrides_key(overrides))
        fn = self._compiled_sample.get(key)
        if fn is None:  # the served signature's input specs: one graph, the same pixels
            images = serving.images_spec(self)
            mask_spec = tf.TensorSpec([None, *images.shape[1:3], None], tf.float32)
            fn = tf.function(
                lambda x, m, s: self.inpaint_images(x, m, s, **overrides),
                input_signature=[images, mask_spec, tf.TensorSpec([2], tf.int32)],
            )
            self._compiled_sample[key] = fn
        return fn(x01, m, seed_pair(seed))

    def inpaint_images(self, x01: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, **overrides) -> tf.Tensor:
        """Traceable inpainting shared by `inpaint` and the served signature: [0, 1] in and out,
        mask broadcastable to x01, seed [2] int32."""
        m = tf.broadcast_to(tf.cast(mask, tf.float32), tf.shape(x01))
        filled = self.from_internal(self._inpaint(self.to_internal(x01), m, seed, **overrides))
        return tf.where(m > 0.5, filled, x01)

    # ----------------------------------------------------------------------------------------
    # Presets.
    def without_training_state(self) -> EnergyModel:
        """The model a preset ships: `self`, or a copy without state that only training reads.

        A family whose variables include training-only state (e.g. ShortRun's replay buffer of
        thousands of images, which sampling from noise never reads) returns a copy built with
        that state switched off and every other variable copied (see `_copy_variables_into`).
        """
        return self

    def _copy_variables_into(self, other: EnergyModel) -> EnergyModel:
        """Copies into every variable of `other` the variable of `self` with the same path (below
        the model name).

        Raises EbmZooError when a variable of `other` has no counterpart of the same shape (the
        two configs differ in more than the training-only state)."""

        def key(v):  # the path below the model's own (uniquified) name
            return v.path.split("/", 1)[-1]

        mine = {key(v): v for v in self.variables}
        for v in other.variables:
            src = mine.get(key(v))
            if src is None or tuple(src.shape) != tuple(v.shape):
                raise EbmZooError(
                    f"{type(self).__name__}.without_training_state: variable {v.path!r} "
                    f"{tuple(v.shape)} has no counterpart in the trained model "
                    f"({'missing' if src is None else tuple(src.shape)}); the copy's config "
                    "differs in more than training-only state."
                )
            v.assign(src)
        return other

    # ----------------------------------------------------------------------------------------
    # Serving: the functions export.py wraps (it knows no family).
    def serving_functions(self) -> dict:
        """{signature name: (python function, input_signature)} of the SavedModel (ebm_zoo.export)."""
        return serving.default_functions(self)

    def export(self, path, **kwargs) -> str:
        """Writes a SavedModel with serving signatures for TF Serving (see ebm_zoo.export).

        The version directory is written under a temporary name next to it and renamed into
        place when complete, so TF Serving (which watches the base directory) never loads a
        half-written version and a killed export leaves nothing at `path`.
        """
        import shutil

        from ebm_zoo.export import export_savedmodel, version_path
        from ebm_zoo.utils import atomic
        from ebm_zoo.utils.checks import EbmZooError, check_output_dir

        out = check_output_dir(version_path(path), "path")
        if out.is_dir() and any(out.iterdir()):
            raise EbmZooError(
                f"{out} exists and is not empty; TF Serving versions are immutable. Use the next version "
                f"number (e.g. {out.parent / str(int(out.name) + 1)}) or delete {out}."
            )
        atomic.clean_stale(out.parent)  # leftovers of killed exports (no-op for a new directory)
        staging = atomic.temp_dir(out)
        try:
            written = export_savedmodel(self, staging / out.name, **kwargs)
            if out.is_dir():
                out.rmdir()  # an empty directory (checked above)
            atomic.publish_dir(written, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(out)

    # ----------------------------------------------------------------------------------------
    # Training plumbing used by ebm_zoo.training.
    def build(self, input_shape=None):
        """Creates the networks' variables by one energy evaluation at the training size."""
        if not self.built:
            self._energy(self.to_internal(tf.zeros([1, *self.image_shape])))
        self.built = True

    def make_train_function(self, force=False):
        """Keras' train function; under a multi-worker strategy every log value gets a leading
        axis of 1 first.

        Keras 3 reduces the replicas' logs with `strategy.reduce("MEAN", v, axis=0)` when it runs
        multi-worker, which fails on the scalar logs every `train_step` returns ("Invalid reduction
        dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388). With a [1] axis
        the same call returns the mean scalar. Tested with two worker processes
        (tests/test_multiworker.py).
        """
        if self.train_function is not None and not force:
            return self.train_function
        strategy = self.distribute_strategy
        multi_worker = (
            isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()
        )
        if not multi_worker:
            return super().make_train_function(force=force)

        def step(data):
            logs = self.train_step(data)
            return {k: tf.reshape(v, [1]) for k, v in logs.items()}

        self.train_function = self._make_function(step)
        return self.train_function

    def build_all(self) -> None:
        """Creates every variable (networks and optimizer slots) so a checkpoint can be restored
        before the first step. Subclasses with extra networks/optimizers extend this."""
        self.build()
        if getattr(self, "optimizer", None) is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def checkpoint_items(self) -> dict:
        """Trackables saved in training checkpoints (subclasses add optimizers, buffers).

        "variables" lists every model variable explicitly: TF's checkpoint graph does not see the
        layers Keras 3 keeps in Python lists (e.g. a U-Net's blocks), so without it a layer that
        no optimizer references (an EMA copy, BatchNorm statistics) would not be saved.
        """
        items = {"model": self, "variables": list(self.variables)}
        if getattr(self, "optimizer", None) is not None:
            items["optimizer"] = self.optimizer
        return items

    # ----------------------------------------------------------------------------------------
    # To implement.
    def _energy(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _energy.")

    @property
    def default_num_steps(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define default_num_steps.")

    def chain_start(self, n, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement chain_start.")

    def _sample(self, n, seed: tf.Tensor, num_steps: tf.Tensor, max_steps: int, **overrides) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample.")

    def _inpaint(self, x: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, **overrides) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no inpainting.")

    def get_config(self):
        return {"image_size": self.image_size, "channels": self.channels, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def apply_gradients(optimizer, grads, variables, process=None) -> list[tf.Tensor]:
    """Applies gradients, optionally transformed *after* the cross-replica sum.

    Keras clips gradients per replica before it sums them, so any non-linear processing
    (clipping, normalisation) would differ between 1 and R replicas. When `process` is given,
    gradients are summed across replicas first (giving the global-batch gradient, as the loss
    was scaled by `scale_for_replicas`), processed, and handed to the optimizer divided by R
    (the optimizer's own sum of R identical copies restores them). Returns the processed
    global gradients (for logging).
    """
    grads = list(grads)
    if process is None:
        optimizer.apply_gradients(zip(grads, variables))
        return grads
    n = distribute.num_replicas()
    summed = distribute.all_reduce_sum(grads)
    processed = process(summed)
    optimizer.apply_gradients(zip([g / n for g in processed] if n > 1 else processed, variables))
    return processed


def scale_for_replicas(loss: tf.Tensor) -> tf.Tensor:
    """Divides a per-replica mean loss by the number of replicas.

    Keras' optimizer sums gradients across replicas; a loss that is the mean over the local
    batch must therefore be divided by R so that the sum is the mean over the global batch.
    """
    return loss / tf.cast(distribute.num_replicas(), loss.dtype)
