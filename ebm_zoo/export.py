"""SavedModel export with serving signatures, for TF Serving (DESIGN.md, "Export").

    from ebm_zoo.export import export_savedmodel
    export_savedmodel(model, "exports/descriptor_brick/1")     # = model.export(path)

TF Serving loads `<base>/<version>/`, so the path must end in a version number; a path that
does not (e.g. "exports/brick") gets "/1" appended (the written path is returned).

Signatures (images are float32 NHWC in [0, 1]):

  serving_default   images [N, H, W, C]                      -> {"energy": [N]}
  energy            same as serving_default
  sample            num_samples int32 [], seed int32 [], num_steps int32 []
                                                            -> {"images": [num_samples, H, W, C]}
                    (MCMC families: num_steps Langevin steps, 0 <= num_steps <= max_steps,
                    max_steps = 4x the model's default; -1 = the model's default)
  sample_from_noise noise float32 [N, H, W, C] (standard normal), seed, num_steps
                    -> {"images"}: row i depends only on noise row i (descriptor)
  reconstruct       images -> {"images"}                     (families with `reconstruct`)
  inpaint           images, mask float32 [N, H, W, 1|C] (1 = pixel to fill), seed
                    -> {"images"}                            (families with `inpaint`)

Every served output row depends only on its own input row (no batch statistics), except
`sample`, whose rows are all drawn from the one seed. `sample` with seed s and num_steps=-1
returns exactly `model.sample(num_samples, seed=s)`.

`assets.extra/ebm_zoo.json` records the model class, config and metadata for tools/eval.py
(TF Serving ignores the directory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.sampling import langevin
from ebm_zoo.utils.checks import EbmZooError

INFO_FILE = os.path.join("assets.extra", "ebm_zoo.json")
MAX_STEPS_FACTOR = 4


def version_path(path: str | os.PathLike) -> Path:
    """`path` if its last component is a version number, else `path/1`."""
    path = Path(path)
    return path if path.name.isdigit() else path / "1"


def _seed_pair(seed: tf.Tensor) -> tf.Tensor:
    """int32 [] -> the [2] stateless seed `EnergyModel.sample` uses for the same int."""
    seed = tf.math.floormod(tf.cast(seed, tf.int64), 2**31 - 1)
    return tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])


class _Sampler:
    """A traceable sampler: fn(n or noise, seed [2], num_steps []) -> internal images, plus the
    static bound on num_steps and the default (None when the family has no step count)."""

    def __init__(
        self,
        from_count: Callable,
        from_noise: Callable | None,
        noise_shape: tuple[int, ...] | None,
        default_steps: int | None,
        max_steps: int | None,
    ):
        self.from_count = from_count
        self.from_noise = from_noise
        self.noise_shape = noise_shape
        self.default_steps = default_steps
        self.max_steps = max_steps


def _descriptor_sampler(model) -> _Sampler:
    """Mirrors Descriptor._sample with a tensor num_steps (bounded by a static max_steps)."""
    default = int(model.num_steps)
    max_steps = max(MAX_STEPS_FACTOR * default, 1)
    size = int(model.synth_size)

    def chain(x0, seed, num_steps):
        return langevin(
            model._energy,
            x0,
            num_steps=num_steps,
            max_steps=max_steps,
            step_size=model.step_size,
            seed=distribute.split_seed(seed, 1),
            noise_scale=model.noise_scale,
            clip=model._clip(),
        ).samples

    def start(z):
        if model.chain_init == "zeros":
            return tf.zeros_like(z)
        x = model.ref_sigma * z
        lo, hi = model.internal_range
        return tf.clip_by_value(x, lo, hi) if model.clip_pixels else x

    def from_count(n, seed, num_steps):
        z = tf.random.stateless_normal(tf.stack([n, size, size, model.channels]), seed)
        return chain(start(z), seed, num_steps)

    def from_noise(z, seed, num_steps):
        return chain(start(z), seed, num_steps)

    return _Sampler(from_count, from_noise, (size, size, model.channels), default, max_steps)


def _generic_sampler(model) -> _Sampler:
    """Families that provide `serving_sample(n, seed, num_steps, max_steps)` (tensor arguments)
    themselves; otherwise `_sample(n, seed)` with the family's default settings."""
    if hasattr(model, "serving_sample"):
        default = int(getattr(model, "num_steps", 0)) or None
        max_steps = MAX_STEPS_FACTOR * default if default else None

        def from_count(n, seed, num_steps):
            return model.serving_sample(n, seed, num_steps=num_steps, max_steps=max_steps)

        return _Sampler(from_count, None, None, default, max_steps)

    def from_count(n, seed, num_steps):
        del num_steps
        return model._sample(n, seed)

    return _Sampler(from_count, None, None, None, None)


SAMPLERS: dict[str, Callable] = {"descriptor": _descriptor_sampler}


def make_sampler(model) -> _Sampler:
    """The serving sampler of a model's family (see SAMPLERS)."""
    return SAMPLERS.get(model.family, _generic_sampler)(model)


def _tf_variables(model) -> list[tf.Variable]:
    out = []
    for v in model.variables:
        inner = getattr(v, "value", v)
        out.append(inner if isinstance(inner, tf.Variable) else v)
    return out


def serving_module(model) -> tuple[tf.Module, dict, dict]:
    """A tf.Module tracking the model's variables, its signatures {name: concrete function}, and
    the sampler settings {max_steps, default_steps}."""
    module = tf.Module()
    module.model_variables = _tf_variables(model)
    any_size = bool(getattr(model, "accepts_any_size", False))
    hw = [None, None] if any_size else [model.image_size, model.image_size]
    images_spec = tf.TensorSpec([None, *hw, model.channels], tf.float32, name="images")
    int_spec = tf.TensorSpec([], tf.int32)

    @tf.function(input_signature=[images_spec])
    def energy(images):
        return {"energy": model._energy(model.to_internal(images))}

    sampler = make_sampler(model)

    def steps_of(num_steps):
        if sampler.max_steps is None:
            return num_steps
        steps = tf.where(num_steps < 0, tf.constant(sampler.default_steps, tf.int32), num_steps)
        check = tf.debugging.assert_less_equal(
            steps,
            tf.constant(sampler.max_steps, tf.int32),
            message=f"num_steps must be <= max_steps={sampler.max_steps} (-1 = default {sampler.default_steps})",
        )
        with tf.control_dependencies([check]):
            return tf.identity(steps)

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([], tf.int32, name="seed"),
            tf.TensorSpec([], tf.int32, name="num_steps"),
        ]
    )
    def sample(num_samples, seed, num_steps):
        check = tf.debugging.assert_positive(num_samples, message="num_samples must be > 0")
        with tf.control_dependencies([check]):
            x = sampler.from_count(num_samples, _seed_pair(seed), steps_of(num_steps))
        return {"images": model.from_internal(x)}

    signatures = {
        "serving_default": energy.get_concrete_function(),
        "energy": energy.get_concrete_function(),
        "sample": sample.get_concrete_function(),
    }
    module.energy = energy
    module.sample = sample

    if sampler.from_noise is not None:

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, *sampler.noise_shape], tf.float32, name="noise"),
                int_spec,
                int_spec,
            ]
        )
        def sample_from_noise(noise, seed, num_steps):
            x = sampler.from_noise(noise, _seed_pair(seed), steps_of(num_steps))
            return {"images": model.from_internal(x)}

        signatures["sample_from_noise"] = sample_from_noise.get_concrete_function()
        module.sample_from_noise = sample_from_noise

    if hasattr(model, "reconstruct") and hasattr(model, "_reconstruct"):

        @tf.function(input_signature=[images_spec])
        def reconstruct(images):
            return {"images": model.from_internal(model._reconstruct(model.to_internal(images)))}

        signatures["reconstruct"] = reconstruct.get_concrete_function()
        module.reconstruct = reconstruct

    if hasattr(model, "inpaint") and hasattr(model, "_inpaint_internal"):

        @tf.function(
            input_signature=[
                images_spec,
                tf.TensorSpec([None, *hw, None], tf.float32, name="mask"),
                tf.TensorSpec([], tf.int32, name="seed"),
            ]
        )
        def inpaint(images, mask, seed):
            x = model._inpaint_internal(model.to_internal(images), mask, _seed_pair(seed))
            return {"images": model.from_internal(x)}

        signatures["inpaint"] = inpaint.get_concrete_function()
        module.inpaint = inpaint

    info = {"max_steps": sampler.max_steps, "default_steps": sampler.default_steps}
    return module, signatures, info


def export_savedmodel(model, path: str | os.PathLike, metadata: dict | None = None) -> str:
    """Writes `model` as a SavedModel with serving signatures (module docstring); returns the
    version directory written.

    Args:
      model: an ebm_zoo EnergyModel with built variables.
      path: `<base>/<version>` (a path not ending in a number gets `/1`).
      metadata: extra facts for assets.extra/ebm_zoo.json (e.g. the preset's metadata).
    """
    import keras

    if not hasattr(model, "_energy") or not getattr(model, "family", ""):
        raise EbmZooError(f"export_savedmodel needs an ebm_zoo EnergyModel, got {type(model).__name__}.")
    if not model.variables:
        raise EbmZooError(
            f"{type(model).__name__} has no variables yet; build it first (model.build_all() or one energy call)."
        )
    out = version_path(path)
    if out.exists() and any(out.iterdir()):
        raise EbmZooError(
            f"{out} exists and is not empty; TF Serving versions are immutable. Use the next version "
            f"number (e.g. {out.parent / str(int(out.name) + 1)}) or delete {out}."
        )
    module, signatures, sampler_info = serving_module(model)
    tf.saved_model.save(module, str(out), signatures=signatures)
    info = {
        "class_name": type(model).__name__,
        "family": model.family,
        "config": keras.saving.serialize_keras_object(model)["config"],
        "image_size": int(model.image_size),
        "channels": int(model.channels),
        "signatures": sorted(signatures),
        "sampler": sampler_info,
        "metadata": metadata or getattr(model, "preset_metadata", None) or {},
    }
    os.makedirs(out / "assets.extra", exist_ok=True)
    with open(out / INFO_FILE, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True, default=str)
    return str(out)


def read_export_info(path: str | os.PathLike) -> dict:
    """The assets.extra/ebm_zoo.json of an exported SavedModel ({} if absent)."""
    p = Path(path) / INFO_FILE
    if not p.is_file():
        return {}
    with open(p, encoding="utf-8") as f:
        return json.load(f)
