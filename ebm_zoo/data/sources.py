"""The two kinds of data source the pipeline in `ebm_zoo.data.pipeline` knows how to batch.

* `IndexedSource`: `num_examples` examples addressed by an int64 index (in-memory arrays, image
  folders, texture/photo crops). Shuffling is a stateless permutation per epoch, so resuming after
  k batches costs nothing and does not depend on the global TF seed.
* `StreamSource`: a finite `tf.data.Dataset` read in order (TFDS); shuffled with a seeded buffer.

Both map an element to one float32 [image_size, image_size, channels] image in [0, 1].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ebm_zoo.data import transforms
from ebm_zoo.utils.checks import EbmZooError

# Deterministic 90/10 split of every finite built-in set and image folder: example i (in the
# source's fixed order) is in "test" iff i % 10 == 9.
TEST_EVERY = 10
SPLITS = ("train", "test", "all")


@dataclasses.dataclass(frozen=True)
class IndexedSource:
    """Examples addressed by index.

    Attributes:
      num_examples: size of the set.
      load: traceable fn(int64 scalar index) -> float32 [image_size, image_size, channels] in [0, 1].
      image_size: output height == width.
      channels: output channel count (the native one, before any `channels=` conversion).
      unbounded: if True, `load` accepts any index >= 0 (each gives a fresh random crop), so a
        repeated dataset may be an endless stream of new examples instead of epochs of
        `num_examples`.
    """

    num_examples: int
    load: Callable[[tf.Tensor], tf.Tensor]
    image_size: int
    channels: int
    unbounded: bool = False


@dataclasses.dataclass(frozen=True)
class StreamSource:
    """A finite dataset read in a fixed order.

    Attributes:
      elements: a `tf.data.Dataset` of raw elements (e.g. TFDS example dicts with encoded images).
      preprocess: traceable fn(element) -> float32 [image_size, image_size, channels] in [0, 1].
      image_size, channels: as for IndexedSource.
      num_examples: size if known (used for the shuffle buffer and for error messages).
      shuffle_buffer: maximum shuffle buffer (examples held in memory, still encoded).
    """

    elements: tf.data.Dataset
    preprocess: Callable[..., tf.Tensor]
    image_size: int
    channels: int
    num_examples: int | None = None
    shuffle_buffer: int = 10000


def split_indices(n: int, split: str, name: str) -> np.ndarray:
    """Indices of `split` ("train" | "test" | "all") among n examples: test = every 10th (i % 10 == 9)."""
    if split not in SPLITS:
        raise EbmZooError(
            f"Unknown split {split!r} for dataset {name!r}; built-in sets and folders have the "
            f"splits {', '.join(SPLITS)} (test = every 10th example, i % 10 == 9; train = the rest)."
        )
    idx = np.arange(n)
    if split == "all":
        return idx
    in_test = idx % TEST_EVERY == TEST_EVERY - 1
    return idx[in_test] if split == "test" else idx[~in_test]


def array_source(
    images: np.ndarray, max_value: float, image_size: int, resize: Callable | None = None
) -> IndexedSource:
    """An IndexedSource over an in-memory [N, H, W, C] array with values in [0, max_value].

    Args:
      images: uint8 or float array [N, H, W, C].
      max_value: the value that maps to 1.0 (255 for uint8 images, 16 for sklearn digits).
      image_size: output size; images are resized (bilinear, anti-aliased) when it differs.
      resize: optional fn(float image, image_size) replacing the plain resize.
    """
    n, h, w, c = images.shape
    if n == 0:
        raise EbmZooError("The selected split is empty.")
    table = tf.constant(images)
    resize = resize or transforms.resize

    def load(index):
        image = transforms.to_float(tf.gather(table, index), max_value)
        image = tf.ensure_shape(image, [h, w, c])
        return resize(image, image_size)

    return IndexedSource(num_examples=n, load=load, image_size=image_size, channels=c)
