"""The preset directory format and its safety checks (no code from a preset is ever executed).

A preset directory (keras-hub layout):

    config.json        {"module", "class_name", "config", "registered_name"}: the model class (one
                       of the ebm_zoo families, ebm_zoo.models.FAMILIES) and its constructor
                       arguments, as written by `keras.saving.serialize_keras_object`
    model.weights.h5   Keras weights (HDF5 arrays only, no pickles)
    metadata.json      package / TF / Keras versions, parameter count, dataset, training steps,
                       metrics measured, date, and the sha256 of config.json and model.weights.h5

`read_model_config` refuses any class that is not a registered ebm_zoo model family and any
argument that is itself a serialized object or function (e.g. a Keras `Lambda` or `__lambda__`),
before Keras sees the config; deserialization then runs with `safe_mode=True`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

from ebm_zoo.utils import atomic
from ebm_zoo.utils.checks import EbmZooError, check_output_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CHECKED_FILES = (CONFIG_FILE, WEIGHTS_FILE)
#: Optional: the typicality OOD score's fit (ebm_zoo.models.typicality), sha256-listed when present.
OOD_FIT_FILE = "ood_fit.npz"

# Keys that mark a serialized object / function inside a config: never accepted as arguments.
_OBJECT_KEYS = ("class_name", "registered_name", "module", "__lambda__", "function_type", "code")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _family_of_class(class_name: str) -> tuple[str, str] | None:
    """(family, module) of an ebm_zoo model class name, or None if it is not one."""
    from ebm_zoo.models import FAMILIES

    for family, target in FAMILIES.items():
        module, cls = target.split(":")
        if cls == class_name:
            return family, module
    return None


def _registered_classes() -> str:
    from ebm_zoo.models import FAMILIES

    return ", ".join(f"{t.split(':')[1]} ({f})" for f, t in FAMILIES.items())


def _check_plain_arguments(value, where: str, source: str) -> None:
    """Refuses nested serialized objects/functions: preset arguments are plain JSON values."""
    if isinstance(value, dict):
        marked = [k for k in _OBJECT_KEYS if k in value]
        if marked:
            raise EbmZooError(
                f"{source}: argument {where} is a serialized object or function "
                f"({json.dumps(value)[:200]}); ebm_zoo presets take plain JSON values only (numbers, "
                "strings, lists) and never deserialize objects, lambdas or code from a preset. Rebuild the "
                "preset with tools/export.py from a model whose constructor arguments are plain values."
            )
        for k, v in value.items():
            _check_plain_arguments(v, f"{where}.{k}", source)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain_arguments(v, f"{where}[{i}]", source)
    elif not (value is None or isinstance(value, (bool, int, float, str))):
        raise EbmZooError(f"{source}: argument {where} has unsupported type {type(value).__name__}.")


def validate_model_config(cfg, source: str) -> str:
    """Checks a keras-style model config; returns the family name.

    Raises EbmZooError unless `cfg` names a class of ebm_zoo.models.FAMILIES (class_name, and
    module / registered_name if given, must match it) with plain JSON arguments.
    """
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str):
        raise EbmZooError(
            f"{source} is not a model config: expected a JSON object with 'class_name' and 'config' "
            f"(as written by tools/export.py), got {json.dumps(cfg)[:200]}."
        )
    class_name = cfg["class_name"]
    found = _family_of_class(class_name)
    if found is None:
        raise EbmZooError(
            f"{source} names class {class_name!r} (module {cfg.get('module')!r}), which is not a registered "
            f"ebm_zoo model; presets may only name ebm_zoo model families ({_registered_classes()}). "
            "Loading it would run code from outside ebm_zoo, so it is refused."
        )
    family, module = found
    if cfg.get("module") not in (None, module):
        raise EbmZooError(
            f"{source} names class {class_name!r} in module {cfg['module']!r}, but the registered ebm_zoo class "
            f"{class_name!r} lives in {module!r}; refusing to import another module. Fix 'module' to {module!r}."
        )
    expected_reg = f"ebm_zoo>{class_name}"
    if cfg.get("registered_name") not in (None, expected_reg):
        raise EbmZooError(
            f"{source} has registered_name {cfg['registered_name']!r}; the ebm_zoo class is registered as "
            f"{expected_reg!r}. Refusing a class that is not the registered ebm_zoo one."
        )
    args = cfg.get("config")
    if not isinstance(args, dict):
        raise EbmZooError(f"{source}: 'config' must be a JSON object of constructor arguments, got {args!r}.")
    for k, v in args.items():
        _check_plain_arguments(v, k, source)
    return family


def model_from_config(cfg: dict, source: str):
    """Builds the (unweighted) model of a validated keras-style config, with all variables created."""
    import keras

    from ebm_zoo.models import get_model_class

    family = validate_model_config(cfg, source)
    cls = get_model_class(family)  # imports only the ebm_zoo module, which registers the class
    registered = keras.saving.get_registered_object(f"ebm_zoo>{cls.__name__}")
    if registered is not cls:
        raise EbmZooError(
            f"{source}: class {cls.__name__!r} of family {family!r} is not registered with Keras as "
            f"'ebm_zoo>{cls.__name__}'; the family module must decorate it with "
            "@keras.saving.register_keras_serializable(package='ebm_zoo')."
        )
    full = {
        "module": cfg.get("module", cls.__module__),
        "class_name": cls.__name__,
        "config": cfg["config"],
        "registered_name": f"ebm_zoo>{cls.__name__}",
    }
    try:
        model = keras.saving.deserialize_keras_object(full, safe_mode=True)
    except EbmZooError as e:
        raise EbmZooError(f"{source}: cannot build {cls.__name__} from its config: {e}") from None
    except Exception as e:  # any constructor failure on crafted arguments is a bad preset
        detail = " ".join(str(e).split())[:300]
        raise EbmZooError(
            f"{source}: cannot build {cls.__name__} from its config ({type(e).__name__}: {detail}); "
            "the config is corrupt or was edited by hand. Re-export the preset with tools/export.py."
        ) from None
    if not isinstance(model, cls):
        raise EbmZooError(f"{source}: deserialization gave {type(model).__name__}, expected {cls.__name__}.")
    build_variables(model)
    return model


def build_variables(model) -> None:
    """Creates every variable of a model (so weights can be loaded) without compiling it."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a `build\\(\\)` method.*")
        model.build_all()


#: Largest JSON file a preset or run may hold (configs and metadata are a few kB).
MAX_JSON_BYTES = 16 * 2**20


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`; anything else (missing, too large, too deeply nested, not
    UTF-8, not JSON, not an object) raises EbmZooError naming the file."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_JSON_BYTES:
            raise EbmZooError(
                f"{what} {path} is {path.stat().st_size} bytes, more than any ebm_zoo JSON file "
                f"({MAX_JSON_BYTES} max); the file is not an ebm_zoo preset/run file."
            )
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        raise EbmZooError(f"{what} is missing: {path}.") from None
    except IsADirectoryError:
        raise EbmZooError(f"{what} {path} is a directory, not a JSON file.") from None
    except json.JSONDecodeError as e:
        raise EbmZooError(f"{what} {path} is not valid JSON ({e}); re-export or re-download it.") from None
    except RecursionError:
        raise EbmZooError(
            f"{what} {path} is nested too deeply to be an ebm_zoo file (crafted or corrupt); refusing it."
        ) from None
    except UnicodeDecodeError as e:
        raise EbmZooError(f"{what} {path} is not UTF-8 text ({e.reason}); it is corrupt.") from None
    except OSError as e:
        raise EbmZooError(f"{what} {path} cannot be read: {e.strerror or e}.") from None
    if not isinstance(value, dict):
        raise EbmZooError(f"{what} {path} must hold a JSON object, got {type(value).__name__}.")
    return value


def load_weights_file(model, path: Path, source: str) -> None:
    """`model.load_weights(path)` with every failure (truncated / 0-byte / non-HDF5 file, weights
    of another architecture) turned into one EbmZooError naming the file and the fix."""
    import warnings

    path = Path(path)
    if not path.is_file():
        raise EbmZooError(f"Weights file {path} is missing; re-export or re-download {source}.")
    size = path.stat().st_size
    if size == 0:
        raise EbmZooError(
            f"Weights file {path} is empty (0 bytes: a write was interrupted); re-export {source} or, for a "
            "training run, re-run tools/train.py with the same --workdir to rewrite it from the last checkpoint."
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
        # Keras warns (instead of failing) when some saved layers do not fit the model; optimizer
        # state that an inference model does not hold is the one expected, harmless mismatch.
        bad = [
            str(w.message)
            for w in caught
            if issubclass(w.category, UserWarning)
            and not issubclass(w.category, DeprecationWarning)
            and "optimizer" not in str(w.message).lower()
            and any(
                k in str(w.message).lower() for k in ("load", "variable", "mismatch", "expected", "shape")
            )
        ]
        if bad:
            raise ValueError(bad[0])
    except Exception as e:  # h5py OSError, Keras ValueError, ... : all mean "not these weights"
        detail = " ".join(str(e).split())[:300]
        raise EbmZooError(
            f"Weights file {path} ({size} bytes) cannot be loaded into the {type(model).__name__} of {source} "
            f"(image_size={getattr(model, 'image_size', '?')}, channels={getattr(model, 'channels', '?')}): "
            f"{type(e).__name__}: {detail}. The file is truncated/corrupt or belongs to another model; "
            "re-export or re-download it."
        ) from None


def verify_files(directory: Path, expected_weights_sha256: str | None = None) -> dict:
    """Checks config.json and model.weights.h5 against metadata.json's sha256 (and the weights
    against `expected_weights_sha256`, e.g. the registry's); returns the metadata."""
    meta = read_json(directory / METADATA_FILE, "Preset metadata")
    files = meta.get("files")
    if not isinstance(files, dict):
        raise EbmZooError(
            f"{directory / METADATA_FILE} has no 'files' table of sha256 sums; re-export the preset with "
            "tools/export.py."
        )
    for name in CHECKED_FILES:
        path = directory / name
        if not path.is_file():
            raise EbmZooError(f"Preset file {path} is missing; re-export or re-download the preset.")
        want = files.get(name)
        if not want:
            raise EbmZooError(
                f"{directory / METADATA_FILE} lists no sha256 for {name}; re-export the preset."
            )
        got = sha256_file(path)
        if got != want:
            raise EbmZooError(
                f"sha256 mismatch for {path}: metadata.json says {want}, the file has {got}. The file is "
                "corrupt or was changed; delete the preset directory and re-download or re-export it."
            )
    fit = directory / OOD_FIT_FILE
    if OOD_FIT_FILE in files or fit.exists():
        if not fit.is_file():
            raise EbmZooError(
                f"Preset file {fit} is missing but {directory / METADATA_FILE} lists it; re-export or "
                "re-download the preset."
            )
        want = files.get(OOD_FIT_FILE)
        if not want:
            raise EbmZooError(
                f"{fit} is not listed in {directory / METADATA_FILE}'s sha256 table (a file added by "
                f"hand?); delete it, or attach a fit with ebm_zoo.presets.files.attach_ood_fit."
            )
        got = sha256_file(fit)
        if got != want:
            raise EbmZooError(
                f"sha256 mismatch for {fit}: metadata.json says {want}, the file has {got}. The file is "
                "corrupt or was changed; delete the preset directory and re-download or re-export it."
            )
    if expected_weights_sha256 is not None:
        got = files[WEIGHTS_FILE]
        if got != expected_weights_sha256:
            raise EbmZooError(
                f"sha256 mismatch for {directory / WEIGHTS_FILE}: the preset registry expects "
                f"{expected_weights_sha256}, the file has {got}. These are not the published weights; delete "
                f"{directory} and reinstall/re-download the preset."
            )
    return meta


def load_preset_dir(
    directory: str | os.PathLike,
    weights: bool = True,
    *,
    expected_weights_sha256: str | None = None,
    expected_family: str | None = None,
):
    """Loads a preset directory (every file sha256-checked); returns the model."""
    directory = Path(directory)
    meta = verify_files(directory, expected_weights_sha256)
    cfg = read_json(directory / CONFIG_FILE, "Preset config")
    source = str(directory / CONFIG_FILE)
    family = validate_model_config(cfg, source)
    if expected_family is not None and family != expected_family:
        raise EbmZooError(
            f"{source} holds a {family!r} model, but preset {meta.get('name')!r} is a {expected_family!r} "
            f"model; the directory does not belong to this preset. Re-export it with tools/export.py."
        )
    _check_metadata_matches(meta, cfg, directory)
    model = model_from_config(cfg, source)
    if weights:
        load_weights_file(model, directory / WEIGHTS_FILE, f"preset {directory}")
        if (directory / OOD_FIT_FILE).is_file():  # checked by verify_files; belongs to the weights
            model.load_ood_fit(directory / OOD_FIT_FILE)
    model.preset_metadata = meta
    return model


def _check_metadata_matches(meta: dict, cfg: dict, directory: Path) -> None:
    """metadata.json and config.json must describe the same model (family, image size, channels)."""
    args = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    for key, want in (
        ("class_name", cfg.get("class_name")),
        ("image_size", args.get("image_size")),
        ("channels", args.get("channels")),
    ):
        have = meta.get(key)
        if have is not None and want is not None and have != want:
            raise EbmZooError(
                f"Preset {directory}: metadata.json says {key}={have!r} but config.json says {key}={want!r}; "
                "the files do not belong together (edited or mixed up). Re-export the preset with tools/export.py."
            )
    for key in ("image_size", "channels"):
        v = args.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1 or v > 4096):
            raise EbmZooError(
                f"Preset {directory}: config.json has {key}={v!r}; it must be an int in [1, 4096]."
            )


def load_workdir(workdir: str | os.PathLike, weights: bool = True):
    """Loads the model of a finished training run (model_config.json + model.weights.h5)."""
    workdir = Path(workdir)
    mc = read_json(workdir / "model_config.json", "The run's model config (written when training finishes)")
    module = None
    found = _family_of_class(str(mc.get("class_name")))
    if found is not None:
        module = found[1]
    cfg = {"module": module, "class_name": mc.get("class_name"), "config": mc.get("config")}
    source = str(workdir / "model_config.json")
    model = model_from_config(cfg, source)
    if weights:
        path = workdir / WEIGHTS_FILE
        if not path.is_file():
            raise EbmZooError(
                f"{path} is missing: the run in {workdir} has not finished. Train it to the end with "
                f"python tools/train.py --workdir={workdir} (it resumes from its checkpoint)."
            )
        load_weights_file(model, path, f"the training run {workdir}")
    model.preset_metadata = _workdir_metadata(workdir)
    return model


def checkpoint_steps(workdir: str | os.PathLike) -> list[int]:
    """Steps of the training checkpoints kept in <workdir>/checkpoints (ckpt-<step>.index)."""
    d = Path(workdir) / "checkpoints"
    steps = []
    for p in d.glob("ckpt-*.index") if d.is_dir() else []:
        tail = p.name[len("ckpt-") : -len(".index")]
        if tail.isdigit():
            steps.append(int(tail))
    return sorted(steps)


def load_checkpoint(workdir: str | os.PathLike, step: int):
    """Loads the model of a run as it was at its training checkpoint `step` (finished or not).

    The model is built from the run's config.json and every model variable (EMA copies and
    normalisation statistics included) is restored from <workdir>/checkpoints/ckpt-<step>.
    `preset_metadata["checkpoint"]` holds the step and, when the run's timing.json recorded it,
    the training wall-clock and CPU seconds up to that checkpoint (for comparisons at equal
    budget).

    Raises:
      EbmZooError: no config.json, no such checkpoint (the message lists those kept), or a
        checkpoint that does not hold this model's variables.
    """
    import tensorflow as tf

    from ebm_zoo.models import build_model

    workdir = Path(workdir)
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise EbmZooError(f"A checkpoint step is an integer >= 1, got {step!r}.")
    run_cfg = read_json(workdir / "config.json", "The run's experiment config")
    kept = checkpoint_steps(workdir)
    if step not in kept:
        raise EbmZooError(
            f"{workdir} has no checkpoint at step {step}; it keeps "
            f"{', '.join(map(str, kept)) if kept else 'none'} (<workdir>/checkpoints/ckpt-<step>.index). "
            "Pick one of those steps."
        )
    model = build_model(run_cfg.get("model") or {})
    build_variables(model)
    status = tf.train.Checkpoint(variables=list(model.variables)).restore(
        str(workdir / "checkpoints" / f"ckpt-{step}")
    )
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise EbmZooError(
            f"{workdir}/checkpoints/ckpt-{step} does not hold the variables of the model its "
            f"config.json builds ({' '.join(str(e).split())[:200]}); was config.json edited?"
        ) from None
    meta = _workdir_metadata(workdir)
    at = {"step": step}
    timing = workdir / "timing.json"
    if timing.is_file():
        for h in read_json(timing, "The run's timing record").get("history", []):
            if isinstance(h, dict) and h.get("step") == step:
                at.update(
                    train_wall_seconds=h.get("train_wall_seconds"),
                    train_cpu_seconds=h.get("train_cpu_seconds"),
                )
    meta.update(name=f"{workdir.name}@{step}", checkpoint=at, training_steps=step)
    model.preset_metadata = meta
    return model


def _workdir_metadata(workdir: Path) -> dict:
    """What a run directory says about its model (like a preset's metadata, without checksums)."""
    meta: dict = {"name": workdir.name, "source": f"workdir {workdir}"}
    if (workdir / "config.json").is_file():
        run_cfg = read_json(workdir / "config.json", "The run's experiment config")
        meta.update(
            dataset=(run_cfg.get("data") or {}).get("name"),
            config_name=run_cfg.get("config_name"),
            train_config=run_cfg,
        )
    if (workdir / "metrics.json").is_file():
        train_metrics = read_json(workdir / "metrics.json", "The run's final metrics")
        meta.update(training_steps=train_metrics.get("step"), metrics={"training": train_metrics})
    timing = training_time(workdir)
    if timing is not None:
        meta["training_time"] = timing
    return meta


# ----------------------------------------------------------------------------------------------
# Benchmark figures carried into a preset's metadata.json (tools/export.py --shipped).

#: Figures of an MNIST protocol report (ebm_zoo.metrics.mnist_protocol) kept in metadata.json.
MNIST_KEYS = (
    "fd_mnist",
    "kid_mnist",
    "kid_mnist_std",
    "classifier_score",
    "classifier_score_std",
    "effective_classes",
    "precision",
    "recall",
    "class_fractions",
    "num_samples",
    "num_reference",
    "seed",
    "k",
    "standard",
    "classifier_sha256",
    "sample_batch",
    "sampling_cpu_seconds",
    "sampling_wall_seconds",
    "sampling_cpu_seconds_per_100",
    "machine",
)
MNIST_REPORT = "report.json"
OOD_REPORT = "ood.json"


def training_time(workdir: str | os.PathLike) -> dict | None:
    """Wall-clock and CPU seconds of a run's training loop, or None when the run recorded none.

    Read from timing.json (ebm_zoo.training: summed over resumed invocations, CPU = process time
    of every thread) or, for runs trained before it existed, metrics.json's `train_seconds` (the
    wall-clock of the last tools/train.py invocation only; no CPU seconds): `source` says which,
    and `complete` is False when earlier invocations may be missing.
    """
    workdir = Path(workdir)
    if (workdir / "timing.json").is_file():
        t = read_json(workdir / "timing.json", "The run's timing record")
        if isinstance(t.get("train_wall_seconds"), (int, float)):
            return {
                "wall_seconds": float(t["train_wall_seconds"]),
                "cpu_seconds": _number_or_none(t.get("train_cpu_seconds")),
                "step": t.get("step"),
                "invocations": t.get("invocations"),
                "complete": bool(t.get("complete", False)),
                "cpu_count": t.get("cpu_count"),
                "source": "timing.json (training loop, summed over resumed invocations)",
            }
    if (workdir / "metrics.json").is_file():
        m = read_json(workdir / "metrics.json", "The run's final metrics")
        if isinstance(m.get("train_seconds"), (int, float)):
            return {
                "wall_seconds": round(float(m["train_seconds"]), 2),
                "cpu_seconds": None,
                "step": m.get("step"),
                "invocations": None,
                "complete": False,
                "cpu_count": None,
                "source": "metrics.json train_seconds (last tools/train.py invocation only; CPU not recorded)",
            }
    return None


def _number_or_none(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def find_reports(workdir: str | os.PathLike, reports: str | os.PathLike | None = None) -> Path | None:
    """The directory holding a run's protocol reports (report.json and/or ood.json), or None.

    `reports` if given (it must exist); else `<workdir>/reports/`, else
    `<workdir>/../reports/<workdir name>/` (the layout of tools/experiments/train_mnist_presets.sh).
    """
    workdir = Path(workdir)
    if reports is not None:
        reports = Path(reports)
        if not any((reports / f).is_file() for f in (MNIST_REPORT, OOD_REPORT)):
            raise EbmZooError(
                f"--reports={reports} holds neither {MNIST_REPORT} nor {OOD_REPORT}; write them with "
                f"python tools/eval.py --workdir={workdir} --protocol=mnist --out={reports} (and "
                "--protocol=mnist_ood), or leave --reports out."
            )
        return reports
    for candidate in (workdir / "reports", workdir.parent / "reports" / workdir.name):
        if any((candidate / f).is_file() for f in (MNIST_REPORT, OOD_REPORT)):
            return candidate
    return None


def _check_fresh(report_path: Path, workdir: Path, step: int | None = None) -> None:
    """A report older than the run's weights was measured on other weights: refused. With `step`
    the report must be the one of that checkpoint (its `checkpoint` record)."""
    if step is not None:
        at = (read_json(report_path, "protocol report").get("checkpoint") or {}).get("step")
        if at != step:
            raise EbmZooError(
                f"{report_path} is not the report of checkpoint {step} (it scored "
                f"{'the final weights' if at is None else f'checkpoint {at}'}); write it with "
                f"python tools/eval.py --workdir={workdir} --checkpoint={step} "
                f"--protocol={'mnist_ood' if report_path.name == OOD_REPORT else 'mnist'} --out={report_path.parent}."
            )
        return
    weights = workdir / WEIGHTS_FILE
    if weights.is_file() and report_path.stat().st_mtime < weights.stat().st_mtime:
        raise EbmZooError(
            f"{report_path} is older than {weights}: it was measured before the run's final weights "
            f"were written, so its figures may belong to other weights. Re-run tools/eval.py --workdir={workdir} "
            f"--protocol={'mnist_ood' if report_path.name == OOD_REPORT else 'mnist'} --out={report_path.parent}."
        )


def benchmark_metadata(
    workdir: str | os.PathLike, reports: str | os.PathLike | None = None, step: int | None = None
) -> dict:
    """The fields a preset's metadata.json gets from a run's protocol reports and timing.

    With `step` (a preset exported from that training checkpoint) the reports must be those of
    tools/eval.py --checkpoint=STEP, and training_time is the budget spent up to that checkpoint
    (the report's `checkpoint` record, from timing.json's history).

    Returns a dict for `update_metadata`: `metrics={"mnist": {...}, "mnist_ood": {...}}` (only the
    reports found; the MNIST figures in MNIST_KEYS incl. sampling CPU-s per 100 images, the OOD
    AUROC per set and its settings) and `training_time` (see `training_time`), each only when
    present. Reports older than the run's weights are refused (EbmZooError).
    """
    workdir = Path(workdir)
    out: dict = {}
    where = find_reports(workdir, reports)
    metrics: dict = {}
    if where is not None:
        if (where / MNIST_REPORT).is_file():
            _check_fresh(where / MNIST_REPORT, workdir, step)
            rep = read_json(where / MNIST_REPORT, "MNIST protocol report")
            if "fd_mnist" not in rep:
                raise EbmZooError(
                    f"{where / MNIST_REPORT} is not an MNIST protocol report (no fd_mnist); it was written "
                    "by tools/eval.py without --protocol=mnist. Re-run it with --protocol=mnist."
                )
            metrics["mnist"] = {k: rep[k] for k in MNIST_KEYS if k in rep}
            metrics["mnist"]["command"] = "python tools/eval.py --workdir=RUN --protocol=mnist"
        if (where / OOD_REPORT).is_file():
            _check_fresh(where / OOD_REPORT, workdir, step)
            rep = read_json(where / OOD_REPORT, "MNIST OOD report")
            if not isinstance(rep.get("auroc"), dict):
                raise EbmZooError(f"{where / OOD_REPORT} has no 'auroc' table; re-run --protocol=mnist_ood.")
            method = rep.get("ood_method") or "default"
            metrics["mnist_ood"] = {
                "auroc": rep["auroc"],
                "settings": rep.get("settings"),
                "ood_method": method,
                "command": "python tools/eval.py --workdir=RUN --protocol=mnist_ood"
                + ("" if method == "default" else f" --ood_method={method}"),
            }
    if metrics:
        out["metrics"] = metrics
    if step is not None:
        suffix = f" --checkpoint={step}"
        for rec in metrics.values():
            rec["command"] = rec["command"].replace("--workdir=RUN", "--workdir=RUN" + suffix)
        timing = _checkpoint_time(workdir, step)
    else:
        timing = training_time(workdir)
    if timing is not None:
        out["training_time"] = timing
    return out


def _checkpoint_time(workdir: Path, step: int) -> dict | None:
    """training_time's record up to checkpoint `step` (timing.json's history), or None."""
    if not (workdir / "timing.json").is_file():
        return None
    t = read_json(workdir / "timing.json", "The run's timing record")
    for h in t.get("history") or []:
        if h.get("step") == step and isinstance(h.get("train_wall_seconds"), (int, float)):
            return {
                "wall_seconds": float(h["train_wall_seconds"]),
                "cpu_seconds": _number_or_none(h.get("train_cpu_seconds")),
                "step": step,
                "invocations": t.get("invocations"),
                "complete": bool(t.get("complete", False)),
                "cpu_count": t.get("cpu_count"),
                "source": f"timing.json history (training loop up to checkpoint {step})",
            }
    return None


def is_preset_dir(path: Path) -> bool:
    return (path / METADATA_FILE).is_file() and (path / CONFIG_FILE).is_file()


def is_workdir(path: Path) -> bool:
    return (path / "model_config.json").is_file()


def parameter_counts(model) -> dict:
    import numpy as np

    def count(vs):
        return int(sum(int(np.prod(v.shape)) for v in vs))

    return {
        "trainable": count(model.trainable_variables),
        "non_trainable": count(model.non_trainable_variables),
    }


def save_preset(
    model,
    directory: str | os.PathLike,
    *,
    name: str | None = None,
    description: str = "",
    dataset: str | None = None,
    config_name: str | None = None,
    training_steps: int | None = None,
    metrics: dict | None = None,
    train_config: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes `model` as a preset directory; returns the directory.

    The files are written into a temporary directory next to `directory`, which is then renamed
    into place (ebm_zoo.utils.atomic.publish_dir). An existing `directory` is replaced only with
    `overwrite=True` (EbmZooError otherwise, before anything is written).
    """
    import keras
    import tensorflow as tf

    import ebm_zoo

    directory = Path(directory).expanduser().resolve()
    check_output_dir(directory, "preset directory", must_be_new=True, overwrite=overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    atomic.clean_stale(directory.parent)
    cfg = keras.saving.serialize_keras_object(model)
    validate_model_config(cfg, f"the config of {type(model).__name__}")
    tmp = atomic.temp_dir(directory)
    try:
        with open(tmp / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        model.save_weights(str(tmp / WEIGHTS_FILE))
        checked = CHECKED_FILES
        fit = getattr(model, "ood_fit", None)
        if fit is not None:
            fit.save(tmp / OOD_FIT_FILE)
            checked = (*CHECKED_FILES, OOD_FIT_FILE)
        meta = {
            "name": name or directory.name,
            "description": description,
            "family": model.family,
            "class_name": type(model).__name__,
            "config_name": config_name,
            "dataset": dataset,
            "image_size": int(model.image_size),
            "channels": int(model.channels),
            "parameter_count": parameter_counts(model),
            "training_steps": training_steps,
            "metrics": metrics or {},
            "train_config": train_config,
            "ebm_zoo_version": ebm_zoo.__version__,
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "python_version": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": {n: sha256_file(tmp / n) for n in checked},
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
            "weights_bytes": os.path.getsize(tmp / WEIGHTS_FILE),
        }
        if fit is not None:
            meta["ood_fit"] = {"num_reference": fit.num_reference, "seed": fit.seed}
        _publish(tmp, directory, meta, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _publish(tmp: Path, directory: Path, meta: dict, *, overwrite: bool) -> None:
    """Writes metadata.json into the staged preset `tmp` and swaps it in as `directory`."""
    with open(tmp / METADATA_FILE, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    atomic.publish_dir(tmp, directory, overwrite=overwrite)


def update_metadata(directory: str | os.PathLike, **fields) -> dict:
    """Merges fields (e.g. metrics={'evaluation': ...}) into metadata.json; sha256 sums are kept."""
    path = Path(directory) / METADATA_FILE
    meta = read_json(path, "Preset metadata")
    for k, v in fields.items():
        if isinstance(v, dict) and isinstance(meta.get(k), dict):
            meta[k] = {**meta[k], **v}
        else:
            meta[k] = v
    atomic.write_json(path, meta, indent=2, sort_keys=True)
    return meta


def attach_ood_fit(directory: str | os.PathLike, model, **about) -> dict:
    """Adds `model`'s typicality OOD fit (`model.fit_ood`) to an existing preset directory, or
    replaces its fit: ood_fit.npz is listed with its sha256 in metadata.json (and `about`, e.g.
    dataset="mnist_local", split="train", under "ood_fit"). The model must carry the preset's own
    weights. The directory is rebuilt next to itself and swapped in (atomic.publish_dir), so a
    crash leaves the old or the new preset, never a half-updated one. Returns the metadata."""
    import numpy as np

    directory = Path(directory)
    meta = verify_files(directory)
    fit = getattr(model, "ood_fit", None)
    if fit is None:
        raise EbmZooError("attach_ood_fit: the model has no OOD fit; call model.fit_ood(train_images) first.")
    own = load_preset_dir(directory)
    same = len(own.weights) == len(model.weights) and all(
        a.shape == b.shape and np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(own.weights, model.weights)
    )
    if not same:
        raise EbmZooError(
            f"attach_ood_fit: the model's weights differ from {directory / WEIGHTS_FILE}; fit the preset's "
            f"own model (ebm_zoo.load({str(directory)!r}))."
        )
    tmp = atomic.temp_dir(directory)
    try:
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            shutil.copy2(directory / name, tmp / name)
        fit.save(tmp / OOD_FIT_FILE)
        meta = {
            **meta,
            "files": {**meta["files"], OOD_FIT_FILE: sha256_file(tmp / OOD_FIT_FILE)},
            "ood_fit": {"num_reference": fit.num_reference, "seed": fit.seed, **about},
        }
        _publish(tmp, directory, meta, overwrite=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta
