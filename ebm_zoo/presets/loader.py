"""`load(handle)`, `list_presets()` and turning a training workdir into a preset.

Resolution order of `load(handle)` (DESIGN.md, "Presets"):

  1. a local directory: a preset directory (config.json + model.weights.h5 + metadata.json, every
     file sha256-checked) or a finished training workdir (model_config.json + model.weights.h5);
  2. a built-in preset name (ebm_zoo.presets.registry.PRESETS): weights shipped inside the
     package (presets/weights/<name>/, checked against the registry's sha256), else
     `$EBM_ZOO_HOME/presets/<name>/` (written by `tools/export.py --preset=<name>`), else the
     registry's published URI;
  3. a URI (file://, https://, gs://) of a preset directory, copied into
     `$EBM_ZOO_HOME/cache/` and sha256-checked (a verified cached copy is reused).

`EBM_ZOO_OFFLINE=1` never touches the network: https:// and gs:// handles that are not already
cached raise an EbmZooError instead. `EBM_ZOO_HOME` defaults to ~/.ebm_zoo.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from ebm_zoo.presets import files
from ebm_zoo.presets.registry import PRESETS, PresetInfo
from ebm_zoo.utils import atomic
from ebm_zoo.utils.checks import EbmZooError, check_handle, check_inside, check_preset_name

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
URI_SCHEMES = ("file", "https", "http", "gs")
NETWORK_SCHEMES = ("https", "http", "gs")


def home() -> Path:
    """`$EBM_ZOO_HOME` (default ~/.ebm_zoo)."""
    return Path(os.environ.get("EBM_ZOO_HOME") or "~/.ebm_zoo").expanduser()


def offline() -> bool:
    """True when `EBM_ZOO_OFFLINE` is set to anything but '', '0' or 'false'."""
    return os.environ.get("EBM_ZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def package_dir(name: str) -> Path:
    """Where a shipped preset lives inside the package (`name` must be a plain preset name)."""
    return PACKAGE_WEIGHTS / check_preset_name(name)


def home_dir(name: str) -> Path:
    """Where `tools/export.py --preset=<name>` writes a user-trained preset (`name` must be a
    plain preset name: never a path, so nothing is written outside $EBM_ZOO_HOME/presets)."""
    return home() / "presets" / check_preset_name(name)


def get_preset(name: str) -> PresetInfo:
    """The registry entry of a preset name; unknown names list the valid ones."""
    if name not in PRESETS:
        raise _unknown(name)
    return PRESETS[name]


def _unknown(handle: str) -> EbmZooError:
    close = difflib.get_close_matches(handle, list(PRESETS), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return EbmZooError(
        f"Unknown preset {handle!r}: not a preset name, not an existing directory and not a URI.{hint} "
        f"Valid preset names: {', '.join(sorted(PRESETS))}. Or pass a preset directory, a training "
        "workdir, or a file://, https:// or gs:// URI of a preset directory (see ebm_zoo.list_models())."
    )


def weights_status(name: str) -> str:
    """'package' (shipped), 'local' ($EBM_ZOO_HOME), 'download' (published URI) or 'none'."""
    info = get_preset(name)
    if files.is_preset_dir(package_dir(name)):
        return "package"
    if files.is_preset_dir(home_dir(name)):
        return "local"
    if info.weights and info.weights != "package":
        return "download"
    return "none"


def list_presets(verbose: bool = True) -> list[dict]:
    """Every preset: name, description, family, config, dataset, image_size and weights status.

    With `verbose`, also prints one line per preset. Weights status: 'package' (shipped with
    ebm_zoo), 'local' (exported into $EBM_ZOO_HOME/presets), 'download' (published URI, not
    cached), 'none' (train it: see the error of `ebm_zoo.load(name)`).
    """
    rows = []
    for name, info in sorted(PRESETS.items()):
        rows.append(
            {
                "name": name,
                "description": info.description,
                "family": info.family,
                "config": info.config,
                "dataset": info.dataset,
                "image_size": info.image_size,
                "weights": weights_status(name),
            }
        )
    if verbose:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            print(
                f"{r['name']:<{width}}  {r['dataset']:<15} {r['image_size']:>3}px  weights: "
                f"{r['weights']:<8}  {r['description']}"
            )
    return rows


# ----------------------------------------------------------------------------------------------
# Resolution.


def load(handle: str | os.PathLike, weights: bool = True):
    """Loads a model from a preset name, a preset directory / training workdir, or a URI.

    Args:
      handle: see the module docstring for the resolution order.
      weights: False builds the architecture untrained (for a preset name: from its config in
        configs/, without needing any weights file).

    Returns:
      The model (an ebm_zoo EnergyModel, not compiled; call `compile()` to fine-tune it). Models
      loaded from a preset carry its metadata.json as `model.preset_metadata`.

    Raises:
      EbmZooError: unknown handle (lists valid names), missing weights (says where it looked and
        how to produce them), sha256 mismatch, a config naming a non-ebm_zoo class, or offline.
    """
    text = check_handle(handle)
    if not isinstance(weights, bool):
        raise EbmZooError(f"`weights` must be True or False, got {weights!r}.")
    scheme = urllib.parse.urlparse(text).scheme
    local = Path(text).expanduser()
    if scheme not in URI_SCHEMES and local.is_dir():
        if files.is_preset_dir(local):
            return files.load_preset_dir(local, weights)
        if files.is_workdir(local):
            return files.load_workdir(local, weights)
        if (local / "checkpoints").is_dir() or (local / "train.lock").is_file():
            raise EbmZooError(
                f"The training run in {local} has not finished (no model_config.json / model.weights.h5 yet). "
                f"Finish it with python tools/train.py --workdir={local} (it resumes from its last checkpoint)."
            )
        raise EbmZooError(
            f"{local} is a directory but neither a preset (needs {files.CONFIG_FILE}, {files.WEIGHTS_FILE}, "
            f"{files.METADATA_FILE}) nor a finished training workdir (needs model_config.json); make one with "
            "tools/export.py --workdir=RUN --preset=NAME."
        )
    if text in PRESETS:
        return _load_named(PRESETS[text], weights)
    if scheme in URI_SCHEMES:
        return files.load_preset_dir(fetch(text), weights)
    if os.sep in text or text.startswith("."):
        raise EbmZooError(f"No such preset directory: {local}. {_unknown(text)}")
    raise _unknown(text)


def _train_commands(info: PresetInfo) -> str:
    return (
        f"python tools/train.py --model={info.config} --workdir=runs/{info.name}\n"
        f"  python tools/export.py --workdir=runs/{info.name} --preset={info.name}"
    )


def _load_named(info: PresetInfo, weights: bool):
    if not weights:
        return build_untrained(info)
    pkg = package_dir(info.name)
    if files.is_preset_dir(pkg):
        return files.load_preset_dir(pkg, expected_weights_sha256=info.sha256, expected_family=info.family)
    local = home_dir(info.name)
    if files.is_preset_dir(local):
        return files.load_preset_dir(local, expected_family=info.family)
    if info.weights and info.weights != "package":
        return files.load_preset_dir(
            fetch(info.weights), expected_weights_sha256=info.sha256, expected_family=info.family
        )
    raise EbmZooError(
        f"Preset {info.name!r} ({info.description}) has no weights on this machine. Looked in:\n"
        f"  1. {pkg} (weights shipped with ebm_zoo): not there\n"
        f"  2. {local} ($EBM_ZOO_HOME/presets/{info.name}, EBM_ZOO_HOME={home()}): not there\n"
        f"  3. a published download URI: none is registered for this preset\n"
        f"Produce them (config {info.config!r}, dataset {info.dataset!r}) with:\n"
        f"  {_train_commands(info)}\n"
        f"which writes the preset to {local}. Or ebm_zoo.load({info.name!r}, weights=False) for the "
        "untrained architecture."
    )


def build_untrained(info: PresetInfo):
    """The preset's architecture from its config in configs/, freshly initialised."""
    from ebm_zoo import config as config_lib
    from ebm_zoo.models import build_model

    try:
        cfg = config_lib.get_config(info.config)
    except EbmZooError as e:
        raise EbmZooError(
            f"Preset {info.name!r} is trained by config {info.config!r}, which this install lacks ({e})."
        ) from e
    model = build_model(cfg.model)
    files.build_variables(model)
    return model


# ----------------------------------------------------------------------------------------------
# URIs.


def cache_dir(uri: str) -> Path:
    """Cache directory of a preset URI under $EBM_ZOO_HOME/cache."""
    digest = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    base = os.path.basename(urllib.parse.urlparse(uri).path.rstrip("/")) or "preset"
    return home() / "cache" / f"{base}-{digest}"


def _copy_uri(uri: str, dest: Path) -> None:
    """Copies one file from a file://, https:// or gs:// URI to `dest`."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        src = Path(urllib.parse.unquote(parsed.path))
        if not src.is_file():
            raise EbmZooError(f"{uri}: no such file ({src}).")
        shutil.copyfile(src, dest)
    elif parsed.scheme in ("https", "http"):
        try:
            with urllib.request.urlopen(uri, timeout=60) as r, open(dest, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise EbmZooError(f"Download of {uri} failed: {e}. Check the URI or your connection.") from e
    elif parsed.scheme == "gs":
        import tensorflow as tf

        try:
            tf.io.gfile.copy(uri, str(dest), overwrite=True)
        except (tf.errors.OpError, OSError) as e:
            raise EbmZooError(f"Copy of {uri} failed: {e}.") from e
    else:
        raise EbmZooError(f"Unsupported URI scheme in {uri!r}; use file://, https:// or gs://.")


def fetch(uri: str) -> Path:
    """Copies the preset directory at `uri` into the cache (sha256-checked); returns the local copy."""
    dest = cache_dir(uri)
    if files.is_preset_dir(dest):
        try:
            files.verify_files(dest)
            return dest
        except EbmZooError:
            shutil.rmtree(dest, ignore_errors=True)  # a bad cached copy is fetched again
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in NETWORK_SCHEMES and offline():
        raise EbmZooError(
            f"EBM_ZOO_OFFLINE is set, so the preset at {uri} is not downloaded (no cached copy in {dest}). "
            f"Unset EBM_ZOO_OFFLINE to download it, or copy the preset directory to {dest} or any directory "
            "and load that path."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic.clean_stale(dest.parent)
    tmp = atomic.temp_dir(dest)
    try:
        base = uri.rstrip("/")
        _copy_uri(f"{base}/{files.METADATA_FILE}", tmp / files.METADATA_FILE)
        listed = files.read_json(tmp / files.METADATA_FILE, "Preset metadata").get("files")
        optional = [files.OOD_FIT_FILE] if isinstance(listed, dict) and files.OOD_FIT_FILE in listed else []
        for name in (*files.CHECKED_FILES, *optional):
            _copy_uri(f"{base}/{name}", tmp / name)
        files.verify_files(tmp)
        atomic.publish_dir(tmp, dest, overwrite=True)  # a cache entry, re-fetched when it fails its check
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ----------------------------------------------------------------------------------------------
# Workdir -> preset.


def export_workdir(
    workdir: str | os.PathLike,
    preset: str | None = None,
    *,
    shipped: bool = False,
    out_dir: str | os.PathLike | None = None,
    evaluation: dict | None = None,
    overwrite: bool = False,
    step: int | None = None,
) -> Path:
    """Writes the model of a finished training run (or of one of its checkpoints) as a preset
    directory; returns it.

    Args:
      workdir: a run directory of tools/train.py (config.json, model_config.json, model.weights.h5).
      preset: preset name: the directory is `$EBM_ZOO_HOME/presets/<preset>` (or the package's
        presets/weights/<preset> with `shipped`). A registered name must match the run's family.
      shipped: write inside the installed package (for presets that ship with ebm_zoo).
      out_dir: explicit output directory instead.
      evaluation: figures measured by tools/eval.py, stored in metadata.json under metrics.
      overwrite: replace an existing preset directory (refused otherwise, before anything is
        written or deleted).
      step: the run's training checkpoint to export instead of its final weights (e.g. the last
        one before a divergence); `files.load_checkpoint`. The preset's training_steps is `step`
        and metadata.json's training metrics are not the run's final ones but {"step": step}.

    Raises:
      EbmZooError: a preset name that is a path ('../x', '/abs', 'a/b'), an existing preset
        without `overwrite`, a run that has not finished, a family mismatch.
    """
    workdir = Path(workdir)
    if not files.is_workdir(workdir):
        raise EbmZooError(
            f"{workdir} is not a finished training run (no model_config.json). Train with "
            f"python tools/train.py --workdir={workdir} first."
        )
    if out_dir is None:
        if not preset:
            raise EbmZooError("Give a preset name (--preset=NAME) or an output directory.")
        root = PACKAGE_WEIGHTS if shipped else home() / "presets"
        out_dir = check_inside(package_dir(preset) if shipped else home_dir(preset), root, "preset")
    elif preset is not None:
        check_preset_name(preset)
    files.check_output_dir(out_dir, "preset directory", must_be_new=True, overwrite=overwrite)
    name = preset or Path(out_dir).name
    info = PRESETS.get(name)
    if step is None:
        model = files.load_workdir(workdir)
    else:
        model = files.load_checkpoint(workdir, step)
    model = model.without_training_state()  # e.g. no replay buffer
    if info is not None and info.family != model.family:
        raise EbmZooError(
            f"Preset {name!r} is a {info.family!r} model but {workdir} trained a {model.family!r} model; "
            f"pick another --preset name (registered: {', '.join(sorted(PRESETS))})."
        )
    run_cfg = files.read_json(workdir / "config.json", "The run's experiment config")
    train_metrics = {}
    if step is not None:
        train_metrics = {"step": int(step), "checkpoint": model.preset_metadata.get("checkpoint")}
    elif (workdir / "metrics.json").is_file():
        train_metrics = files.read_json(workdir / "metrics.json", "The run's final metrics")
    data = run_cfg.get("data", {})
    metrics = {"training": train_metrics}
    if evaluation:
        metrics["evaluation"] = evaluation
    return files.save_preset(
        model,
        out_dir,
        name=name,
        description=info.description if info else run_cfg.get("description", ""),
        dataset=data.get("name"),
        config_name=run_cfg.get("config_name"),
        training_steps=int(train_metrics.get("step", run_cfg.get("train", {}).get("steps", 0))),
        metrics=metrics,
        train_config=run_cfg,
        overwrite=overwrite,
    )
