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
    z = (st - m._ood_fit["mean"]) @ m._ood_fit["whiten"].T
    np.testing.assert_allclose(
        held_out[:10], kde_neg_log_density(z, m._ood_fit["centres"], fit["bandwidth"]), rtol=1e-5
    )
    # Whitening: the fitted centres have identity covariance.
    np.testing.assert_allclose(np.cov(m._ood_fit["centres"].T), np.eye(3), atol=1e-6)
