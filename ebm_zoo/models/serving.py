"""Serving functions of an EnergyModel, validated in-graph (wrapped by ebm_zoo.export).

Every family gets these from `EnergyModel.serving_functions()`; a family adds its own (e.g. the
descriptor's `reconstruct`, VAPO's `sample_ode`) by extending the dict. Signatures (images float32
NHWC in [0, 1]):

  serving_default, energy  images [N, H, W, C] -> {"energy": [N]}
  sample    num_samples int32 [] (>= 1), seed int64 [] (in [0, 2**62)), num_steps int32 []
            -> {"images": [num_samples, H, W, C]}
            num_steps = -1 means the model's default sampler (= `model.sample(n, seed)`); K in
            [0, max_num_steps] gives `model.sample(n, seed, num_steps=K)`; any other value fails.
  inpaint   images, mask float32 [N or 1, H, W, 1 or C] of exactly 0 / 1 (1 = fill), seed int64 []
            -> {"images"} = `model.inpaint(images, mask, seed)`   (families with `_inpaint`)
  ood_typicality  images, seed int64 [] -> {"score": [N]} = `model.ood_score(images,
            method="typicality", seed=seed)`   (models carrying an OOD fit: `fit_ood`, or a
            preset's ood_fit.npz; the fit's arrays are constants of the graph)

Seeds: the served int64 seed s maps to the stateless pair [s mod 2**31, s >> 31], exactly
`ebm_zoo.utils.checks.seed_pair` (seeds below 2**31 give [s, 0]), so a served call with seed s
equals the Python call with seed s.

Bad inputs fail the request with tf.errors.InvalidArgumentError whose message names the
argument, the value rule and the fix (tests/test_export.py calls the SavedModel with each).
"""

from __future__ import annotations

import tensorflow as tf

from ebm_zoo.utils.checks import SEED_LIMIT

#: Slack of the in-graph [0, 1] range check of served images.
RANGE_TOLERANCE = 1e-3


# ------------------------------------------------------------------------------------------------
# Specs.
def images_spec(model, name: str = "images") -> tf.TensorSpec:
    any_size = bool(getattr(model, "accepts_any_size", False))
    hw = [None, None] if any_size else [model.image_size, model.image_size]
    return tf.TensorSpec([None, *hw, model.channels], tf.float32, name=name)


NUM_SAMPLES = tf.TensorSpec([], tf.int32, name="num_samples")
SEED = tf.TensorSpec([], tf.int64, name="seed")
NUM_STEPS = tf.TensorSpec([], tf.int32, name="num_steps")


# ------------------------------------------------------------------------------------------------
# In-graph checks: each returns its input with the assertion attached.
def _checked(value, condition, message: str):
    with tf.control_dependencies([tf.debugging.Assert(condition, [message])]):
        return tf.identity(value)


def checked_images(images: tf.Tensor, name: str = "images") -> tf.Tensor:
    """images, asserted finite and in [0, 1] (± RANGE_TOLERANCE)."""
    images = _checked(
        images,
        tf.reduce_all(tf.math.is_finite(images)),
        f"`{name}` contains NaN or inf values; send finite float32 images in [0, 1].",
    )
    lo, hi = -RANGE_TOLERANCE, 1.0 + RANGE_TOLERANCE
    in_range = tf.logical_and(tf.reduce_all(images >= lo), tf.reduce_all(images <= hi))
    return _checked(
        images,
        in_range,
        f"`{name}` values must lie in [0, 1]; divide 8-bit images by 255, map [-1, 1] with (x + 1) / 2.",
    )


def checked_count(num_samples: tf.Tensor) -> tf.Tensor:
    return _checked(num_samples, num_samples >= 1, "`num_samples` must be >= 1.")


def served_seed_pair(seed: tf.Tensor) -> tf.Tensor:
    """int64 [] seed in [0, 2**62) -> the [2] int32 pair of `checks.seed_pair` (asserted in range)."""
    seed = tf.cast(seed, tf.int64)
    ok = tf.logical_and(seed >= 0, seed < SEED_LIMIT)
    seed = _checked(seed, ok, "`seed` must lie in [0, 2**62); pick a non-negative seed below 2**62.")
    return tf.cast(tf.stack([tf.math.floormod(seed, 2**31), tf.bitwise.right_shift(seed, 31)]), tf.int32)


def checked_steps(num_steps: tf.Tensor, max_steps: int, default: int) -> tf.Tensor:
    """num_steps, asserted to be -1 (the model's default, {default}) or in [0, max_steps]."""
    ok = tf.logical_and(num_steps >= -1, num_steps <= max_steps)
    return _checked(
        num_steps,
        ok,
        f"`num_steps` must be -1 (the model's default sampler, {default} steps) or an int in "
        f"[0, {max_steps}]; other negative values are refused.",
    )


def checked_positive(value: tf.Tensor, name: str) -> tf.Tensor:
    return _checked(value, value > 0, f"`{name}` must be > 0 (e.g. 1e-3).")


def checked_mask(mask: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    """mask [N or 1, H, W, 1 or C] asserted binary and shape-compatible with images [N, H, W, C]."""
    ms, xs = tf.shape(mask), tf.shape(images)
    shape_ok = tf.reduce_all(
        [
            tf.reduce_all(tf.equal(ms[1:3], xs[1:3])),
            tf.logical_or(tf.equal(ms[0], 1), tf.equal(ms[0], xs[0])),
            tf.logical_or(tf.equal(ms[3], 1), tf.equal(ms[3], xs[3])),
        ]
    )
    mask = _checked(
        mask,
        shape_ok,
        "`mask` must have shape [N or 1, H, W, 1 or C] for images [N, H, W, C] (same H and W).",
    )
    binary = tf.reduce_all(tf.logical_or(tf.equal(mask, 0.0), tf.equal(mask, 1.0)))
    return _checked(
        mask, binary, "`mask` values must be exactly 0 (known pixel) or 1 (pixel to fill); threshold it."
    )


# ------------------------------------------------------------------------------------------------
def default_functions(model) -> dict:
    """{name: (function, input_signature)}: energy, sample and (if the model has it) inpaint."""
    images = images_spec(model)
    max_steps, default = int(model.max_num_steps), int(model.default_num_steps)

    def energy(images):
        return {"energy": model._energy(model.to_internal(checked_images(images)))}

    def sample(num_samples, seed, num_steps):
        n = checked_count(num_samples)
        k = checked_steps(num_steps, max_steps, default)
        x = model._sample(n, served_seed_pair(seed), k, max_steps)
        return {"images": model.from_internal(x)}

    out = {
        "serving_default": (energy, [images]),
        "energy": (energy, [images]),
        "sample": (sample, [NUM_SAMPLES, SEED, NUM_STEPS]),
    }
    if model.has_inpaint:
        mask_spec = tf.TensorSpec([None, *images.shape[1:3], None], tf.float32, name="mask")

        def inpaint(images, mask, seed):
            x = checked_images(images)
            return {"images": model.inpaint_images(x, checked_mask(mask, x), served_seed_pair(seed))}

        out["inpaint"] = (inpaint, [images, mask_spec, SEED])
    fit = model.ood_fit
    if fit is not None:

        def ood_typicality(images, seed):
            stats = model._ood_statistics_graph(checked_images(images), served_seed_pair(seed))
            return {"score": tf.cast(fit.neg_log_density_tf(stats), tf.float32)}

        out["ood_typicality"] = (ood_typicality, [images, SEED])
    return out
