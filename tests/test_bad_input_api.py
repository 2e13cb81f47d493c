"""Bad input to the Python API: every case raises one EbmZooError naming the argument and the fix.

The six families are the shipped presets (weights inside the package); every case here fails
in validation, before any sampler runs, so the file takes seconds. Each case asserts the error
type and a fragment of the message.
"""

from __future__ import annotations

import numpy as np
import pytest

import ebm_zoo
from ebm_zoo import config as config_lib
from ebm_zoo.utils import checks
from ebm_zoo.utils.checks import EbmZooError

FAMILY_PRESETS = {
    "descriptor": "descriptor_brick",
    "multigrid": "multigrid_lfw",
    "short_run": "short_run_digits",
    "wgcn": "wgcn_lfw",
    "ggcn": "ggcn_lfw",
    "vapo": "vapo_digits",
}
FAMILIES = list(FAMILY_PRESETS)
_MODELS: dict = {}


def model_of(family):
    if family not in _MODELS:
        _MODELS[family] = ebm_zoo.load(FAMILY_PRESETS[family])
    return _MODELS[family]


def _images(m, n=2, fill=0.5, size=None, channels=None):
    s = size or m.image_size
    return np.full((n, s, s, channels or m.channels), fill, np.float32)


# --------------------------------------------------------------------------------------------
# energy(x): shape, dtype and range errors for all six families.
ENERGY_CASES = {
    "none": (lambda m: None, "is None"),
    "string": (lambda m: "abc", "got the string"),
    "ragged_list": (
        lambda m: [np.zeros((m.image_size, m.image_size, m.channels)), np.zeros((3, 3, 1))],
        "rectangular",
    ),
    "empty_batch": (
        lambda m: np.zeros((0, m.image_size, m.image_size, m.channels), np.float32),
        "empty batch",
    ),
    "zero_by_zero": (lambda m: np.zeros((1, 0, 0, m.channels), np.float32), "no pixels"),
    "uint8": (lambda m: (_images(m) * 255).astype(np.uint8), "uint8"),
    "range_0_255": (lambda m: _images(m, fill=200.0), "divide by 255"),
    "range_minus1_1": (lambda m: _images(m, fill=-0.8), "(x + 1) / 2"),
    "nan": (lambda m: _images(m, fill=np.nan), "NaN"),
    "rank3": (lambda m: _images(m)[0], "x[None]"),
    "wrong_channels": (lambda m: _images(m, channels=2), "channels"),
}


@pytest.mark.parametrize("case", list(ENERGY_CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_energy_bad_input(family, case):
    m = model_of(family)
    make, fragment = ENERGY_CASES[case]
    with pytest.raises(EbmZooError, match=None) as err:
        m.energy(make(m))
    assert fragment in str(err.value), str(err.value)
    assert "`images`" in str(err.value)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "descriptor"])  # texture mode: any size
def test_energy_wrong_size(family):
    m = model_of(family)
    with pytest.raises(EbmZooError, match="resize with tf.image.resize"):
        m.energy(_images(m, size=m.image_size + 3))


# --------------------------------------------------------------------------------------------
# sample(n, seed): integers stay integers, huge n is refused up front against memory.
SAMPLE_CASES = {
    "float_n": (dict(n=2.7), "`n` must be an int, got 2.7"),
    "whole_float_n": (dict(n=2.0), "pass 2"),
    "string_n": (dict(n="abc"), "got 'abc' (str)"),
    "bool_n": (dict(n=True), "must be an int"),
    "zero_n": (dict(n=0), "`n` must be >= 1, got 0"),
    "negative_n": (dict(n=-1), "`n` must be >= 1, got -1"),
    "none_n": (dict(n=None), "must be an int"),
    "n_2_pow_40": (dict(n=2**40), "Draw them in chunks"),
    "n_1e8": (dict(n=10**8), "GiB"),
    "float_seed": (dict(n=2, seed=1.7), "`seed` must be an int in [0, 2**62)"),
    "negative_seed": (dict(n=2, seed=-1), "`seed` must lie in [0, 2**62)"),
    "seed_2_pow_62": (dict(n=2, seed=2**62), "below 2**62"),
    "string_seed": (dict(n=2, seed="0"), "`seed` must be an int"),
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_sample_bad_arguments(family, case):
    m = model_of(family)
    kwargs, fragment = SAMPLE_CASES[case]
    with pytest.raises(EbmZooError) as err:
        m.sample(**kwargs)
    assert fragment in str(err.value), str(err.value)


def test_sample_memory_estimate_is_a_lower_bound_that_admits_small_n():
    # 16 images of 8x8x1 need 16 * 64 * 4 * 64 bytes = 256 KiB: accepted with 1 MiB available.
    assert checks.check_sample_memory(16, (8, 8, 1), copies=64, available=2**20) == 16 * 64 * 4 * 64
    with pytest.raises(EbmZooError, match="chunks of at most ~64"):
        checks.check_sample_memory(65, (8, 8, 1), copies=64, available=2**20)


# --------------------------------------------------------------------------------------------
# Inpainting masks (multigrid, VAPO) and sampler settings.
MASK_CASES = {
    "half_values": (lambda m: np.full((1, m.image_size, m.image_size, 1), 0.5, np.float32), "must be binary"),
    "wrong_shape": (lambda m: np.ones((1, m.image_size + 1, m.image_size, 1), np.float32), "has shape"),
    "wrong_batch": (lambda m: np.ones((3, m.image_size, m.image_size, 1), np.float32), "N in (1, 2)"),
    "rank5": (lambda m: np.ones((1, 1, m.image_size, m.image_size, 1), np.float32), "has shape"),
    "none": (lambda m: None, "`mask` is None"),
    "strings": (lambda m: np.full((m.image_size, m.image_size), "x"), "numeric 0/1"),
    "ragged": (lambda m: [[0, 1], [1]], "rectangular"),
    "nan": (lambda m: np.full((m.image_size, m.image_size), np.nan, np.float32), "must be binary"),
}


@pytest.mark.parametrize("case", list(MASK_CASES))
@pytest.mark.parametrize("family", ["multigrid", "vapo"])
def test_inpaint_bad_mask(family, case):
    m = model_of(family)
    make, fragment = MASK_CASES[case]
    with pytest.raises(EbmZooError) as err:
        m.inpaint(_images(m), make(m))
    assert fragment in str(err.value), str(err.value)


@pytest.mark.parametrize("family", ["multigrid", "vapo"])
def test_inpaint_empty_batch(family):
    m = model_of(family)
    mask = np.ones((1, m.image_size, m.image_size, 1), np.float32)
    with pytest.raises(EbmZooError, match="empty batch"):
        m.inpaint(_images(m, n=0), mask)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (dict(rtol=0.0), "`rtol` must be > 0"),
        (dict(atol="abc"), "`atol` must be a number"),
        (dict(rtol=2.0), "(0, 1)"),
        (dict(num_steps=-2), "`num_steps` must be >= 0"),
        (dict(num_steps=2.5), "`num_steps` must be an int"),
        (dict(max_solver_steps=-3), "`max_solver_steps` must be >= 1"),
        (dict(solver="bogus"), "Unknown solver"),
        (dict(bogus=1), "Unknown sampler setting(s) bogus"),
    ],
    ids=lambda v: str(v),
)
def test_vapo_sampler_settings(overrides, fragment):
    with pytest.raises(EbmZooError) as err:
        model_of("vapo").sample(2, seed=0, **overrides)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda m: m.langevin(_images(m), num_steps=2.5), "`num_steps` must be an int"),
        (lambda m: m.langevin(_images(m), num_steps=-1), "`num_steps` must be >= 0"),
        (lambda m: m.langevin(_images(m), num_steps=1, seed=1.5), "`seed` must be an int"),
        (lambda m: m.langevin(None), "`images` is None"),
        (lambda m: m.reconstruct(np.zeros((0, 8, 8, 3), np.float32)), "empty batch"),
        (lambda m: m.reconstruct("abc"), "got the string"),
    ],
    ids=["steps_float", "steps_negative", "seed_float", "none", "reconstruct_empty", "reconstruct_str"],
)
def test_descriptor_langevin_and_reconstruct(call, fragment):
    with pytest.raises(EbmZooError) as err:
        call(model_of("descriptor"))
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "overrides, fragment",
    [(dict(num_steps=-1), "`num_steps` must be >= 0"), (dict(solver="x"), "Unknown solver")],
    ids=["negative_K", "solver"],
)
def test_ggcn_sampler_settings(overrides, fragment):
    with pytest.raises(EbmZooError) as err:
        model_of("ggcn").sample(2, seed=0, **overrides)
    assert fragment in str(err.value)


# --------------------------------------------------------------------------------------------
# load(handle) arguments.
@pytest.mark.parametrize(
    "handle, fragment",
    [
        (123, "must be a preset name, a directory path or a URI"),
        (None, "must be a preset name"),
        (b"descriptor_brick", "must be a preset name"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("descriptor_brik", "Did you mean 'descriptor_brick'"),
        ("./no/such/dir", "No such preset directory"),
        ("ftp://x/y", "Unknown preset"),
    ],
    ids=["int", "none", "bytes", "empty", "blank", "typo", "missing_dir", "bad_scheme"],
)
def test_load_bad_handle(handle, fragment):
    with pytest.raises(EbmZooError) as err:
        ebm_zoo.load(handle)
    assert fragment in str(err.value)


def test_load_weights_flag_must_be_bool():
    with pytest.raises(EbmZooError, match="`weights` must be True or False"):
        ebm_zoo.load("descriptor_brick", weights="no")


# --------------------------------------------------------------------------------------------
# Shared validators.
@pytest.mark.parametrize(
    "name",
    [
        "../../x",
        "/abs/path",
        "a/b",
        "a\\b",
        "..",
        ".",
        "",
        ".hidden",
        "-x",
        "~user",
        "c:x",
        "x" * 200,
        "a..b",
        "n\0ul",
    ],
    ids=lambda v: repr(v)[:20],
)
def test_preset_name_is_never_a_path(name):
    with pytest.raises(EbmZooError, match="never a path"):
        checks.check_preset_name(name)


@pytest.mark.parametrize("name", [123, None, ["a"]], ids=["int", "none", "list"])
def test_preset_name_must_be_a_string(name):
    with pytest.raises(EbmZooError, match="must be a string"):
        checks.check_preset_name(name)


def test_check_inside(tmp_path):
    assert checks.check_inside(tmp_path / "a", tmp_path) == (tmp_path / "a").resolve()
    with pytest.raises(EbmZooError, match="outside"):
        checks.check_inside(tmp_path / ".." / "x", tmp_path)
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(EbmZooError, match="outside"):
        checks.check_inside(tmp_path / "link" / "etc", tmp_path)


def test_check_output_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(EbmZooError, match="is an existing file"):
        checks.check_output_dir(f)
    with pytest.raises(EbmZooError, match="is a file, not a directory"):
        checks.check_output_dir(f / "1")
    (tmp_path / "d").mkdir()
    with pytest.raises(EbmZooError, match="--overwrite"):
        checks.check_output_dir(tmp_path / "d", must_be_new=True)
    assert checks.check_output_dir(tmp_path / "d", must_be_new=True, overwrite=True) == tmp_path / "d"


@pytest.mark.parametrize(
    "value, kwargs, fragment",
    [
        (float("nan"), {}, "finite"),
        (float("inf"), {}, "finite"),
        ("1", {}, "must be a number"),
        (True, {}, "must be a number"),
        (-0.1, dict(minimum=0.0), ">= 0"),
        (1.5, dict(maximum=1.0), "<= 1"),
    ],
    ids=["nan", "inf", "str", "bool", "below", "above"],
)
def test_check_number(value, kwargs, fragment):
    with pytest.raises(EbmZooError, match=None) as err:
        checks.check_number(value, "x", **kwargs)
    assert fragment in str(err.value)


def test_seeds_are_one_to_one_up_to_2_pow_62():
    a = checks.stream_seed(2**31 + 5, 1).numpy()
    b = checks.stream_seed(5, 1).numpy()
    assert a.tolist() != b.tolist()
    assert checks.stream_seed(7, 3).numpy().tolist() == [7, 3]  # what families used before


# --------------------------------------------------------------------------------------------
# Config overrides.
@pytest.mark.parametrize(
    "model, overrides, fragment",
    [
        ("descriptor", {"model.image_size": "-16"}, "must be a positive int"),
        ("descriptor", {"data.batch_size": "0"}, "must be a positive int"),
        ("descriptor", {"data.image_size": "2.5"}, "must be a positive int"),
        ("descriptor", {"train.steps": "-5"}, "must be a positive int"),
        ("descriptor", {"model.step_size": ""}, "has no value"),
        ("descriptor", {"model.clip_pixels": "3"}, "is bool"),
        ("ggcn", {"model.lr": "1e-4"}, "--config.model.energy_lr, --config.model.gen_lr"),
        ("ggcn", {"model.learning_rate": "1e-4"}, "--config.model.energy_lr"),
        ("vapo", {"model.lr": "1e-4"}, "--config.model.learning_rate"),
        ("multigrid", {"data.imagesize": "8"}, "--config.data.image_size"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_config_override_errors(model, overrides, fragment):
    cfg = config_lib.get_config(model)
    with pytest.raises(EbmZooError) as err:
        config_lib.apply_overrides(cfg, overrides)
    assert fragment in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "model, keys",
    [
        ("ggcn", ["--config.model.energy_lr", "--config.model.gen_lr"]),
        ("vapo", ["--config.model.learning_rate"]),
        ("descriptor", ["--config.model.learning_rate", "--config.model.step_size"]),
    ],
)
def test_divergence_hint_names_the_familys_real_keys(model, keys):
    hint = config_lib.stability_hint(config_lib.get_config(model))
    for k in keys:
        assert k in hint
    if model == "ggcn":
        assert "--config.model.learning_rate" not in hint


# --------------------------------------------------------------------------------------------
# Data.
@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name="digits", image_size=0), "`image_size` must be a positive int"),
        (dict(name="digits", image_size=2.5), "`image_size` must be a positive int"),
        (dict(name="digits", batch_size=0), "`batch_size` must be a positive int"),
        (dict(name="digits", channels=2), "`channels` must be 1"),
        (dict(name="digits", limit=-1), "`limit` must be a positive int"),
        (dict(name="digits", seed=1.5), "`seed` must be an int"),
        (dict(name="no_such_set"), "no_such_set"),
        (dict(name="folder:/no/such/dir"), "/no/such/dir"),
        (dict(name="folder:/etc/passwd"), "is a file, not a folder"),
        (dict(name=123), "non-empty dataset name"),
        (dict(name=""), "non-empty dataset name"),
        (dict(name="digits", split="bogus"), "Unknown split 'bogus'"),
        (dict(name="digits", seed=2**70), "must fit in int32"),
        (dict(name="digits", skip_batches=-1), "`skip_batches` must be an int >= 0"),
        (dict(name="digits", crop_size=4), "Unknown option(s) crop_size"),
        (dict(name="textures/brick", image_size=8, crop_size=-4), "must be a positive int"),
    ],
    ids=[
        "size0",
        "size_float",
        "batch0",
        "channels2",
        "limit_neg",
        "seed_float",
        "unknown",
        "folder",
        "folder_file",
        "name_int",
        "name_empty",
        "split",
        "seed_huge",
        "skip_neg",
        "option",
        "crop_neg",
    ],
)
def test_load_dataset_bad_arguments(kwargs, fragment):
    from ebm_zoo.data import load_dataset

    with pytest.raises(EbmZooError) as err:
        load_dataset(**kwargs)
    assert fragment in str(err.value)


def test_describe_bad_name():
    from ebm_zoo.data import describe

    with pytest.raises(EbmZooError, match="non-empty dataset name"):
        describe(5)


# --------------------------------------------------------------------------------------------
# Sampler settings are checked before anything is traced (no wrapped TF errors).
@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (dict(bogus=1), "Unknown sampler setting(s) bogus"),
        (dict(num_steps=-1), "`num_steps` must be >= 0"),
        (dict(num_steps=2.5), "`num_steps` must be an int"),
    ],
    ids=["unknown", "steps_negative", "steps_float"],
)
@pytest.mark.parametrize("family", ["descriptor", "short_run", "wgcn", "multigrid"])
def test_mcmc_sampler_overrides(family, overrides, fragment):
    with pytest.raises(EbmZooError) as err:
        model_of(family).sample(2, seed=0, **overrides)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "family, call, fragment",
    [
        ("descriptor", lambda m: m.sample(2, size=0), "`size` must be >= 1"),
        ("descriptor", lambda m: m.sample(2, trace=1), "Unknown sampler setting(s) trace"),
        ("multigrid", lambda m: m.sample(2, step_size=0), "`step_size` must be > 0"),
        ("multigrid", lambda m: m.sample(2, sampler=3), "`sampler` must be a string"),
        ("multigrid", lambda m: m.sample_all_grids(2.5), "`n` must be an int, got 2.5"),
        ("multigrid", lambda m: m.sample_all_grids(2, bogus=1), "sample_all_grids()"),
        ("multigrid", lambda m: m.inpaint(_images(m), np.ones((16, 16)), seed=1.5), "`seed` must be an int"),
        ("vapo", lambda m: m.inpaint(_images(m), np.ones((8, 8)), seed=2**62), "below 2**62"),
        ("vapo", lambda m: m.interpolate(2.5), "`n` must be an int, got 2.5"),
        ("vapo", lambda m: m.interpolate(2, num_points=1), "`num_points` must be >= 2"),
        ("vapo", lambda m: m.sample_with_nfe(0), "`n` must be >= 1"),
        ("vapo", lambda m: m.ood_score(_images(m), seed=1.5), "`seed` must be an int"),
        ("vapo", lambda m: m.ood_score(_images(m), num_steps=0), "`num_steps` must be >= 1"),
        ("vapo", lambda m: m.ood_score(None), "`images` is None"),
        ("vapo", lambda m: m.ood_score(_images(m), method="typicality"), "call model.fit_ood(train_images)"),
        ("descriptor", lambda m: m.ood_score(_images(m), method="nll"), "valid values: energy, typicality"),
        ("descriptor", lambda m: m.ood_score(_images(m), method="typicality", seed=-1), "`seed` must lie in"),
        ("short_run", lambda m: m.fit_ood(None), "`images` is None"),
        ("short_run", lambda m: m.fit_ood(_images(m)), "at least 10 reference images"),
        ("short_run", lambda m: m.fit_ood(_images(m, n=12, fill=np.nan)), "NaN"),
        ("short_run", lambda m: m.fit_ood(_images(m, n=12), batch_size=0), "`batch_size`"),
        ("ggcn", lambda m: m.generate(None), "`latents` must be a float array"),
        ("ggcn", lambda m: m.generate("abc"), "`latents` must be a float array"),
        ("ggcn", lambda m: m.generate(np.zeros((2, 3))), "latent codes have shape"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None,
)
def test_other_public_methods(family, call, fragment):
    with pytest.raises(EbmZooError) as err:
        call(model_of(family))
    assert fragment in str(err.value), str(err.value)
