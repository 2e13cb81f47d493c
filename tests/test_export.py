"""SavedModel export: signatures, round trip, per-image independence, served = Python pixel for
pixel for every shipped preset, in-graph input checks, the family contract, the import graph."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.export import export_savedmodel, read_export_info, version_path
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
        seed=tf.constant(seed, tf.int64),
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
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 12\]"):
        _sample(loaded, 2, 0, 13)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples` must be >= 1"):
        _sample(loaded, 0, 0, 1)


def test_sample_from_noise_rows_are_independent(exported):
    _, _, loaded = exported
    noise = np.random.default_rng(3).normal(size=(3, SIZE, SIZE, 1)).astype(np.float32)
    fn = loaded.signatures["sample_from_noise"]
    seed, steps = tf.constant(5, tf.int64), tf.constant(3)
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
    script = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    # The console script, or the same tool as a module where the environment lacks the script.
    cli = (
        [script]
        if os.path.exists(script)
        else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    procs = {
        sig: subprocess.Popen(
            [*cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", sig, *args],
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
    want = model.energy(x).numpy()
    # Relative to the energies' scale: graph and eager kernels reassociate float sums, so an
    # energy near 0 (random init) can differ by ~1e-8 absolute, a large relative error alone.
    np.testing.assert_allclose(
        loaded.signatures["energy"](images=tf.constant(x))["energy"].numpy(),
        want,
        rtol=1e-5,
        atol=1e-5 * float(np.abs(want).max()),
    )
    np.testing.assert_allclose(_sample(loaded, 2, 5, -1), model.sample(2, seed=5).numpy(), atol=1e-5)
    assert read_export_info(path)["sampler"]["max_steps"] is not None  # every family has steps
    k = _sample(loaded, 2, 5, 2)
    assert k.shape == (2, s, s, c)
    np.testing.assert_array_equal(k, _sample(loaded, 2, 5, 2))
    assert ("inpaint" in loaded.signatures) == model.has_inpaint
    assert set(loaded.signatures) == set(model.serving_functions())
    if "inpaint" in loaded.signatures:
        mask = np.zeros((n, s, s, 1), np.float32)
        mask[:, : s // 2] = 1.0
        served = loaded.signatures["inpaint"](
            images=tf.constant(x), mask=tf.constant(mask), seed=tf.constant(0, tf.int64)
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


def test_sample_from_noise_equals_sample_with_the_same_noise(exported):
    """noise = the N(0, I) draw of `sample`'s seed pair gives `sample` itself (checks.seed_pair)."""
    model, _, loaded = exported
    for seed in (5, 2**40 + 3):  # the second needs both halves of the seed pair
        pair = tf.constant([seed % 2**31, seed >> 31], tf.int32)
        z = tf.random.stateless_normal([2, SIZE, SIZE, 1], pair)
        got = loaded.signatures["sample_from_noise"](
            noise=z, seed=tf.constant(seed, tf.int64), num_steps=tf.constant(-1)
        )["images"].numpy()
        np.testing.assert_array_equal(got, model.sample(2, seed=seed).numpy())
        np.testing.assert_array_equal(
            _sample(loaded, 2, seed, 2), model.sample(2, seed=seed, num_steps=2).numpy()
        )


# ----------------------------------------------------------------------------------------------
# Served = Python, pixel for pixel, for every shipped preset.


def _shipped_presets():
    from ebm_zoo.presets import PRESETS

    return sorted(name for name, info in PRESETS.items() if info.weights == "package")


@pytest.mark.slow
@pytest.mark.parametrize("name", _shipped_presets())
def test_served_sample_and_inpaint_equal_python_for_every_preset(name, tmp_path):
    """For K in {0, 1, 2} the SavedModel's `sample` equals `model.sample(n, seed, num_steps=K)`
    bit for bit, and -1 (the default K) equals `model.sample(n, seed)` (the same in-graph loop
    with a tensor K, so larger K add time, not coverage);
    `inpaint` equals `model.inpaint`. Both sides run the model's one `_sample` / `_inpaint` on
    the same tensors, so no tolerance is needed."""
    import ebm_zoo

    model = ebm_zoo.load(name)
    # A preset trained with batch-statistics BatchNorm (the multi-grid paper's nets) exports only
    # on request; served = Python still holds for the same request.
    batch_dependent = getattr(model, "norm", None) == "batch"
    loaded = tf.saved_model.load(
        export_savedmodel(model, tmp_path / name, allow_batch_dependent=batch_dependent)
    )
    seed = 2**33 + 7  # both halves of the seed pair are used
    for k in (0, 1, 2):
        served = _sample(loaded, 2, seed, k)
        np.testing.assert_array_equal(
            served, model.sample(2, seed=seed, num_steps=k).numpy(), err_msg=f"K={k}"
        )
    np.testing.assert_array_equal(_sample(loaded, 2, seed, -1), model.sample(2, seed=seed).numpy())
    if model.has_inpaint:
        s = model.image_size
        x = np.random.default_rng(0).uniform(size=(2, *model.image_shape)).astype(np.float32)
        mask = np.zeros((2, s, s, 1), np.float32)
        mask[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 1.0
        served = loaded.signatures["inpaint"](
            images=tf.constant(x), mask=tf.constant(mask), seed=tf.constant(seed, tf.int64)
        )["images"].numpy()
        np.testing.assert_array_equal(served, model.inpaint(x, mask, seed=seed).numpy())
        np.testing.assert_array_equal(served[:, : s // 4], x[:, : s // 4])
    assert ("ood_typicality" in loaded.signatures) == (model.ood_fit is not None)
    if model.ood_fit is not None:  # the MNIST presets ship their typicality fit
        x = np.random.default_rng(1).uniform(size=(3, *model.image_shape)).astype(np.float32)
        served = loaded.signatures["ood_typicality"](images=tf.constant(x), seed=tf.constant(seed, tf.int64))
        want = model.ood_score(x, method="typicality", seed=seed).numpy()
        np.testing.assert_allclose(served["score"].numpy(), want, rtol=1e-6)


def test_served_ood_typicality_equals_python(tmp_path):
    """A model with an OOD fit gets the `ood_typicality` signature: the same statistics graph and
    the fit's KDE in float64 TF ops, equal to `model.ood_score(method="typicality")`; its images
    are checked in-graph like every served input."""
    import ebm_zoo
    from ebm_zoo.data import load_array

    model = ebm_zoo.load("short_run_digits")
    digits = load_array("digits", image_size=model.image_size, limit=80)
    model.fit_ood(digits[:60])
    loaded = tf.saved_model.load(export_savedmodel(model, tmp_path / "m"))
    fn = loaded.signatures["ood_typicality"]
    x = np.concatenate([digits[60:], np.random.default_rng(0).uniform(size=(4, *model.image_shape))])
    x = x.astype(np.float32)
    for seed in (0, 2**33 + 7):
        served = fn(images=tf.constant(x), seed=tf.constant(seed, tf.int64))["score"].numpy()
        np.testing.assert_allclose(
            served, model.ood_score(x, method="typicality", seed=seed).numpy(), rtol=1e-6
        )
    assert served[-4:].min() > served[:20].max()  # noise is less typical than held-out digits
    with pytest.raises(tf.errors.InvalidArgumentError, match="in \\[0, 1\\]"):
        fn(images=tf.constant(x * 3.0), seed=tf.constant(0, tf.int64))


# ----------------------------------------------------------------------------------------------
# In-graph validation of served inputs.


@pytest.fixture(scope="module")
def inpainter(tmp_path_factory):
    model = build_model(
        dict(family="multigrid", image_size=8, grids=[1, 2, 8], width=0.05, norm="layer", num_steps=2)
    )
    files.build_variables(model)
    return tf.saved_model.load(export_savedmodel(model, tmp_path_factory.mktemp("mg") / "mg"))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.nan, "NaN or inf"),
        (np.inf, "NaN or inf"),
        (1.5, r"must lie in \[0, 1\]"),
        (-0.2, r"must lie in \[0, 1\]"),
    ],
)
def test_served_images_are_checked(exported, bad, match):
    _, _, loaded = exported
    x = np.full((2, SIZE, SIZE, 1), 0.5, np.float32)
    x[1, 2, 3, 0] = bad
    for sig in ("energy", "reconstruct"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=match):
            loaded.signatures[sig](images=tf.constant(x))
    x[1, 2, 3, 0] = 1.0005  # within the tolerance
    loaded.signatures["energy"](images=tf.constant(x))


@pytest.mark.parametrize(
    "n, seed, steps, match",
    [
        (0, 1, 1, "num_samples` must be >= 1"),
        (-3, 1, 1, "num_samples` must be >= 1"),
        (2, 1, -2, "num_steps` must be -1"),
        (2, 1, -100, "num_steps` must be -1"),
        (2, 1, 13, r"\[0, 12\]"),
        (2, -1, 1, "seed` must lie in"),
        (2, 2**62, 1, "seed` must lie in"),
    ],
)
def test_served_sample_arguments_are_checked(exported, n, seed, steps, match):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        _sample(loaded, n, seed, steps)


def test_served_sample_from_noise_steps_are_checked(exported):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_steps` must be -1"):
        loaded.signatures["sample_from_noise"](
            noise=tf.zeros([1, SIZE, SIZE, 1]), seed=tf.constant(0, tf.int64), num_steps=tf.constant(-5)
        )


@pytest.mark.parametrize(
    "mask_shape, value, match",
    [
        ((2, 8, 8, 1), 0.5, "exactly 0"),
        ((2, 8, 8, 1), np.nan, "exactly 0"),
        ((2, 8, 8, 1), 2.0, "exactly 0"),
        ((3, 8, 8, 1), 1.0, "mask` must have shape"),
        ((2, 4, 8, 1), 1.0, "mask` must have shape"),
        ((2, 8, 8, 2), 1.0, "mask` must have shape"),
    ],
)
def test_served_inpaint_mask_is_checked(inpainter, mask_shape, value, match):
    x = np.full((2, 8, 8, 1), 0.5, np.float32)
    mask = np.zeros(mask_shape, np.float32)
    mask[0, 0, 0, 0] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        inpainter.signatures["inpaint"](
            images=tf.constant(x), mask=tf.constant(mask), seed=tf.constant(0, tf.int64)
        )
    ok = np.zeros((1, 8, 8, 1), np.float32)  # a [1, H, W, 1] mask broadcasts over the batch
    inpainter.signatures["inpaint"](
        images=tf.constant(x), mask=tf.constant(ok), seed=tf.constant(0, tf.int64)
    )
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        inpainter.signatures["inpaint"](
            images=tf.constant(x), mask=tf.constant(ok), seed=tf.constant(0, tf.int64)
        )


# ----------------------------------------------------------------------------------------------
# The family contract and the import structure.


def test_every_registered_family_meets_the_contract():
    from ebm_zoo.models.registry import contract_gaps, families

    found = families()
    assert {"descriptor", "short_run", "wgcn", "ggcn", "multigrid", "vapo", "energy_matching"} <= set(found)
    for name, family in found.items():
        assert contract_gaps(family.cls) == [], name
        assert family.module == f"ebm_zoo.models.{name}" and family.cls.__module__ == family.module
        assert family.aliases and all(isinstance(v, str) for v in family.aliases.values()), name
    # The TF-free manifests (what tools check --model / --preset against) are the registrations.
    from ebm_zoo.models.registry import _manifest, manifests

    assert manifests() == {name: (f.presets, f.aliases) for name, f in found.items()}
    assert all(_manifest(name) is not None for name in found)  # none needed the TF import


def test_preset_and_alias_lookup_import_no_tensorflow():
    """Tools check --model / --preset names before TensorFlow: the preset registry and the config
    aliases come from the family folders' data, not from importing the families."""
    code = (
        "import sys; import ebm_zoo.presets; from ebm_zoo import config; "
        "assert 'descriptor_brick' in ebm_zoo.presets.PRESETS; "
        "assert config.resolve_name('multigrid') == 'multigrid_cpu'; "
        "assert 'tensorflow' not in sys.modules, 'imported TensorFlow'"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_contract_gaps_names_what_a_family_misses():
    from ebm_zoo.models.base import EnergyModel
    from ebm_zoo.models.registry import contract_gaps

    class Half(EnergyModel):  # energy only: no sampler, no training, no config, not registered
        family = "half"

        def _energy(self, x):
            return tf.reduce_sum(x, [1, 2, 3])

    gaps = contract_gaps(Half)
    assert {"_sample", "chain_start", "default_num_steps", "train_step", "get_config"} <= set(gaps)
    assert any("register_keras_serializable" in g for g in gaps)
    assert "_energy" not in gaps and contract_gaps(int) != []


def test_export_names_no_family_and_imports_no_model_module():
    import ebm_zoo.export
    from ebm_zoo.models.registry import families

    source = Path(ebm_zoo.export.__file__).read_text(encoding="utf-8")
    for name, family in families().items():
        assert f'"{name}"' not in source and f"'{name}'" not in source, name
        assert family.cls.__name__ not in source, name
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [m for m in imported if m and m.startswith("ebm_zoo.models")], imported


def _import_graph() -> dict[str, set[str]]:
    """{module: ebm_zoo modules it imports} from every import statement of the package (also the
    ones inside functions). `from a.b import c` is an edge to a.b.c when that is a module, else to
    a.b; importing a sub-module is not counted as an edge to its parent package. The top-level
    facade `ebm_zoo` (nothing but `__version__` and lazy forwarders to presets) is left out: modules
    import it only to read the version."""
    import ebm_zoo

    root = Path(ebm_zoo.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges - {"ebm_zoo"}
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_package_imports_have_no_cycle():
    graph = _import_graph()
    assert graph["ebm_zoo.models.base"] and "ebm_zoo.export" in graph
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph))
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the walker works


def test_every_train_step_fits_one_screen():
    """train_step reads like its paper's algorithm box: at most 40 lines in every family."""
    import inspect

    from ebm_zoo.models.registry import families

    for name, family in families().items():
        lines = inspect.getsource(family.cls.train_step).splitlines()
        assert len(lines) <= 40, f"{name}: train_step has {len(lines)} lines"
