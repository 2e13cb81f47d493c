"""SavedModel export: signatures, round trip, per-image independence, seeded sampling, saved_model_cli."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.export import _has_reconstruct, export_savedmodel, read_export_info, version_path
from ebm_zoo.models import build_model
from ebm_zoo.presets import files
from ebm_zoo.utils.checks import EbmZooError

SIZE = 8


def _model(**kw):
    cfg = dict(family="descriptor", image_size=SIZE, channels=1, layers=[[4, 3, 2], [4, 3, 1]], num_chains=2)
    cfg.update(num_steps=3, **kw)
    model = build_model(cfg)
    files.build_variables(model)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _model(mode="object")
    path = export_savedmodel(model, tmp_path_factory.mktemp("export") / "descriptor")
    return model, path, tf.saved_model.load(path)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(4, SIZE, SIZE, 1)).astype(np.float32)


def test_version_directory_and_signatures(exported):
    model, path, loaded = exported
    assert path.endswith(os.path.join("descriptor", "1"))
    assert version_path("a/b/7") == version_path("a/b/7/")
    assert set(loaded.signatures) == {
        "serving_default",
        "energy",
        "sample",
        "sample_from_noise",
        "reconstruct",
    }
    info = read_export_info(path)
    assert info["family"] == "descriptor" and info["sampler"] == {"max_steps": 12, "default_steps": 3}
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, SIZE, SIZE, 1] and spec.dtype == tf.float32


def test_energy_round_trip_matches_keras(exported, images):
    model, _, loaded = exported
    for sig in ("serving_default", "energy"):
        served = loaded.signatures[sig](images=tf.constant(images))["energy"].numpy()
        np.testing.assert_allclose(served, model.energy(images).numpy(), rtol=1e-5)


def test_served_energy_does_not_depend_on_other_images(exported, images):
    _, _, loaded = exported
    batch = loaded.signatures["energy"](images=tf.constant(images))["energy"].numpy()
    for i in range(len(images)):
        alone = loaded.signatures["energy"](images=tf.constant(images[i : i + 1]))["energy"].numpy()
        np.testing.assert_allclose(alone[0], batch[i], rtol=1e-5)


def test_reconstruct_round_trip(exported, images):
    model, _, loaded = exported
    served = loaded.signatures["reconstruct"](images=tf.constant(images))["images"].numpy()
    np.testing.assert_allclose(served, model.reconstruct(images).numpy(), atol=1e-5)


def _sample(loaded, n, seed, steps):
    out = loaded.signatures["sample"](
        num_samples=tf.constant(n, tf.int32),
        seed=tf.constant(seed, tf.int32),
        num_steps=tf.constant(steps, tf.int32),
    )
    return out["images"].numpy()


def test_sample_is_seeded_and_matches_model_sample(exported):
    model, _, loaded = exported
    a = _sample(loaded, 3, 11, -1)
    assert a.shape == (3, SIZE, SIZE, 1) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, _sample(loaded, 3, 11, -1))
    np.testing.assert_allclose(a, model.sample(3, seed=11).numpy(), atol=1e-6)
    assert not np.allclose(a, _sample(loaded, 3, 12, -1))
    assert not np.allclose(a, _sample(loaded, 3, 11, 0))  # num_steps is honoured
    np.testing.assert_allclose(_sample(loaded, 3, 11, 3), a, atol=1e-6)  # default = 3 steps


def test_sample_step_bound_and_count_are_checked(exported):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_steps=12"):
        _sample(loaded, 2, 0, 13)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be > 0"):
        _sample(loaded, 0, 0, 1)


def test_sample_from_noise_rows_are_independent(exported):
    _, _, loaded = exported
    noise = np.random.default_rng(3).normal(size=(3, SIZE, SIZE, 1)).astype(np.float32)
    fn = loaded.signatures["sample_from_noise"]
    seed, steps = tf.constant(5), tf.constant(3)
    batch = fn(noise=tf.constant(noise), seed=seed, num_steps=steps)["images"].numpy()
    np.testing.assert_array_equal(
        batch, fn(noise=tf.constant(noise), seed=seed, num_steps=steps)["images"].numpy()
    )
    assert batch.shape == noise.shape and np.isfinite(batch).all()


def test_texture_model_serves_any_size(tmp_path):
    model = _model(mode="texture")
    loaded = tf.saved_model.load(export_savedmodel(model, tmp_path / "tex" / "3"))
    big = np.random.default_rng(0).uniform(size=(2, 2 * SIZE, 2 * SIZE, 1)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.signatures["energy"](images=tf.constant(big))["energy"].numpy(),
        model.energy(big).numpy(),
        rtol=1e-5,
    )


def test_export_refuses_existing_version_and_non_models(exported, tmp_path):
    model, path, _ = exported
    with pytest.raises(EbmZooError, match="exists and is not empty"):
        export_savedmodel(model, path)
    with pytest.raises(EbmZooError, match="needs an ebm_zoo EnergyModel"):
        export_savedmodel(keras.Sequential(), tmp_path / "x")


def test_model_export_method(tmp_path):
    model = _model(mode="object")
    if type(model).export is keras.Model.export:
        pytest.fail("EnergyModel.export is not defined: model.export(path) would write a plain Keras export")
    out = model.export(str(tmp_path / "m"))
    assert set(tf.saved_model.load(out).signatures) >= {"serving_default", "sample"}


@pytest.mark.slow
def test_saved_model_cli_runs_every_signature(exported, tmp_path):
    """`saved_model_cli run` (installed with TensorFlow) on each signature, in parallel."""
    _, path, loaded = exported
    npy = tmp_path / "images.npy"
    np.save(npy, np.full((2, SIZE, SIZE, 1), 0.5, np.float32))
    noise = tmp_path / "noise.npy"
    np.save(noise, np.zeros((2, SIZE, SIZE, 1), np.float32))
    scalars = "num_samples=2;seed=0;num_steps=2"
    runs = {
        "serving_default": ["--inputs", f"images={npy}"],
        "energy": ["--inputs", f"images={npy}"],
        "reconstruct": ["--inputs", f"images={npy}"],
        "sample": ["--input_exprs", scalars],
        "sample_from_noise": ["--inputs", f"noise={noise}", "--input_exprs", "seed=0;num_steps=2"],
    }
    assert set(runs) == set(loaded.signatures)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    procs = {
        sig: subprocess.Popen(
            [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", sig, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for sig, args in runs.items()
    }
    for sig, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{sig}: {out[-2000:]}"
        key = "energy" if sig in ("serving_default", "energy") else "images"
        assert f"Result for output key {key}" in out, f"{sig}: {out[-2000:]}"


@pytest.mark.slow
@pytest.mark.parametrize(
    # VAPO: tests/test_vapo.py::test_savedmodel_sampling_signatures (a smaller net: its ODE
    # signatures hold the U-Net and its gradient 8× per dopri5 step, slow to trace and save).
    "config_name",
    ["wgcn_cpu", "ggcn_cpu", "multigrid_layer_cpu", "short_run_digits"],
)
def test_every_family_exports(config_name, tmp_path):
    """Each family's SavedModel: energies, `sample` (-1 = model.sample exactly; K steps seeded),
    and inpaint / reconstruct where the family has them."""
    from ebm_zoo import config as config_lib

    model = build_model(config_lib.get_config(config_name).model)
    files.build_variables(model)
    path = export_savedmodel(model, tmp_path / config_name)
    loaded = tf.saved_model.load(path)
    n, s, c = 3, model.image_size, model.channels
    x = np.random.default_rng(0).uniform(size=(n, s, s, c)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.signatures["energy"](images=tf.constant(x))["energy"].numpy(),
        model.energy(x).numpy(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(_sample(loaded, 2, 5, -1), model.sample(2, seed=5).numpy(), atol=1e-5)
    assert read_export_info(path)["sampler"]["max_steps"] is not None  # every family has steps
    k = _sample(loaded, 2, 5, 2)
    assert k.shape == (2, s, s, c)
    np.testing.assert_array_equal(k, _sample(loaded, 2, 5, 2))
    assert ("inpaint" in loaded.signatures) == hasattr(model, "inpaint")
    assert ("reconstruct" in loaded.signatures) == _has_reconstruct(model)
    if "inpaint" in loaded.signatures:
        mask = np.zeros((n, s, s, 1), np.float32)
        mask[:, : s // 2] = 1.0
        served = loaded.signatures["inpaint"](
            images=tf.constant(x), mask=tf.constant(mask), seed=tf.constant(0)
        )
        np.testing.assert_allclose(
            served["images"].numpy(), model.inpaint(x, mask, seed=0).numpy(), atol=1e-5
        )


def test_batch_dependent_model_is_refused(tmp_path):
    from ebm_zoo import config as config_lib

    cfg = config_lib.get_config("multigrid_cpu").model
    cfg.norm = "batch"  # the original's batch-statistics BatchNorm (the config's default)
    model = build_model(cfg)
    files.build_variables(model)
    with pytest.raises(EbmZooError, match="depend on the other images of the batch"):
        export_savedmodel(model, tmp_path / "mg")
    assert not (tmp_path / "mg").exists()
