"""Evaluation of a preset, a training workdir or an exported SavedModel: the logic of tools/eval.py
and tools/sample.py.

    from ebm_zoo.evaluation import harness
    gen = harness.open_model(preset="descriptor_brick")      # or workdir=..., savedmodel=...
    report = harness.evaluate(gen, out_dir="reports/descriptor_brick", num_samples=64)

`evaluate` draws samples, loads reference images of the model's data set, computes the offline
metrics of ebm_zoo.metrics (multi-scale SWD, Fréchet distance / KID / IS analogue in the shipped
classifier's feature space, texture Gram distance) and, when a local Inception-v3 is given, the
standard FID / KID / IS; it writes `report.json` (every figure and the settings that produced it)
and `samples.png` (samples above real images).
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np

from ebm_zoo.utils import atomic
from ebm_zoo.utils.checks import EbmZooError

OFFLINE_METRICS = ("swd", "fd_small", "kid_small", "is_small", "gram")
INCEPTION_METRICS = ("fid", "kid", "is")
INCEPTION_ENV = "EBM_ZOO_INCEPTION"
INCEPTION_CLASSIFIER_ENV = "EBM_ZOO_INCEPTION_CLASSIFIER"


class Generative:
    """What is evaluated: a Keras model (preset / workdir) or a SavedModel, behind one interface.

    Attributes: kind ('preset' | 'workdir' | 'savedmodel'), handle, family, image_size, channels,
    dataset (or None), data_options (extra load_dataset options of the training config), metadata.
    """

    def __init__(self, kind, handle, *, model=None, saved=None, info=None):
        self.kind, self.handle, self.model, self.saved = kind, str(handle), model, saved
        self.num_steps: int | None = None  # sampler steps override (None = the model's default)
        info = info or {}
        self.saved_info = info if saved is not None else {}
        if model is not None:
            self.family = model.family
            self.image_size, self.channels = int(model.image_size), int(model.channels)
            self.metadata = getattr(model, "preset_metadata", None) or info.get("metadata") or {}
        else:
            self.family = info.get("family")
            self.image_size, self.channels = int(info["image_size"]), int(info["channels"])
            self.metadata = info.get("metadata") or {}
        train_cfg = self.metadata.get("train_config") or info.get("train_config") or {}
        data = dict(train_cfg.get("data") or {})
        self.dataset = self.metadata.get("dataset") or data.get("name")
        # Per-dataset options of the training data (e.g. crop=False); arguments that the evaluation
        # sets itself (size, channels, split, order, data_dir) are not copied.
        own = ("name", "image_size", "batch_size", "split", "channels", "shuffle", "repeat", "seed", "limit")
        own += ("data_dir", "drop_remainder", "skip_batches")
        self.data_options = {k: v for k, v in data.items() if k not in own}

    @property
    def is_mcmc(self) -> bool:
        """True for a Python model whose family offers public Langevin chains (`langevin`)."""
        return self.model is not None and callable(getattr(self.model, "langevin", None))

    def sampler_settings(self) -> dict:
        """The sampler hyper-parameters samples are drawn with (for the report), from the family."""
        if self.model is not None:
            out = dict(self.model.sampler_settings())
            if self.num_steps is not None:  # the override replaces the sampling default
                out["num_steps"] = self.num_steps
            return out
        steps = -1 if self.num_steps is None else self.num_steps
        return {"signature": "sample", **(self.saved_info.get("sampler") or {}), "num_steps": steps}

    def sample(self, n: int, seed: int, batch_size: int = 64) -> np.ndarray:
        """n images [n, H, W, C] in [0, 1]; batch b is drawn with seed + b (reproducible)."""
        out = []
        for b, start in enumerate(range(0, n, batch_size)):
            m = min(batch_size, n - start)
            if self.model is not None:
                overrides = {} if self.num_steps is None else {"num_steps": self.num_steps}
                out.append(np.asarray(self.model.sample(m, seed=seed + b, **overrides)))
            else:
                import tensorflow as tf

                res = self.saved.signatures["sample"](
                    num_samples=tf.constant(m, tf.int32),
                    seed=tf.constant(seed + b, tf.int64),
                    num_steps=tf.constant(-1 if self.num_steps is None else self.num_steps, tf.int32),
                )
                out.append(res["images"].numpy())
        return np.concatenate(out, axis=0).astype(np.float32)

    def energy(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            if self.model is not None:
                out.append(np.asarray(self.model.energy(x)))
            else:
                import tensorflow as tf

                out.append(self.saved.signatures["energy"](images=tf.constant(x))["energy"].numpy())
        return np.concatenate(out)


def open_model(
    preset: str | None = None, workdir: str | None = None, savedmodel: str | None = None
) -> Generative:
    """Opens exactly one of: a preset handle (name, directory or URI), a workdir, a SavedModel."""
    given = [(k, v) for k, v in (("preset", preset), ("workdir", workdir), ("savedmodel", savedmodel)) if v]
    if len(given) != 1:
        raise EbmZooError(
            f"Give exactly one of --preset, --workdir or --savedmodel (got {', '.join(k for k, _ in given) or 'none'})."
        )
    kind, handle = given[0]
    if kind == "savedmodel":
        import tensorflow as tf

        from ebm_zoo.export import read_export_info

        path = Path(handle)
        if not (path / "saved_model.pb").is_file():
            raise EbmZooError(
                f"{path} is not a SavedModel directory (no saved_model.pb); pass the version directory, "
                "e.g. exports/NAME/1, written by tools/export.py --out."
            )
        info = read_export_info(path)
        if not info:
            raise EbmZooError(
                f"{path} has no assets.extra/ebm_zoo.json: it was not written by ebm_zoo.export, so its image "
                "size and data set are unknown. Re-export it with tools/export.py --out."
            )
        gen = Generative(kind, handle, saved=tf.saved_model.load(str(path)), info=info)
        for sig in ("sample", "energy"):
            if sig not in gen.saved.signatures:
                raise EbmZooError(f"{path} has no {sig!r} signature (it has {sorted(gen.saved.signatures)}).")
        return gen
    from ebm_zoo.presets import files, loader

    if kind == "workdir":
        model = files.load_workdir(handle)
        run_cfg = files.read_json(Path(handle) / "config.json", "The run's experiment config")
        return Generative(kind, handle, model=model, info={"train_config": run_cfg})
    return Generative(kind, handle, model=loader.load(handle))


def reference_images(
    gen: Generative, dataset: str | None, split: str, num: int, seed: int, data_dir: str | None = None
) -> tuple[np.ndarray, dict]:
    """Up to `num` reference images of `dataset` at the model's size and channels, and how they were read."""
    from ebm_zoo.data import load_array

    name = dataset or gen.dataset
    if not name:
        raise EbmZooError(
            f"{gen.handle} does not record its data set; pass --dataset (e.g. --dataset=digits)."
        )
    options = dict(gen.data_options) if name == gen.dataset else {}
    note = None
    if options.get("crop") is False and split == "test":
        # A set used whole (e.g. one texture image resized) has no held-out images: the model is
        # compared with the image(s) it learned from.
        split, note = "train", "the data set is used whole (crop=False): no held-out split exists"
    images = load_array(
        name, gen.image_size, split, limit=num, channels=gen.channels, seed=seed, data_dir=data_dir, **options
    )
    info = {"dataset": name, "split": split, "num_images": int(len(images)), "options": options}
    if note:
        info["note"] = note
    return images, info


def _resolve(path: str | None, env: str) -> str | None:
    return path or os.environ.get(env) or None


def comparison_sheet(samples: np.ndarray, reference: np.ndarray, path: str, per_row: int = 8) -> str:
    """PNG: up to 2 rows of samples, a gap, then up to 2 rows of real images (same size)."""
    from ebm_zoo.utils import images as image_utils

    k = 2 * per_row
    top = image_utils.make_grid(samples[:k], ncol=per_row)
    ref = reference[:k]
    if ref.shape[1:3] != samples.shape[1:3]:
        import tensorflow as tf

        ref = tf.image.resize(ref, samples.shape[1:3], antialias=True).numpy()
    bottom = image_utils.make_grid(ref, ncol=per_row)
    width = max(top.shape[1], bottom.shape[1])

    def pad(g):
        return np.pad(g, ((0, 0), (0, width - g.shape[1]), (0, 0)), constant_values=1.0)

    gap = np.full((max(2, samples.shape[1] // 4), width, top.shape[2]), 1.0, np.float32)
    sheet = np.concatenate([pad(top), gap, pad(bottom)], axis=0)
    upscale = max(1, int(np.ceil(256 / max(sheet.shape[:2]))))
    return image_utils.save_png(sheet, path, upscale)


def evaluate(
    gen: Generative,
    out_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    split: str = "test",
    num_samples: int = 256,
    num_reference: int = 256,
    metrics=None,
    seed: int = 0,
    inception_path: str | None = None,
    inception_classifier_path: str | None = None,
    data_dir: str | None = None,
    batch_size: int = 64,
) -> dict:
    """Samples, references, metrics; writes report.json and samples.png into out_dir; returns the report.

    Args:
      metrics: names (see `available_metrics()`); None = the offline set, plus fid / kid (and is)
        when an Inception model path is given or set in $EBM_ZOO_INCEPTION
        ($EBM_ZOO_INCEPTION_CLASSIFIER for IS). Asking for fid / kid / is without one raises the
        metrics module's error naming the file that is expected.
    """
    from ebm_zoo.metrics import distances
    from ebm_zoo.metrics.evaluate import METRICS, evaluate_samples

    inception_path = _resolve(inception_path, INCEPTION_ENV)
    inception_classifier_path = _resolve(inception_classifier_path, INCEPTION_CLASSIFIER_ENV)
    notes = {}
    if metrics is None:
        metrics = list(OFFLINE_METRICS)
        if inception_path:
            metrics += ["fid", "kid"]
        else:
            notes["fid"] = notes["kid"] = (
                f"not computed: no Inception-v3 pool3 model (--inception_path or ${INCEPTION_ENV})"
            )
        if inception_classifier_path:
            metrics.append("is")
        else:
            notes["is"] = (
                f"not computed: no Inception-v3 classifier (--inception_classifier_path or ${INCEPTION_CLASSIFIER_ENV})"
            )
    elif isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS and m != "is"]
    if unknown:
        raise EbmZooError(f"Unknown metric(s) {unknown}; valid: {', '.join([*METRICS, 'is'])}.")
    if "is" in metrics and not inception_classifier_path:
        raise EbmZooError(
            "The Inception score needs a local Inception-v3 classifier: a Keras file or SavedModel mapping "
            "[N, 299, 299, 3] images in [-1, 1] to class probabilities [N, 1000] (keras.applications.InceptionV3("
            "include_top=True, weights='imagenet') saved on a machine with internet access). Pass "
            f"--inception_classifier_path=FILE or set ${INCEPTION_CLASSIFIER_ENV}. Offline, use is_small instead."
        )
    if {"fid", "kid"} & set(metrics):
        from ebm_zoo.metrics.inception import resolve_inception_path

        resolve_inception_path(inception_path)  # fails now, with what is expected, not after sampling

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reference, ref_info = reference_images(gen, dataset, split, num_reference, seed, data_dir)
    t0 = time.time()
    samples = gen.sample(num_samples, seed, batch_size)
    sample_seconds = time.time() - t0

    figures: dict[str, float | None] = {}
    multi = len(reference) >= 2
    set_metrics = [m for m in metrics if m in METRICS]
    needs_many = {"fd_small", "kid_small", "mmd_small", "fid", "kid"}
    if not multi:
        for m in set_metrics:
            if m in needs_many:
                notes[m] = f"not computed: the reference set has {len(reference)} image (needs >= 2)"
        set_metrics = [m for m in set_metrics if m not in needs_many]
    if set_metrics:
        kid_size = min(1000, len(samples), len(reference))
        figures.update(
            evaluate_samples(
                samples,
                reference,
                set_metrics,
                seed=seed,
                inception_path=inception_path,
                kid_subset_size=kid_size,
            )
        )
    if "is" in metrics:
        from ebm_zoo.metrics.inception import inception_activations

        probs = inception_activations(samples, inception_classifier_path)
        score = distances.inception_score(probs, splits=min(10, len(samples)))
        figures["is"], figures["is_std"] = score.mean, score.std
    energies = {}
    same_shape = reference.shape[1:] == samples.shape[1:]
    if same_shape or getattr(gen.model, "accepts_any_size", False):
        e_s, e_r = gen.energy(samples, batch_size), gen.energy(reference, batch_size)
        energies = {"samples_mean": float(e_s.mean()), "reference_mean": float(e_r.mean())}

    sheet = comparison_sheet(samples, reference, str(out_dir / "samples.png"))
    report = {
        "model": {
            "kind": gen.kind,
            "handle": gen.handle,
            "family": gen.family,
            "image_size": gen.image_size,
            "channels": gen.channels,
            "training_steps": gen.metadata.get("training_steps"),
            "weights_sha256": gen.metadata.get("weights_sha256"),
        },
        "samples": {
            "num_samples": int(len(samples)),
            "seed": seed,
            "seed_rule": "batch b of `batch_size` samples is drawn with seed + b",
            "batch_size": batch_size,
            "sampler": gen.sampler_settings(),
            "seconds": round(sample_seconds, 2),
        },
        "reference": ref_info,
        "metrics": {k: float(v) for k, v in figures.items()},
        "not_computed": notes,
        "metric_definitions": {
            k: v for k, v in {**METRICS, "is": "Inception score (local classifier)"}.items() if k in metrics
        },
        "energy": energies,
        "extractor": _extractor_info(),
        "inception": {"pool3": inception_path, "classifier": inception_classifier_path},
        "versions": _versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {"report": str(out_dir / "report.json"), "sheet": sheet},
    }
    atomic.write_json(out_dir / "report.json", report, indent=2, sort_keys=True)
    return report


def _extractor_info() -> dict:
    try:
        from ebm_zoo.metrics.features import extractor_info

        info = extractor_info()
    except (ImportError, EbmZooError) as e:
        return {"error": str(e)}
    keep = (
        "weights_file",
        "weights_sha256",
        "feature_dim",
        "input_size",
        "held_out_accuracy",
        "num_parameters",
    )
    return {"name": "ebm_zoo shipped classifier (ebm_zoo.metrics.features)", **{k: info.get(k) for k in keep}}


def _versions() -> dict:
    import keras
    import tensorflow as tf

    import ebm_zoo

    return {
        "ebm_zoo": ebm_zoo.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


# ----------------------------------------------------------------------------------------------
# Sample grids and Langevin trajectories (tools/sample.py).


def langevin_trajectory(
    gen: Generative, n: int, seed: int, every: int, num_steps: int | None = None
) -> list[np.ndarray]:
    """States [n, H, W, C] in [0, 1] of n Langevin chains every `every` steps: the start (noise),
    then after every, 2·every, … up to num_steps (default: the model's sampling steps).

    The chain is run in segments of `every` steps (the model's `run_langevin`, as its public
    `langevin`); segment j uses seed + j for its noise: a valid chain of the same length, with a
    different noise draw than one uninterrupted `sample` call.
    """
    if not gen.is_mcmc:
        raise EbmZooError(
            f"A Langevin trajectory needs an MCMC model with `langevin` (descriptor, wgcn); {gen.handle} "
            f"is a {gen.family!r} {'SavedModel' if gen.model is None else 'model'}. Use --trajectory_every=0."
        )
    import tensorflow as tf

    model = gen.model
    total = int(num_steps if num_steps is not None else model.default_num_steps)
    if every <= 0 or total <= 0:
        raise EbmZooError(f"--trajectory_every ({every}) and num_steps ({total}) must be > 0.")
    x = model.chain_start(n, tf.constant([seed, 0], tf.int32))
    states = [np.asarray(model.from_internal(x))]
    compiled = {}  # one traced chain per segment length (the last segment may be shorter)
    done, j = 0, 0
    while done < total:
        k = min(every, total - done)
        if k not in compiled:
            compiled[k] = tf.function(lambda x0, s, k=k: model.run_langevin(x0, s, num_steps=k).samples)
        x = compiled[k](x, tf.constant([seed + j, 1], tf.int32))  # = model.langevin(..., seed=seed + j)
        states.append(np.asarray(model.from_internal(x)))
        done += k
        j += 1
    return states


def save_trajectory(states: list[np.ndarray], path: str) -> str:
    """PNG strip: one row per chain, one column per recorded state."""
    from ebm_zoo.utils import images as image_utils

    n = states[0].shape[0]
    tiles = np.stack(states, axis=1).reshape(n * len(states), *states[0].shape[1:])
    return image_utils.save_grid(tiles, path, ncol=len(states))


def grids_strip(gen: Generative, n: int, seed: int, path: str) -> str | None:
    """For multi-grid models: the synthesis at every grid, one column per grid (None otherwise)."""
    if gen.model is None or not hasattr(gen.model, "sample_all_grids"):
        return None
    import tensorflow as tf

    from ebm_zoo.utils import images as image_utils

    size = gen.image_size
    grids = [np.asarray(g) for g in gen.model.sample_all_grids(n, seed=seed)]
    grids = [tf.image.resize(g, (size, size), method="nearest").numpy() for g in grids]
    tiles = np.stack(grids, axis=1).reshape(n * len(grids), size, size, gen.channels)
    return image_utils.save_grid(tiles, path, ncol=len(grids))


def record_in_preset(gen: Generative, report: dict) -> Path:
    """Stores the report's figures and settings in the preset's metadata.json (sha256 sums of
    config and weights are unchanged); returns the preset directory."""
    from ebm_zoo.presets import files, loader

    path = None
    if gen.kind == "preset":
        if gen.handle in loader.PRESETS:
            for candidate in (loader.package_dir(gen.handle), loader.home_dir(gen.handle)):
                if files.is_preset_dir(candidate):
                    path = candidate
                    break
        elif files.is_preset_dir(Path(gen.handle)):
            path = Path(gen.handle)
    if path is None:
        raise EbmZooError(
            f"--record needs a preset stored on disk (a shipped or exported preset name, or a preset "
            f"directory); {gen.handle!r} ({gen.kind}) is not one."
        )
    evaluation = {
        "figures": report["metrics"],
        "num_samples": report["samples"]["num_samples"],
        "seed": report["samples"]["seed"],
        "sampler": report["samples"]["sampler"],
        "reference": report["reference"],
        "extractor_sha256": report["extractor"].get("weights_sha256"),
        "date": report["date"],
    }
    files.update_metadata(path, metrics={"evaluation": evaluation})
    return path
