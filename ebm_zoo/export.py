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
                    num_steps = -1: the model's own sampler and settings, exactly
                    `model.sample(num_samples, seed=seed)`; 0 <= num_steps <= max_steps
                    (= 4x the default): that many Langevin / flow steps (per grid for
                    multi-grid; for VAPO: Euler steps of the flow ODE instead of the
                    model's adaptive dopri5).
  sample_ode        (VAPO) num_samples, seed, rtol float32 [], atol float32 []
                    -> {"images", "nfe" int32 []}: dopri5 at the given tolerances (> 0,
                    checked); rtol = atol = model.rtol reproduces `sample`.
  sample_from_noise noise float32 [N, H, W, C] (standard normal), seed, num_steps
                    -> {"images"}: row i depends only on noise row i (descriptor, wgcn)
  reconstruct       images -> {"images"}                     (families with `reconstruct`)
  inpaint           images, mask float32 [N, H, W, 1|C] (1 = pixel to fill), seed
                    -> {"images"}                            (multigrid, vapo)

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
from ebm_zoo.sampling import langevin, ode
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
    """How a family is sampled inside a SavedModel.

    default(n, seed [2]) -> internal images: the model's own `_sample` (so num_steps = -1
      reproduces `model.sample(n, seed)` exactly).
    steps(n, seed, num_steps) -> internal images with a tensor number of steps, or None when the
      family's sampler has no step count (the signature then accepts only num_steps = -1).
    noise(z, seed, num_steps) -> internal images from given start noise z, or None.
    """

    def __init__(self, model, steps=None, noise=None, noise_shape=None, default_steps=None):
        self.default = lambda n, seed: model._sample(n, seed)
        self.steps, self.noise, self.noise_shape = steps, noise, noise_shape
        self.default_steps = default_steps
        self.max_steps = MAX_STEPS_FACTOR * max(int(default_steps), 1) if default_steps is not None else None


def _step_loop(x, num_steps, max_steps, seed, step):
    """x after `num_steps` (tensor) applications of step(x, seed_t); step t uses fold_in(seed, t)."""
    _, x = tf.while_loop(
        lambda t, _: t < num_steps,
        lambda t, x: (t + 1, step(x, distribute.split_seed(seed, t))),
        (tf.constant(0, tf.int32), x),
        maximum_iterations=max_steps,
    )
    return x


def _descriptor_sampler(model) -> _Sampler:
    """Descriptor and its explicit-Langevin subclasses (short_run): Langevin with a tensor
    num_steps from the model's own start (`_init_noise`); any K gives exactly
    `model.sample(n, seed, num_steps=K)` (the noise of step t depends only on (seed, t))."""
    default = int(getattr(model, "sample_steps", model.num_steps))
    size = int(model.synth_size)
    sampler = _Sampler(model, default_steps=default)

    def chain(x0, seed, num_steps):
        return langevin(
            model._energy,
            x0,
            num_steps=num_steps,
            max_steps=sampler.max_steps,
            step_size=model.step_size,
            seed=distribute.split_seed(seed, 1),
            noise_scale=model.noise_scale,
            clip=model._clip(),
        ).samples

    def steps(n, seed, num_steps):
        x0 = model._init_noise(n, size, seed)
        if model.chain_init == "zeros":
            x0 = tf.zeros_like(x0)
        return chain(x0, seed, num_steps)

    sampler.steps = steps
    if model.family == "descriptor":  # start = σ·z clipped: a client can send z itself

        def noise(z, seed, num_steps):
            if model.chain_init == "zeros":
                return chain(tf.zeros_like(z), seed, num_steps)
            x = model.ref_sigma * z
            lo, hi = model.internal_range
            return chain(tf.clip_by_value(x, lo, hi) if model.clip_pixels else x, seed, num_steps)

        sampler.noise, sampler.noise_shape = noise, (size, size, model.channels)
    return sampler


def _wgcn_sampler(model) -> _Sampler:
    """wGCN: the implicit flow run one step at a time, K = num_steps (a tensor). Same start as
    `model.sample`; step t's noise comes from fold_in(seed, t) one level down, so an explicit K
    gives a chain of the same law as `model.sample(n, seed, num_steps=K)`, not the same pixels."""
    default = int(getattr(model, "sample_steps", model.num_steps))
    size = int(model.synth_size)
    sampler = _Sampler(model, default_steps=default, noise_shape=(size, size, model.channels))

    def one(x, seed):
        return model.run_langevin(x, seed, num_steps=1).samples

    def from_start(x0, seed, num_steps):
        return _step_loop(x0, num_steps, sampler.max_steps, distribute.split_seed(seed, 1), one)

    def steps(n, seed, num_steps):
        x0 = model._init_noise(n, size, seed)
        if model.chain_init == "zeros":
            x0 = tf.zeros_like(x0)
        return from_start(x0, seed, num_steps)

    def noise(z, seed, num_steps):
        lo, hi = model.internal_range
        x0 = model.ref_sigma * z
        x0 = tf.clip_by_value(x0, lo, hi) if model.clip_pixels else x0
        return from_start(x0, seed, num_steps)

    sampler.steps, sampler.noise = steps, noise
    return sampler


def _ggcn_sampler(model) -> _Sampler:
    """GGCN: h ~ N(0, I) -> G(h) -> K wGCN steps, K a tensor (0 = generator only), run one step
    at a time (same law as `model.sample(n, seed, num_steps=K)`, different noise stream)."""
    sampler = _Sampler(model, default_steps=int(model.num_steps))

    def steps(n, seed, num_steps):
        h = tf.random.stateless_normal(
            tf.concat([[n], tf.constant(list(model.latent_shape), tf.int32)], 0), seed
        )
        x0 = model.generator(h, training=False)
        one = lambda x, s: model.flow(x, s, num_steps=1).samples  # noqa: E731
        return _step_loop(x0, num_steps, sampler.max_steps, distribute.split_seed(seed, 1), one)

    sampler.steps = steps
    return sampler


def _multigrid_sampler(model) -> _Sampler:
    """Multi-grid: coarse-to-fine, K = num_steps sampler steps at every grid (a tensor), run one
    step at a time (same law as `model.sample(n, seed, num_steps=K)`, different noise stream)."""
    from ebm_zoo.models.multigrid import up_sample

    sampler = _Sampler(model, default_steps=int(model.num_steps))

    def steps(n, seed, num_steps):
        x = model._start_colours(n, distribute.split_seed(seed, 1000))
        prev = 1
        for k, size in enumerate(model.net_grids):
            x = up_sample(x, size // prev)
            one = lambda x, s, k=k: model.run_sampler(k, x, s, num_steps=1).samples  # noqa: E731
            x = _step_loop(x, num_steps, sampler.max_steps, distribute.split_seed(seed, k), one)
            prev = size
        return x

    sampler.steps = steps
    return sampler


def _vapo_sampler(model) -> _Sampler:
    """VAPO: the model's adaptive solver by default; num_steps = K gives K Euler steps of the
    same flow from the same prior draw (= `model.sample(n, seed, solver="euler", num_steps=K)`)."""
    sampler = _Sampler(model, default_steps=int(model.num_steps))

    def steps(n, seed, num_steps):
        x0 = tf.random.stateless_normal(tf.concat([[n], list(model.image_shape)], 0), seed)
        fn = lambda t, x: model.velocity(t, x)  # noqa: E731
        # num_steps = 0 (allowed by the common signature) means "no step": return the prior draw.
        k = tf.maximum(num_steps, 1)
        x = ode.euler(fn, x0, model.t_start, model.t_end, k, max_steps=sampler.max_steps).state
        return tf.where(num_steps > 0, x, x0)

    sampler.steps = steps
    return sampler


SAMPLERS: dict[str, Callable] = {
    "descriptor": _descriptor_sampler,
    "short_run": _descriptor_sampler,
    "wgcn": _wgcn_sampler,
    "ggcn": _ggcn_sampler,
    "multigrid": _multigrid_sampler,
    "vapo": _vapo_sampler,
}


def make_sampler(model) -> _Sampler:
    """The serving sampler of a model's family (SAMPLERS; other families: default settings only)."""
    make = SAMPLERS.get(model.family)
    return make(model) if make is not None else _Sampler(model)


def make_inpainter(model) -> Callable | None:
    """fill(images01, mask, seed int32 []) -> images01 with the masked pixels (mask == 1) generated
    and the others unchanged, equal to `model.inpaint(images, mask, seed)`; None if the family
    has no inpainting."""
    if not hasattr(model, "inpaint"):
        return None
    if hasattr(model, "_inpaint_internal"):  # multi-grid: coarse-to-fine sampling on the hole

        def fill(images, mask, seed):
            pair = _seed_pair(seed) + tf.constant([0, 1], tf.int32)  # model.inpaint's [seed, 1]
            filled = model.from_internal(model._inpaint_internal(model.to_internal(images), mask, pair))
            return tf.where(tf.broadcast_to(mask, tf.shape(images)) > 0.5, filled, images)

        return fill
    if model.family == "vapo":  # masked ODE: known pixels follow t·y + (1 − t)·ε (VAPO.inpaint)
        settings = model._solver_settings({})

        def fill(images, mask, seed):
            y = model.to_internal(images)
            m = tf.broadcast_to(mask, tf.shape(y))
            eps = tf.random.stateless_normal(tf.shape(y), _seed_pair(seed) + tf.constant([0, 2], tf.int32))

            def velocity(t, x):
                known = t * y + (1.0 - t) * eps
                x = m * x + (1.0 - m) * known
                return m * model.velocity(t, x) + (1.0 - m) * (y - eps)

            x = model._integrate(eps, settings, velocity).state
            return m * model.from_internal(x) + (1.0 - m) * images  # known pixels exact

        return fill
    return None


def _tf_variables(model) -> list[tf.Variable]:
    out = []
    for v in model.variables:
        inner = getattr(v, "value", v)
        out.append(inner if isinstance(inner, tf.Variable) else v)
    return out


def _has_reconstruct(model) -> bool:
    """True if the model has a working `_reconstruct` (short-run disables it: no reference term)."""
    if not (hasattr(model, "reconstruct") and hasattr(model, "_reconstruct")):
        return False
    try:
        model._reconstruct(model.to_internal(tf.zeros([1, *model.image_shape])))
    except EbmZooError:
        return False
    return True


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

    def checked_steps(num_steps):
        if sampler.steps is None:
            ok = tf.debugging.assert_equal(
                num_steps,
                -1,
                message=f"this {model.family} SavedModel samples with the model's own settings: pass num_steps=-1",
            )
        else:
            ok = tf.debugging.assert_less_equal(
                num_steps,
                tf.constant(sampler.max_steps, tf.int32),
                message=f"num_steps must be <= max_steps={sampler.max_steps} (-1 = default {sampler.default_steps})",
            )
        with tf.control_dependencies([ok]):
            return tf.identity(num_steps)

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
            num_steps = checked_steps(num_steps)
            pair = _seed_pair(seed)
            if sampler.steps is None:
                x = sampler.default(num_samples, pair)
            else:
                x = tf.cond(
                    num_steps < 0,
                    lambda: sampler.default(num_samples, pair),
                    lambda: sampler.steps(num_samples, pair, num_steps),
                )
        return {"images": model.from_internal(x)}

    signatures = {
        "serving_default": energy.get_concrete_function(),
        "energy": energy.get_concrete_function(),
        "sample": sample.get_concrete_function(),
    }
    module.energy = energy
    module.sample = sample

    if model.family == "vapo":
        settings = {**model._solver_settings({}), "solver": "dopri5"}

        @tf.function(
            input_signature=[
                tf.TensorSpec([], tf.int32, name="num_samples"),
                tf.TensorSpec([], tf.int32, name="seed"),
                tf.TensorSpec([], tf.float32, name="rtol"),
                tf.TensorSpec([], tf.float32, name="atol"),
            ]
        )
        def sample_ode(num_samples, seed, rtol, atol):
            check = tf.debugging.assert_positive(num_samples, message="num_samples must be > 0")
            with tf.control_dependencies([check]):
                x0 = tf.random.stateless_normal(
                    tf.concat([[num_samples], list(model.image_shape)], 0), _seed_pair(seed)
                )
            res = model._integrate(x0, {**settings, "rtol": rtol, "atol": atol})
            return {"images": model.from_internal(res.state), "nfe": res.nfe}

        signatures["sample_ode"] = sample_ode.get_concrete_function()
        module.sample_ode = sample_ode

    if sampler.noise is not None:

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, *sampler.noise_shape], tf.float32, name="noise"),
                int_spec,
                int_spec,
            ]
        )
        def sample_from_noise(noise, seed, num_steps):
            steps = checked_steps(num_steps)
            steps = tf.where(steps < 0, tf.constant(sampler.default_steps, tf.int32), steps)
            x = sampler.noise(noise, _seed_pair(seed), steps)
            return {"images": model.from_internal(x)}

        signatures["sample_from_noise"] = sample_from_noise.get_concrete_function()
        module.sample_from_noise = sample_from_noise

    if _has_reconstruct(model):

        @tf.function(input_signature=[images_spec])
        def reconstruct(images):
            return {"images": model.from_internal(model._reconstruct(model.to_internal(images)))}

        signatures["reconstruct"] = reconstruct.get_concrete_function()
        module.reconstruct = reconstruct

    fill = make_inpainter(model)
    if fill is not None:

        @tf.function(
            input_signature=[
                images_spec,
                tf.TensorSpec([None, *hw, None], tf.float32, name="mask"),
                tf.TensorSpec([], tf.int32, name="seed"),
            ]
        )
        def inpaint(images, mask, seed):
            return {"images": fill(images, mask, seed)}

        signatures["inpaint"] = inpaint.get_concrete_function()
        module.inpaint = inpaint

    info = {"max_steps": sampler.max_steps, "default_steps": sampler.default_steps}
    return module, signatures, info


def check_batch_independence(model, num_images: int = 3, rtol: float = 1e-4) -> None:
    """Raises EbmZooError if the energy of an image depends on the other images of its batch
    (batch-statistics normalisation), which a served model must not do (DESIGN.md, "Export")."""
    import numpy as np

    x = np.random.default_rng(0).uniform(size=(num_images, *model.image_shape)).astype(np.float32)
    batch = np.asarray(model.energy(x))
    alone = np.array([np.asarray(model.energy(x[i : i + 1]))[0] for i in range(num_images)])
    scale = float(np.max(np.abs(batch))) or 1.0
    if not np.allclose(alone, batch, rtol=rtol, atol=rtol * scale):
        raise EbmZooError(
            f"{type(model).__name__}'s energies depend on the other images of the batch (alone "
            f"{alone.tolist()} vs in one batch {batch.tolist()}): its nets use batch statistics, so a "
            "served answer would change with the request. Train a batch-independent variant (e.g. "
            "--model=multigrid_layer_cpu, norm='layer') or pass allow_batch_dependent=True to export anyway."
        )


def export_savedmodel(
    model, path: str | os.PathLike, metadata: dict | None = None, allow_batch_dependent: bool = False
) -> str:
    """Writes `model` as a SavedModel with serving signatures (module docstring); returns the
    version directory written.

    Args:
      model: an ebm_zoo EnergyModel with built variables.
      path: `<base>/<version>` (a path not ending in a number gets `/1`).
      metadata: extra facts for assets.extra/ebm_zoo.json (e.g. the preset's metadata).
      allow_batch_dependent: export even if energies depend on the rest of the batch
        (`check_batch_independence` refuses such models by default).
    """
    import keras

    if not hasattr(model, "_energy") or not getattr(model, "family", ""):
        raise EbmZooError(f"export_savedmodel needs an ebm_zoo EnergyModel, got {type(model).__name__}.")
    if not model.variables:
        raise EbmZooError(
            f"{type(model).__name__} has no variables yet; build it first (model.build_all() or one energy call)."
        )
    if not allow_batch_dependent:
        check_batch_independence(model)
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
