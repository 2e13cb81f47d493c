"""Presets: registry, directory format, sha256 checks, safe loading, resolution order, offline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import ebm_zoo
from ebm_zoo import presets
from ebm_zoo.export import check_batch_independence
from ebm_zoo.presets import files, loader
from ebm_zoo.presets.registry import PRESETS, PresetInfo
from ebm_zoo.utils.checks import EbmZooError

TINY = dict(
    family="descriptor",
    image_size=8,
    channels=1,
    layers=[[4, 3, 2], [4, 3, 1]],
    num_chains=2,
    num_steps=2,
)


def tiny_model():
    from ebm_zoo.models import build_model

    model = build_model(TINY)
    files.build_variables(model)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EBM_ZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def preset_dir(tmp_path):
    model = tiny_model()
    path = files.save_preset(model, tmp_path / "tiny", name="tiny", dataset="digits", training_steps=3)
    return path, model


def _rehash(directory: Path) -> None:
    """Makes metadata.json's sha256 sums match the (edited) files, so only the check under test fails."""
    meta = json.loads((directory / "metadata.json").read_text())
    meta["files"] = {n: files.sha256_file(directory / n) for n in files.CHECKED_FILES}
    (directory / "metadata.json").write_text(json.dumps(meta))


def _edit_config(directory: Path, edit) -> None:
    cfg = json.loads((directory / "config.json").read_text())
    edit(cfg)
    (directory / "config.json").write_text(json.dumps(cfg))
    _rehash(directory)


# ----------------------------------------------------------------------------------------------
# Directory format and round trip.


def test_preset_directory_round_trip(preset_dir, images):
    path, model = preset_dir
    assert sorted(os.listdir(path)) == ["config.json", "metadata.json", "model.weights.h5"]
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["class_name"] == "Descriptor"
    assert cfg["registered_name"] == "ebm_zoo>Descriptor"
    assert cfg["module"] == "ebm_zoo.models.descriptor"
    meta = json.loads((path / "metadata.json").read_text())
    for key in (
        "tensorflow_version",
        "keras_version",
        "ebm_zoo_version",
        "date",
        "dataset",
        "training_steps",
    ):
        assert meta[key] is not None, key
    assert meta["parameter_count"]["trainable"] == sum(
        int(np.prod(v.shape)) for v in model.trainable_variables
    )
    assert meta["weights_sha256"] == files.sha256_file(path / "model.weights.h5")

    loaded = ebm_zoo.load(str(path))
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.energy(images), model.energy(images), rtol=1e-6)
    assert loaded.preset_metadata["name"] == "tiny"


def test_weights_false_builds_untrained_architecture(preset_dir, images):
    path, model = preset_dir
    fresh = ebm_zoo.load(str(path), weights=False)
    assert fresh.get_config() == model.get_config()
    assert not np.allclose(fresh.energy(images), model.energy(images))


def test_load_by_name_without_weights_uses_registry_config():
    model = ebm_zoo.load("descriptor_brick", weights=False)
    info = PRESETS["descriptor_brick"]
    assert model.family == info.family and model.image_size == info.image_size


# ----------------------------------------------------------------------------------------------
# Integrity and safety.


def test_corrupted_weights_are_refused(preset_dir):
    path, _ = preset_dir
    with open(path / "model.weights.h5", "ab") as f:
        f.write(b"\0")
    with pytest.raises(EbmZooError, match=r"sha256 mismatch for .*model.weights.h5"):
        ebm_zoo.load(str(path))


def test_wrong_sha256_in_metadata_is_refused(preset_dir):
    path, _ = preset_dir
    meta = json.loads((path / "metadata.json").read_text())
    meta["files"]["model.weights.h5"] = "0" * 64
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(EbmZooError, match="metadata.json says 0000"):
        ebm_zoo.load(str(path))


def test_registry_sha256_is_enforced_for_shipped_weights(preset_dir, tmp_path, monkeypatch):
    path, _ = preset_dir
    pkg = tmp_path / "pkg"
    shutil.copytree(path, pkg / "descriptor_fake")
    monkeypatch.setattr(loader, "PACKAGE_WEIGHTS", pkg)
    info = PresetInfo(
        "descriptor_fake", "x", "descriptor", "descriptor_texture", "digits", 8, "package", "f" * 64
    )
    monkeypatch.setitem(PRESETS, "descriptor_fake", info)
    with pytest.raises(EbmZooError, match="the preset registry expects ffff"):
        ebm_zoo.load("descriptor_fake")
    good = info._replace(sha256=files.sha256_file(path / "model.weights.h5"))
    monkeypatch.setitem(PRESETS, "descriptor_fake", good)
    assert ebm_zoo.load("descriptor_fake").family == "descriptor"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(class_name="Sequential", module="keras", registered_name=None), "'Sequential'"),
        (lambda c: c.update(class_name="Lambda", module="keras.layers", registered_name=None), "'Lambda'"),
        (lambda c: c.update(class_name="Evil", module="evil_module", registered_name="evil>Evil"), "'Evil'"),
        (lambda c: c.update(module="os"), "refusing to import another module"),
        (lambda c: c.update(registered_name="other>Descriptor"), "registered_name 'other>Descriptor'"),
        (
            lambda c: c["config"].update(
                activation={"class_name": "__lambda__", "config": {"code": "print('pwned')"}}
            ),
            "argument activation is a serialized object or function",
        ),
        (
            lambda c: c["config"].update(layers=[[4, 3, 2], {"class_name": "Lambda", "config": {}}]),
            r"argument layers\[1\] is a serialized object",
        ),
    ],
)
def test_config_naming_unregistered_class_or_lambda_is_refused(preset_dir, edit, message):
    path, _ = preset_dir
    _edit_config(path, edit)
    with pytest.raises(EbmZooError, match=message):
        ebm_zoo.load(str(path))


def test_refusal_names_the_registered_families(preset_dir):
    path, _ = preset_dir
    _edit_config(path, lambda c: c.update(class_name="Sequential", module="keras", registered_name=None))
    with pytest.raises(EbmZooError) as e:
        ebm_zoo.load(str(path))
    assert "Descriptor (descriptor)" in str(e.value) and "not a registered ebm_zoo model" in str(e.value)


def test_no_pickles_in_weights(preset_dir):
    import h5py

    path, _ = preset_dir
    with h5py.File(path / "model.weights.h5", "r") as f:
        dtypes = []
        f.visititems(lambda n, o: dtypes.append(o.dtype.kind) if isinstance(o, h5py.Dataset) else None)
    assert dtypes and set(dtypes) <= {"f", "i", "u", "b"}


# ----------------------------------------------------------------------------------------------
# Resolution: names, home, URIs, offline.


def test_unknown_name_lists_valid_names():
    with pytest.raises(EbmZooError) as e:
        ebm_zoo.load("descriptor_brik")
    msg = str(e.value)
    assert "Did you mean 'descriptor_brick'" in msg
    for name in PRESETS:
        assert name in msg


def test_missing_weights_say_where_and_how(home):
    name = "ggcn_celeba"
    with pytest.raises(EbmZooError) as e:
        ebm_zoo.load(name)
    msg = str(e.value)
    assert str(loader.package_dir(name)) in msg
    assert str(home / "presets" / name) in msg
    info = PRESETS[name]
    assert f"python tools/train.py --model={info.config} --workdir=runs/{name}" in msg
    assert f"python tools/export.py --workdir=runs/{name} --preset={name}" in msg


def test_home_preset_is_found_and_listed(home, preset_dir, images, monkeypatch):
    path, model = preset_dir
    monkeypatch.setattr(loader, "PACKAGE_WEIGHTS", home / "no_package")
    info = PresetInfo("descriptor_tiny", "tiny test preset", "descriptor", "descriptor_texture", "digits", 8)
    monkeypatch.setitem(PRESETS, "descriptor_tiny", info)
    assert presets.weights_status("descriptor_tiny") == "none"
    shutil.copytree(path, home / "presets" / "descriptor_tiny")
    rows = {r["name"]: r for r in ebm_zoo.describe_models(verbose=False)}
    assert rows["descriptor_tiny"]["weights"] == "local"
    assert set(rows["descriptor_tiny"]) >= {"description", "dataset", "image_size", "weights"}
    np.testing.assert_allclose(
        ebm_zoo.load("descriptor_tiny").energy(images), model.energy(images), rtol=1e-6
    )
    # A preset directory of another family under a registered name is refused.
    monkeypatch.setitem(PRESETS, "descriptor_tiny", info._replace(family="vapo"))
    with pytest.raises(EbmZooError, match="holds a 'descriptor' model, but preset"):
        ebm_zoo.load("descriptor_tiny")


def test_list_models_returns_names_and_prints_nothing(capsys):
    names = ebm_zoo.list_models()
    assert capsys.readouterr().out == ""
    assert names == sorted(PRESETS) and "ggcn_celeba" in names and all(isinstance(n, str) for n in names)


def test_describe_models_prints_one_line_per_preset(capsys):
    rows = ebm_zoo.describe_models()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(rows) == len(PRESETS)
    assert all("weights:" in line for line in out)
    assert {r["name"] for r in rows} == set(ebm_zoo.list_models())


def test_file_uri_is_cached_and_checked(home, preset_dir, images):
    path, model = preset_dir
    uri = path.as_uri()
    loaded = ebm_zoo.load(uri)
    np.testing.assert_allclose(loaded.energy(images), model.energy(images), rtol=1e-6)
    cached = loader.cache_dir(uri)
    assert cached.is_relative_to(home / "cache") and files.is_preset_dir(cached)
    # A tampered source is refused (the corrupted cache copy is dropped and fetched again).
    with open(cached / "model.weights.h5", "ab") as f:
        f.write(b"\0")
    with open(path / "model.weights.h5", "ab") as f:
        f.write(b"\0")
    with pytest.raises(EbmZooError, match="sha256 mismatch"):
        ebm_zoo.load(uri)


def test_offline_never_touches_the_network(home, monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("network access while EBM_ZOO_OFFLINE=1")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("EBM_ZOO_OFFLINE", "1")
    for uri in ("https://example.com/presets/x", "gs://bucket/presets/x"):
        with pytest.raises(EbmZooError, match="EBM_ZOO_OFFLINE is set"):
            ebm_zoo.load(uri)
    info = PresetInfo(
        "descriptor_remote", "x", "descriptor", "descriptor_texture", "digits", 8, "https://h/p", "0" * 64
    )
    monkeypatch.setitem(PRESETS, "descriptor_remote", info)
    with pytest.raises(EbmZooError, match="EBM_ZOO_OFFLINE is set"):
        ebm_zoo.load("descriptor_remote")


def test_offline_load_of_local_presets(home, preset_dir, monkeypatch):
    monkeypatch.setenv("EBM_ZOO_OFFLINE", "1")
    path, _ = preset_dir
    assert ebm_zoo.load(str(path)).family == "descriptor"
    assert ebm_zoo.load(path.as_uri()).family == "descriptor"  # file:// is not the network


# ----------------------------------------------------------------------------------------------
# The registry itself.


def test_registry_matches_configs_and_shipped_weights():
    from ebm_zoo import config as config_lib

    available = set(config_lib.list_configs())
    for name, info in PRESETS.items():
        assert info.family in __import__("ebm_zoo.models", fromlist=["FAMILIES"]).FAMILIES, name
        if info.config in available:
            cfg = config_lib.get_config(info.config)
            assert cfg.model.family == info.family, name
            assert int(cfg.data.image_size) == info.image_size, name
            assert cfg.data.name == info.dataset, name
        pkg = loader.package_dir(name)
        if info.weights == "package":
            assert files.is_preset_dir(pkg), f"{name}: shipped weights missing in {pkg}"
            assert info.sha256 == files.sha256_file(pkg / "model.weights.h5"), f"{name}: stale sha256"
            assert info.config in available, name
        else:
            assert not pkg.exists(), f"{name}: {pkg} exists but the registry does not ship it"


def test_shipped_presets_load(monkeypatch):
    monkeypatch.setenv("EBM_ZOO_OFFLINE", "1")
    shipped = [n for n, i in PRESETS.items() if i.weights == "package"]
    for name in shipped:
        model = ebm_zoo.load(name)
        assert model.preset_metadata["weights_sha256"] == PRESETS[name].sha256
        x = np.full((1, *model.image_shape), 0.5, np.float32)
        assert np.isfinite(model.energy(x).numpy()).all()
        if getattr(model, "norm", None) == "batch":
            # multigrid_mnist: the paper's batch-statistics BatchNorm. Its energies depend on the
            # batch, so serving refuses it unless asked (export(allow_batch_dependent=True)).
            with pytest.raises(EbmZooError, match="depend on the other images of the batch"):
                check_batch_independence(model)
        else:
            check_batch_independence(model)  # servable: no batch statistics


# ----------------------------------------------------------------------------------------------
# train -> export -> load on mocked CelebA (tfds.testing.mock_data).


@pytest.fixture
def celeba_dir(tmp_path):
    """A TFDS data_dir where celeb_a looks prepared (its DatasetInfo, with split sizes);
    tfds.testing.mock_data then serves random records through the real loading code."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("celeb_a", data_dir=str(tmp_path / "tfds"))
    splits = [
        tfds.core.SplitInfo(name=s, shard_lengths=[8], num_bytes=0) for s in ("train", "validation", "test")
    ]
    builder.info.set_splits(tfds.core.SplitDict(splits))
    builder.data_path.mkdir(parents=True, exist_ok=True)
    builder.info.write_to_directory(builder.data_path)
    return str(tmp_path / "tfds")


TINY_OVERRIDES = {
    "descriptor": {
        "model.image_size": 16,
        "model.channels": 3,
        "model.synth_size": 16,
        "model.layers": [[4, 5, 2], [4, 3, 1]],
        "model.num_chains": 2,
        "model.num_steps": 2,
    },
    "ggcn": {
        "model.image_size": 16,
        "model.gen_filters": 16,
        "model.gen_min_filters": 8,
        "model.latent_shape": [4, 4, 4],
        "model.score_layers": [[8, 4, 2], [8, 4, 2]],
        "model.num_steps": 2,
        "model.trace_points": 2,
    },
}


def _tiny_celeba_config(info: PresetInfo, data_dir: str):
    import ml_collections

    from ebm_zoo import config as config_lib

    cfg = config_lib.get_config(info.config)
    config_lib.apply_overrides(cfg, TINY_OVERRIDES[info.family])
    cfg.data = ml_collections.ConfigDict(
        dict(name="celeb_a", image_size=16, batch_size=2, split="train", data_dir=data_dir)
    )
    cfg.train = ml_collections.ConfigDict(
        dict(steps=2, log_every=1, checkpoint_every=2, num_samples=2, seed=0)
    )
    return cfg


@pytest.mark.parametrize("family", ["descriptor", pytest.param("ggcn", marks=pytest.mark.slow)])
def test_mock_celeba_train_export_load_loop(family, home, celeba_dir, tmp_path, monkeypatch):
    """ggcn: the registered ggcn_celeba preset (config ggcn_celeba, tiny overrides); descriptor:
    no CelebA config exists for it, so a test-only registration of the texture config."""
    import tensorflow_datasets as tfds

    from ebm_zoo import training

    name = f"{family}_celeba"
    if name not in PRESETS:  # no paper-scale config for this family: a test-only registration
        config = {"descriptor": "descriptor_texture"}[family]
        monkeypatch.setitem(PRESETS, name, PresetInfo(name, "test", family, config, "celeb_a", 16))
    info = PRESETS[name]
    with pytest.raises(EbmZooError, match=f"--preset={name}"):
        ebm_zoo.load(name)
    workdir = tmp_path / "runs" / name
    with tfds.testing.mock_data(num_examples=8, data_dir=celeba_dir):
        training.train(_tiny_celeba_config(info, celeba_dir), str(workdir), verbose=0)
    path = presets.export_workdir(workdir, name)
    assert path == home / "presets" / name
    model = ebm_zoo.load(name)
    assert model.family == family and model.image_size == 16
    meta = model.preset_metadata
    assert meta["dataset"] == "celeb_a" and meta["training_steps"] == 2
    assert "training" in meta["metrics"]
    run_model = presets.load_workdir(workdir)
    x = np.random.default_rng(1).uniform(size=(2, 16, 16, model.channels)).astype(np.float32)
    np.testing.assert_allclose(model.energy(x), run_model.energy(x), rtol=1e-6)
