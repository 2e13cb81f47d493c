"""SavedModel export with serving signatures, for TF Serving (DESIGN.md, "Export").

    from ebm_zoo.export import export_savedmodel
    export_savedmodel(model, "exports/descriptor_brick/1")     # = model.export(path)

TF Serving loads `<base>/<version>/`, so the path must end in a version number; a path that
does not (e.g. "exports/brick") gets "/1" appended (the written path is returned).

Export knows no family: each model provides its serving functions
(`EnergyModel.serving_functions()`, see ebm_zoo.models.serving for the signatures, their input
checks and the seed convention); this module wraps them in `tf.function`s with their input
signatures and writes the SavedModel. A served result therefore equals the Python API's pixel for
pixel (tests/test_export.py).

`assets.extra/ebm_zoo.json` records the model class, config and metadata for tools/eval.py
(TF Serving ignores the directory).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

from ebm_zoo.utils.checks import EbmZooError

INFO_FILE = os.path.join("assets.extra", "ebm_zoo.json")


def version_path(path: str | os.PathLike) -> Path:
    """`path` if its last component is a version number, else `path/1`."""
    path = Path(path)
    return path if path.name.isdigit() else path / "1"


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
    signatures = {}
    for name, (fn, input_signature) in model.serving_functions().items():
        wrapped = tf.function(fn, input_signature=input_signature)
        signatures[name] = wrapped.get_concrete_function()
        setattr(module, name, wrapped)
    info = {"max_steps": int(model.max_num_steps), "default_steps": int(model.default_num_steps)}
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

    if not hasattr(model, "serving_functions") or not getattr(model, "family", ""):
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
