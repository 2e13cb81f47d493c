"""Tests of ebm_zoo.metrics: distances on synthetic activations, SWD, Gram, the shipped extractor."""

import json

import numpy as np
import pytest
import skimage.data
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ebm_zoo import metrics
from ebm_zoo.metrics import features, inception, swd
from ebm_zoo.metrics.extractor_training import build_dataset, sha256
from ebm_zoo.utils.checks import EbmZooError

# Measured held-out accuracy of the shipped weights: 0.909 overall, 0.979 on digits (see the JSON).
MIN_HELD_OUT_ACCURACY = 0.88
MIN_DIGIT_ACCURACY = 0.95


def _random_orthogonal(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _crops(name, n, size, rng, rows=(0, 512)):
    image = getattr(skimage.data, name)().astype(np.float32) / 255.0
    ys = rng.integers(rows[0], rows[1] - size + 1, n)
    xs = rng.integers(0, image.shape[1] - size + 1, n)
    return np.stack([image[y : y + size, x : x + size] for y, x in zip(ys, xs)])[..., None]


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images.astype(np.float32) / 16.0)[..., None], data.target


# ---------------------------------------------------------------- Fréchet distance


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_identical_sets_is_zero(method):
    x = np.random.default_rng(0).standard_normal((300, 16))
    assert metrics.frechet_distance(x, x, method=method) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_from_statistics_matches_closed_form(method):
    # Commuting covariances Q diag(a) Q^T, Q diag(b) Q^T: tr((S1 S2)^1/2) = sum sqrt(a b).
    rng = np.random.default_rng(1)
    d = 6
    q = _random_orthogonal(d, rng)
    a, b = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = metrics.frechet_distance_from_statistics(
        mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T, method=method
    )
    assert got == pytest.approx(expected, rel=1e-8)


def test_frechet_of_two_gaussian_samples_matches_closed_form():
    rng = np.random.default_rng(2)
    var2 = np.array([1.0, 2.0, 3.0, 0.5])
    shift = np.array([1.0, -0.5, 0.0, 0.0])
    x = rng.standard_normal((20000, 4))
    y = rng.standard_normal((20000, 4)) * np.sqrt(var2) + shift
    expected = np.sum(shift**2) + np.sum((1.0 - np.sqrt(var2)) ** 2)
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, abs=0.1)


def test_frechet_is_symmetric_and_handles_singular_covariances():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, 64)), rng.standard_normal((50, 64)) + 0.2  # N < D: singular
    assert metrics.frechet_distance(x, y) == pytest.approx(metrics.frechet_distance(y, x), rel=1e-9)
    assert metrics.frechet_distance(x, y) == pytest.approx(
        metrics.frechet_distance(x, y, method="sqrtm"), rel=1e-4
    )


# ---------------------------------------------------------------- KID / MMD / IS


def test_kid_is_unbiased_and_detects_a_shift():
    rng = np.random.default_rng(4)
    # 40 independent small-sample estimates for the same distribution average to ~0 (a biased
    # V-statistic would average ≈ +0.27 here), and a mean shift gives a clearly positive value.
    same = [
        metrics.kernel_inception_distance(
            rng.standard_normal((50, 16)), rng.standard_normal((50, 16)), num_subsets=1
        ).mean
        for _ in range(40)
    ]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    kid_same = metrics.kernel_inception_distance(x, y, num_subsets=20, subset_size=200)
    kid_shift = metrics.kernel_inception_distance(x, y + 0.5, num_subsets=20, subset_size=200)
    assert abs(kid_same.mean) < 0.02
    assert kid_shift.mean > 0.1 > 10 * abs(kid_same.mean)
    assert kid_shift.std > 0
    again = metrics.kernel_inception_distance(x, y + 0.5, num_subsets=20, subset_size=200)
    assert again == kid_shift  # deterministic given the seed


def test_kernel_mmd_same_vs_shifted():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((300, 8)), rng.standard_normal((300, 8))
    assert abs(metrics.kernel_mmd(x, y)) < 0.01
    assert metrics.kernel_mmd(x, y + 1.0) > 0.1
    assert metrics.kernel_mmd(x, y, unbiased=False) >= 0
    assert metrics.kernel_mmd(x, y + 1.0, bandwidth=[0.5, 2.0]) > metrics.kernel_mmd(
        x, y, bandwidth=[0.5, 2.0]
    )


def test_inception_score_bounds():
    k = 10
    uniform = np.full((100, k), 1.0 / k)
    assert metrics.inception_score(uniform).mean == pytest.approx(1.0)
    one_hot = np.eye(k)[np.arange(200) % k]  # every split of 20 holds each class twice
    score = metrics.inception_score(one_hot, splits=10)
    assert score.mean == pytest.approx(k)
    assert score.std == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(EbmZooError, match="softmax"):
        metrics.inception_score(np.random.default_rng(0).standard_normal((20, k)))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 3, 2)), "2-D activations"),
        (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), "NaN"),
        (np.zeros((1, 5)), "at least 2 rows"),
    ],
)
def test_bad_activations_raise(bad, match):
    good = np.random.default_rng(0).standard_normal((10, bad.shape[-1]))
    with pytest.raises(EbmZooError, match=match):
        metrics.frechet_distance(bad, good)
    with pytest.raises(EbmZooError, match=match):
        metrics.kernel_inception_distance(good, bad)


def test_feature_dimension_mismatch_raises():
    rng = np.random.default_rng(0)
    with pytest.raises(EbmZooError, match="same extractor"):
        metrics.kernel_mmd(rng.standard_normal((10, 4)), rng.standard_normal((10, 5)))


# ---------------------------------------------------------------- SWD


@pytest.fixture(scope="module")
def bricks():
    rng = np.random.default_rng(0)
    return _crops("brick", 160, 32, rng, (0, 256)), _crops("brick", 160, 32, rng, (256, 512))


def test_pyramid_levels_and_reconstruction():
    assert swd.num_pyramid_levels(8, 8) == 1
    assert swd.num_pyramid_levels(32, 32) == 3
    assert swd.num_pyramid_levels(64, 64) == 4
    x = np.random.default_rng(0).random((2, 13, 17, 3)).astype(np.float32)
    pyramid = metrics.laplacian_pyramid(x, 3)
    assert [p.shape[1:3] for p in pyramid] == [(13, 17), (7, 9), (4, 5)]
    rebuilt = pyramid[-1]
    for band in pyramid[-2::-1]:
        rebuilt = swd._upsample(rebuilt, band.shape[1:3]) + band
    np.testing.assert_allclose(rebuilt, x, atol=1e-5)


def test_swd_identical_is_zero_and_order_invariant(bricks):
    a, b = bricks
    assert metrics.sliced_wasserstein_distance(a, a).mean == 0.0
    perm = np.random.default_rng(1).permutation(len(a))
    r1 = metrics.sliced_wasserstein_distance(a, b)
    r2 = metrics.sliced_wasserstein_distance(a[perm], b[::-1])
    np.testing.assert_allclose(r1.per_level, r2.per_level, rtol=1e-4, atol=1e-3)
    assert r1.resolutions == ((32, 32), (16, 16), (8, 8))
    assert r1.mean > 0


def test_swd_grows_with_noise_and_blur(bricks):
    from scipy.ndimage import gaussian_filter

    a, b = bricks
    rng = np.random.default_rng(2)
    noisy = [
        metrics.sliced_wasserstein_distance(
            a, np.clip(b + s * rng.standard_normal(b.shape), 0, 1).astype(np.float32)
        ).mean
        for s in (0.0, 0.05, 0.1, 0.2)
    ]
    blurred = [
        metrics.sliced_wasserstein_distance(a, gaussian_filter(b, sigma=(0, s, s, 0)) if s else b).mean
        for s in (0.0, 0.7, 1.5, 3.0)
    ]
    assert np.all(np.diff(noisy) > 0), noisy
    assert np.all(np.diff(blurred) > 0), blurred
    assert noisy[-1] > 2 * noisy[0]


def test_swd_gray_rgb_small_and_deterministic(digits):
    images, _ = digits
    r = metrics.sliced_wasserstein_distance(images[:300], images[300:700], seed=3)
    assert r.resolutions == ((8, 8),)
    assert r == metrics.sliced_wasserstein_distance(images[:300], images[300:700], seed=3)
    rgb = np.random.default_rng(0).random((20, 64, 64, 3)).astype(np.float32)
    r_rgb = metrics.sliced_wasserstein_distance(rgb, rgb[:10] * 0.5, normalization="joint")
    assert len(r_rgb.per_level) == 4 and r_rgb.mean > 0
    assert set(r_rgb.as_dict()) == {"swd", "swd_64", "swd_32", "swd_16", "swd_8"}


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((8, 8, 1), np.float32), "4-D NHWC"),
        (np.full((2, 8, 8, 1), np.nan, np.float32), "NaN"),
        (np.full((2, 8, 8, 1), 255.0, np.float32), "divide by 255"),
        (np.zeros((2, 8, 8, 1), np.uint8), "uint8"),
        (np.zeros((2, 16, 16, 1), np.float32), "same height"),
    ],
)
def test_swd_bad_images_raise(bad, match):
    with pytest.raises(EbmZooError, match=match):
        metrics.sliced_wasserstein_distance(bad, np.zeros((2, 8, 8, 1), np.float32))


# ---------------------------------------------------------------- Gram / texture


@pytest.mark.parametrize("mode", ["classifier", "pixels"])
def test_gram_distance_same_vs_other_texture(mode):
    rng = np.random.default_rng(6)
    brick = _crops("brick", 8, 64, rng, (0, 256))
    brick_other = _crops("brick", 4, 96, rng, (256, 512))  # other size, other rows
    grass = _crops("grass", 8, 64, rng)
    assert metrics.gram_distance(brick, brick, features=mode).mean == pytest.approx(0.0, abs=1e-9)
    near = metrics.gram_distance(brick_other, brick, features=mode).mean
    far = metrics.gram_distance(grass, brick, features=mode).mean
    assert near < 0.5 * far, (near, far)
    mixed = metrics.gram_distance([brick[0], brick_other[0]], brick, features=mode)
    assert len(mixed.per_layer) == len(mixed.layers) and mixed.mean >= 0


def test_gram_pixels_works_for_tiny_images(digits):
    images, _ = digits
    result = metrics.gram_distance(images[:50], images[50:100], features="pixels")
    assert result.layers == ("pixels_level0", "pixels_level1")
    with pytest.raises(EbmZooError, match="at least 8x8"):
        metrics.gram_distance(images[:5, ::2, ::2], images[5:10, ::2, ::2], features="classifier")


# ---------------------------------------------------------------- shipped feature extractor


def test_extractor_weights_info_and_accuracy():
    info = metrics.extractor_info()
    assert info["held_out_accuracy"] >= MIN_HELD_OUT_ACCURACY
    assert info["classes"] == list(metrics.CLASS_NAMES)
    assert features.WEIGHTS_PATH.stat().st_size < 2 * 1024 * 1024
    assert info["weights_sha256"] == sha256(features.WEIGHTS_PATH)


def test_extractor_accuracy_on_fresh_held_out_draw():
    # Held-out crops come from image rows never used for training, whatever the draw; the digit
    # and LFW held-out splits are the training script's own (seed 0).
    data = build_dataset(seed=0, per_class_train=1, per_class_test=60)
    correct = metrics.class_probabilities(data["x_test"]).argmax(1) == data["y_test"]
    assert correct.mean() >= MIN_HELD_OUT_ACCURACY, correct.mean()


def test_extractor_shapes_and_digit_accuracy(digits):
    images, labels = digits
    _, x_test, _, y_test = train_test_split(images, labels, test_size=0.2, random_state=0, stratify=labels)
    feats = metrics.extract_features(x_test[:7], batch_size=3)
    assert feats.shape == (7, features.FEATURE_DIM) and feats.min() >= 0
    probs = metrics.class_probabilities(x_test)
    assert probs.shape == (len(x_test), len(metrics.CLASS_NAMES))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    accuracy = np.mean(probs.argmax(1) == y_test)  # the digit classes are labels 0..9
    assert accuracy >= MIN_DIGIT_ACCURACY, accuracy


def test_extractor_separates_digits_from_textures(digits):
    images, _ = digits
    rng = np.random.default_rng(7)
    textures = np.concatenate([_crops(n, 100, 32, rng) for n in ("brick", "grass", "gravel")])
    f1, f2 = metrics.extract_features(images[:300]), metrics.extract_features(images[300:600])
    f_tex = metrics.extract_features(textures)
    assert 20 * metrics.frechet_distance(f1, f2) < metrics.frechet_distance(f1, f_tex)
    rgb_faces = np.repeat(np.asarray(skimage.data.lfw_subset(), np.float32)[:20, ..., None], 3, axis=-1)
    assert metrics.extract_features(rgb_faces).shape == (20, features.FEATURE_DIM)


def test_missing_weights_error_names_path_and_command(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(EbmZooError, match="train_feature_extractor.py") as err:
        metrics.load_feature_extractor(missing)
    assert str(missing) in str(err.value)


def test_extractor_rejects_bad_images():
    with pytest.raises(EbmZooError, match="4-D"):
        metrics.extract_features(np.zeros((8, 8), np.float32))
    with pytest.raises(EbmZooError, match="NaN"):
        metrics.extract_features(np.full((2, 8, 8, 1), np.nan, np.float32))
    with pytest.raises(EbmZooError, match="channels"):
        metrics.extract_features(np.zeros((2, 8, 8, 2), np.float32))


# ---------------------------------------------------------------- Inception (local file only)


def test_inception_missing_file_says_what_is_expected(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    with pytest.raises(EbmZooError, match="InceptionV3") as err:
        metrics.load_inception()
    assert inception.ENV_VAR in str(err.value)
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "missing.keras"))
    with pytest.raises(EbmZooError, match="missing.keras"):
        metrics.inception_activations(np.zeros((1, 8, 8, 1), np.float32))


def test_inception_loads_a_local_keras_file(tmp_path):
    import keras

    # A stand-in with Inception's interface (299x299x3 in [-1, 1] -> 4-D map, averaged to [N, 5]).
    inputs = keras.Input((299, 299, 3))
    outputs = keras.layers.Conv2D(5, 3, strides=8)(inputs)
    path = tmp_path / "standin.keras"
    keras.Model(inputs, outputs).save(path)
    acts = metrics.inception_activations(
        np.random.default_rng(0).random((3, 16, 16, 1)), path=path, batch_size=2
    )
    assert acts.shape == (3, 5) and np.all(np.isfinite(acts))


def test_inception_loads_a_local_savedmodel(tmp_path):
    import tensorflow as tf

    class StandIn(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones((3, 4)))

        @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
        def __call__(self, x):
            return {"pool": tf.reduce_mean(x, axis=(1, 2)) @ self.w}

    module = StandIn()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    acts = metrics.inception_activations(np.ones((2, 10, 10, 3), np.float32), path=tmp_path / "sm")
    np.testing.assert_allclose(acts, 3.0, rtol=1e-5)  # images of 1 -> 1 in [-1, 1] -> 3 per column
    with pytest.raises(EbmZooError, match="not a SavedModel"):
        metrics.load_inception(tmp_path)


# ---------------------------------------------------------------- evaluate_samples


def test_evaluate_samples(digits):
    images, _ = digits
    rng = np.random.default_rng(8)
    noise = rng.random((200, 8, 8, 1)).astype(np.float32)
    good = metrics.evaluate_samples(
        images[:200], images[200:400], metrics=("swd", "fd_small", "kid_small", "gram_pixels")
    )
    bad = metrics.evaluate_samples(
        noise, images[200:400], metrics="swd,fd_small,kid_small,gram_pixels,is_small,mmd_small"
    )
    assert {"swd", "swd_8", "fd_small", "kid_small", "kid_small_std", "gram_pixels"} <= set(good)
    assert all(np.isfinite(v) for v in bad.values())
    for key in ("swd", "fd_small", "kid_small", "gram_pixels"):
        assert bad[key] > good[key], key
    json.dumps(bad)  # plain floats
    with pytest.raises(EbmZooError, match="Unknown metric"):
        metrics.evaluate_samples(noise, noise, metrics=("fidd",))
