"""ood_score (one public method on every family) and the MNIST OOD evaluation (AUROC per set)."""

from __future__ import annotations

import numpy as np
import pytest

import ebm_zoo
from ebm_zoo.evaluation import ood
from ebm_zoo.models.base import EnergyModel
from ebm_zoo.models.registry import families
from ebm_zoo.utils.checks import EbmZooError

PRESET_OF = {
    "descriptor": "descriptor_brick",
    "multigrid": "multigrid_lfw",
    "short_run": "short_run_digits",
    "wgcn": "wgcn_lfw",
    "ggcn": "ggcn_lfw",
    "vapo": "vapo_digits",
}


def test_auroc_closed_forms():
    assert ood.auroc([0, 1, 2], [3, 4]) == 1.0
    assert ood.auroc([3, 4], [0, 1, 2]) == 0.0
    assert ood.auroc([1, 1], [1, 1, 1]) == 0.5
    # Pairs (out, in): 1>0, 1<2, 3>0, 3>2 -> 3 of 4.
    assert ood.auroc([0, 2], [1, 3]) == 0.75
    with pytest.raises(EbmZooError, match="non-finite"):
        ood.auroc([0, np.nan], [1])
    with pytest.raises(EbmZooError, match="both sets"):
        ood.auroc([], [1])


def _distance_to_mean_digit():
    p = ood.mnist_test_images()[:2000].mean(axis=0)
    return lambda x: np.sqrt(np.sum((np.asarray(x) - p) ** 2, axis=(1, 2, 3)))


@pytest.mark.slow
def test_distance_energy_separates_far_sets_perfectly_and_sign_flips_it():
    # E(x) = ||x - mean digit||: uniform noise (≈ 0.5 everywhere) and inverted digits (mostly
    # white) lie far outside the ball that holds the MNIST digits.
    score = _distance_to_mean_digit()
    sets = ("noise", "inverted")
    rep = ood.evaluate_ood(score, num_in=300, num_per_set=300, sets=sets)
    neg = ood.evaluate_ood(lambda x: -score(x), num_in=300, num_per_set=300, sets=sets)
    for name in sets:
        assert rep["auroc"][name] == 1.0, rep
        assert neg["auroc"][name] == 0.0
    assert rep["settings"]["num_per_set"] == {"noise": 300, "inverted": 300}


@pytest.mark.slow
def test_ood_sets_are_gray_unit_images_of_the_asked_size():
    for name in ood.OOD_SETS:
        x = ood.ood_images(name, 120, image_size=16, seed=3)
        assert x.shape == (100 if name == "faces" else 120, 16, 16, 1), name
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0, name
        assert x.std() > 0.0, name  # not all one value (constant: one level per image)
        np.testing.assert_array_equal(x, ood.ood_images(name, 120, image_size=16, seed=3))
    c = ood.ood_images("constant", 5, image_size=8)
    assert np.all(c == c[:, :1, :1, :])


def test_mixed_batches_hide_nothing_from_batch_statistics():
    # A score centred on its batch mean ranks one-set batches at random; scored over the shuffled
    # union of the sets it equals the plain brightness score up to the batch's shared offset.
    def brightness(x):
        return np.asarray(x).mean(axis=(1, 2, 3))

    def centred(x):
        b = brightness(x)
        return b - b.mean()

    plain = ood.evaluate_ood(brightness, num_in=500, num_per_set=500, sets=["noise"], batch_size=1000)
    mixed = ood.evaluate_ood(centred, num_in=500, num_per_set=500, sets=["noise"], batch_size=1000)
    assert plain["auroc"]["noise"] == mixed["auroc"]["noise"] == 1.0


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(sets=["bogus"]), "Unknown sets 'bogus'"),
        (dict(sets=[]), "`sets` is empty"),
        (dict(num_in=0), "`num_in` must be >= 1"),
        (dict(num_in=9500, num_per_set=1000), "exceed the 10,000"),
        (dict(seed=-1), "`seed`"),
    ],
)
def test_evaluate_ood_bad_arguments(kwargs, fragment):
    with pytest.raises(EbmZooError) as err:
        ood.evaluate_ood(lambda x: np.zeros(len(x)), **kwargs)
    assert fragment in str(err.value)


def test_score_fn_must_give_one_score_per_image():
    with pytest.raises(EbmZooError, match="one score per image"):
        ood.score_images(lambda x: np.zeros(3), np.zeros((5, 28, 28, 1), np.float32))


def test_every_family_has_ood_score_and_vapo_overrides_it():
    found = families()
    assert set(PRESET_OF) <= set(found)
    for name, family in found.items():
        assert callable(getattr(family.cls, "ood_score", None)), name
    assert found["vapo"].cls.ood_score is not EnergyModel.ood_score


@pytest.mark.parametrize("family", [f for f in PRESET_OF if f != "vapo"])
def test_default_ood_score_is_the_energy(family):
    m = ebm_zoo.load(PRESET_OF[family])
    x = np.random.default_rng(0).uniform(size=(4, m.image_size, m.image_size, m.channels)).astype(np.float32)
    s = np.asarray(m.ood_score(x))
    assert s.shape == (4,) and np.all(np.isfinite(s))
    np.testing.assert_allclose(s, np.asarray(m.energy(x)), rtol=1e-6)
    with pytest.raises(EbmZooError, match="Unknown method 'nll'; valid values: energy, typicality"):
        m.ood_score(x, method="nll")
    with pytest.raises(EbmZooError, match="`images` is None"):
        m.ood_score(None)
    with pytest.raises(EbmZooError, match="divide by 255"):
        m.ood_score(x * 255.0 + 2.0)


@pytest.mark.slow
def test_eval_tool_mnist_ood_matches_python_api(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "EBM_ZOO_OFFLINE": "1"}
    cmd = [sys.executable, str(root / "tools" / "eval.py"), "--protocol=mnist_ood"]
    args = ["--preset=short_run_digits", "--num_samples=40", "--num_reference=60", f"--out={tmp_path}"]
    run = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "ood.json").read_text())
    assert report["family"] == "short_run" and set(report["auroc"]) == set(ood.OOD_SETS)
    m = ebm_zoo.load("short_run_digits")
    same = ood.evaluate_ood(m.ood_score, num_in=60, num_per_set=40, image_size=m.image_size)
    assert report["auroc"] == pytest.approx(same["auroc"], abs=1e-9)
    refused = subprocess.run([*cmd, *args, "--record"], capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 1 and "--record" in refused.stderr


def test_constant_levels_finds_the_levels_a_brightness_score_takes_for_digits():
    """Score = mean brightness: a constant image is 'inside' exactly when its level is below the
    digits' 95th percentile of mean brightness (≈ 0.2), and dropping levels < 0.1 can only help."""
    score = lambda x: np.asarray(x).mean(axis=(1, 2, 3))  # noqa: E731
    r = ood.constant_levels(score, num_in=500, num_constant=400)
    cut = np.quantile(score(ood.mnist_test_images()[:500]), 0.95)
    levels = ood.ood_images("constant", 400)[:, 0, 0, 0]
    assert r["num_inside"] == int((levels < cut).sum()) > 0
    assert r["inside_max_level"] < cut <= min(v for v in levels if v >= cut)
    assert r["inside_levels"] == sorted(r["inside_levels"]) and len(r["inside_levels"]) == r["num_inside"]
    assert r["auroc_level_ge_0.1"] >= r["auroc"]
    with pytest.raises(EbmZooError, match="quantile"):
        ood.constant_levels(score, quantile=1.0)


# ------------------------------------------------------------------------------------------
# The typicality score (ood_score(method="typicality"), fitted by fit_ood).
def test_kde_neg_log_density_closed_forms():
    from scipy.stats import multivariate_normal

    from ebm_zoo.models.base import kde_neg_log_density

    rng = np.random.default_rng(0)
    p = rng.normal(size=(5, 3))
    one = np.zeros((1, 3))
    expected = -multivariate_normal(np.zeros(3), 0.7**2 * np.eye(3)).logpdf(p)
    np.testing.assert_allclose(kde_neg_log_density(p, one, 0.7), expected, rtol=1e-10)
    # Two centres: the mean of the two kernel densities; far points stay finite (log-sum-exp).
    c = rng.normal(size=(2, 3))
    dens = np.mean([multivariate_normal(ci, 0.5**2 * np.eye(3)).pdf(p) for ci in c], axis=0)
    np.testing.assert_allclose(kde_neg_log_density(p, c, 0.5), -np.log(dens), rtol=1e-9)
    far = kde_neg_log_density(np.full((1, 3), 1e3), c, 0.5)
    assert np.isfinite(far).all() and far[0] > 1e5


def test_ood_statistics_gradient_norm_matches_finite_differences():
    m = ebm_zoo.load("short_run_digits")
    x = np.random.default_rng(1).uniform(0.3, 0.7, size=(3, m.image_size, m.image_size, m.channels))
    x = x.astype(np.float32)
    st = m.ood_statistics(x, seed=4)
    assert st.shape == (3, 3) and np.isfinite(st).all()
    np.testing.assert_allclose(st[:, 0], np.asarray(m.energy(x)), rtol=1e-5)
    # The directional derivative along the gradient is its norm: central differences in float64
    # steps of 1e-3 along u = g/|g| (float32 energy, so a loose tolerance).
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        e = m.energy(xt)
    g = tape.gradient(e, xt).numpy()
    u = g / np.sqrt((g.reshape(3, -1) ** 2).sum(1))[:, None, None, None]
    eps = 1e-2
    fd = (np.asarray(m.energy(x + eps * u)) - np.asarray(m.energy(x - eps * u))) / (2 * eps)
    np.testing.assert_allclose(np.exp(st[:, 1]), fd, rtol=2e-2)
    # The perturbation statistic is seeded: same seed, same value; another seed, another.
    np.testing.assert_array_equal(m.ood_statistics(x, seed=4), st)
    assert not np.allclose(m.ood_statistics(x, seed=5)[:, 2], st[:, 2])


def test_typicality_score_needs_a_fit_and_ranks_untypical_statistics_higher():
    m = ebm_zoo.load("short_run_digits")
    s = m.image_size
    rng = np.random.default_rng(0)
    from ebm_zoo.data import load_array

    digits = load_array("digits", image_size=s, limit=300)  # scikit-learn's 8×8 digits, shipped
    assert len(digits) == 300
    x = rng.uniform(size=(4, s, s, 1)).astype(np.float32)
    with pytest.raises(EbmZooError, match=r"call model.fit_ood\(train_images\) first"):
        m.ood_score(x, method="typicality")
    with pytest.raises(EbmZooError, match="at least 10 reference images"):
        m.fit_ood(x)
    fit = m.fit_ood(digits[:200])
    assert fit["num_reference"] == 200 and fit["bandwidth"] == pytest.approx(200 ** (-1 / 7))
    held_out = np.asarray(m.ood_score(digits[200:300], method="typicality"))
    noise = np.asarray(m.ood_score(rng.uniform(size=(100, s, s, 1)).astype(np.float32), method="typicality"))
    assert ood.auroc(held_out, noise) > 0.95
    # The score is the KDE of the whitened statistics: recompute it by hand.
    from ebm_zoo.models.base import kde_neg_log_density

    st = m.ood_statistics(digits[200:210])
    z = (st - m.ood_fit.mean) @ m.ood_fit.whiten.T
    np.testing.assert_allclose(
        held_out[:10], kde_neg_log_density(z, m.ood_fit.centres, fit["bandwidth"]), rtol=1e-5
    )
    # Whitening: the fitted centres have identity covariance.
    np.testing.assert_allclose(np.cov(m.ood_fit.centres.T), np.eye(3), atol=1e-6)
    # The fit's summary gives back the statistics' spread.
    np.testing.assert_allclose(fit["std"], m.ood_statistics(digits[:200]).std(0, ddof=1), rtol=1e-6)


def test_kde_in_tensorflow_equals_numpy():
    """The served twin of the KDE (float64 TF ops) equals the NumPy one, far points included."""
    from ebm_zoo.models.typicality import TypicalityFit

    rng = np.random.default_rng(3)
    fit = TypicalityFit.from_statistics(rng.normal(size=(50, 3)) * [1.0, 10.0, 0.1], 0, 0.1)
    pts = np.concatenate([rng.normal(size=(7, 3)), np.full((1, 3), 1e3)])
    np.testing.assert_allclose(fit.neg_log_density_tf(pts).numpy(), fit.neg_log_density(pts), rtol=1e-12)


def _digits_fit(m, n=60):
    from ebm_zoo.data import load_array

    digits = load_array("digits", image_size=m.image_size, limit=n + 20)
    m.fit_ood(digits[:n])
    return digits[n:]


def test_ood_fit_survives_save_load_and_rejects_bad_files(tmp_path):
    m = ebm_zoo.load("short_run_digits")
    with pytest.raises(EbmZooError, match="no OOD fit to save"):
        m.save_ood_fit(tmp_path / "f.npz")
    held = _digits_fit(m)
    want = np.asarray(m.ood_score(held, method="typicality", seed=3))
    path = m.save_ood_fit(tmp_path / "f.npz")
    m2 = ebm_zoo.load("short_run_digits")
    assert m2.ood_fit is None
    assert m2.load_ood_fit(path)["num_reference"] == 60
    np.testing.assert_array_equal(np.asarray(m2.ood_score(held, method="typicality", seed=3)), want)
    with pytest.raises(EbmZooError, match="is a directory"):
        m.save_ood_fit(tmp_path)
    # Bad files: one clear error each, and the model keeps its fit.
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "short.npz", mean=np.zeros(3))
    good = dict(np.load(path))
    np.savez(tmp_path / "shape.npz", **{**good, "centres": np.zeros((60, 2))})
    np.savez(tmp_path / "nan.npz", **{**good, "bandwidth": np.float64(np.nan)})
    np.savez(tmp_path / "other.npz", **{**good, "perturbation": np.float64(0.3)})
    for name, match in [
        ("missing.npz", "does not exist"),
        ("junk.npz", "not a readable .npz"),
        ("short.npz", "lacks whiten, centres"),
        ("shape.npz", r"centres \(60, 2\)"),
        ("nan.npz", "non-finite values or a bandwidth"),
        ("other.npz", "perturbation 0.3"),
    ]:
        with pytest.raises(EbmZooError, match=match):
            m2.load_ood_fit(tmp_path / name)
    np.testing.assert_array_equal(np.asarray(m2.ood_score(held, method="typicality", seed=3)), want)


def test_preset_directory_ships_the_ood_fit_checked_by_sha256(tmp_path, monkeypatch):
    """attach_ood_fit adds ood_fit.npz to a preset (sha256-listed); ebm_zoo.load restores it;
    a changed or unlisted fit file is refused; save_preset writes the fit too."""
    import json
    import shutil

    from ebm_zoo.presets import files, loader

    d = tmp_path / "p"
    shutil.copytree(loader.package_dir("short_run_digits"), d)
    m = ebm_zoo.load(str(d))
    assert m.ood_fit is None
    held = _digits_fit(m)
    want = np.asarray(m.ood_score(held, method="typicality"))
    other = ebm_zoo.load(str(d), weights=False)
    other._ood_fit = m.ood_fit
    with pytest.raises(EbmZooError, match="weights differ"):
        files.attach_ood_fit(d, other)
    assert not (d / files.OOD_FIT_FILE).exists()
    meta = files.attach_ood_fit(d, m, dataset="digits", split="train")
    assert meta["ood_fit"] == {"num_reference": 60, "seed": 0, "dataset": "digits", "split": "train"}
    assert files.OOD_FIT_FILE in meta["files"] and not list(tmp_path.glob(".*tmp*"))
    loaded = ebm_zoo.load(str(d))
    np.testing.assert_array_equal(np.asarray(loaded.ood_score(held, method="typicality")), want)
    assert ebm_zoo.load(str(d), weights=False).ood_fit is None  # the fit belongs to the weights
    monkeypatch.setenv("EBM_ZOO_HOME", str(tmp_path / "home"))  # a file:// URI is copied with its fit
    np.testing.assert_array_equal(
        np.asarray(ebm_zoo.load(d.as_uri()).ood_score(held, method="typicality")), want
    )
    # save_preset keeps the fit of a model that has one.
    out = files.save_preset(loaded, tmp_path / "q", name="q")
    assert json.loads((out / "metadata.json").read_text())["ood_fit"]["num_reference"] == 60
    np.testing.assert_array_equal(
        np.asarray(ebm_zoo.load(str(out)).ood_score(held, method="typicality")), want
    )
    # A changed fit file fails its checksum; an unlisted one is refused; a listed missing one too.
    fit_file = d / files.OOD_FIT_FILE
    data = bytearray(fit_file.read_bytes())
    data[-30] ^= 1
    fit_file.write_bytes(bytes(data))
    with pytest.raises(EbmZooError, match="sha256 mismatch for .*ood_fit.npz"):
        ebm_zoo.load(str(d))
    fit_file.unlink()
    with pytest.raises(EbmZooError, match="ood_fit.npz is missing"):
        ebm_zoo.load(str(d))
    shutil.copy(out / files.OOD_FIT_FILE, tmp_path / "x.npz")
    shutil.copytree(loader.package_dir("short_run_digits"), tmp_path / "r")
    shutil.copy(tmp_path / "x.npz", tmp_path / "r" / files.OOD_FIT_FILE)
    with pytest.raises(EbmZooError, match="not listed"):
        ebm_zoo.load(str(tmp_path / "r"))
