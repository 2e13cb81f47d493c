"""`load_dataset` / `load_array` / `list_datasets` / `describe`: the one entry point for images.

Every dataset yields float32 NHWC batches in [0, 1].

Order and resumption. With a fixed `seed` the sequence of batches is deterministic. Epoch e of a
finite set visits its examples in a fresh pseudo-random order keyed on (seed, e) (the
`reshuffle_each_iteration=True` behaviour); TFDS sets use a seeded shuffle buffer and seeded file
shuffling. Batches are cut from the repeated stream of examples (an epoch boundary can fall
inside a batch), so `skip_batches=k` is the stream after k * batch_size examples: exactly the
batches that follow the first k of the uninterrupted run. For built-in sets and folders the skip is
O(1) (index arithmetic); for TFDS sets it reads, without decoding, k * batch_size records.
The order of built-in sets and folders depends on `seed` only (stateless ops); the TFDS shuffle
buffer uses TF's op-level seed, so it also depends on a global `tf.random.set_seed` if one is set
(the same on resume when the run sets it the same way).
"""

from __future__ import annotations

import difflib
import os

import numpy as np
import tensorflow as tf

from ebm_zoo.data import builtin, folder, sources, tfds_source, transforms
from ebm_zoo.utils.checks import EbmZooError

_SHUFFLE_SALT = 7919


def list_datasets() -> dict[str, str]:
    """Built-in offline data sets: name -> one-line description (size, resolution, package).

    Also accepted by `load_dataset` but not listed: any prepared TFDS image dataset name
    (`cifar10`, `celeb_a`, `lsun/bedroom`, `mnist`, ...) and `folder:/path/to/images`.
    """
    return {name: spec.description for name, spec in builtin.BUILTIN.items()}


def describe(name: str, data_dir: str | None = None) -> dict:
    """Facts about a data set name, without loading its images.

    Returns a dict with: name, kind ("builtin" | "tfds" | "folder"), description, package,
    native_size (H, W) or None if the images differ, channels, default_image_size, num_examples
    (per split; for crop sets the crops per epoch when not repeating (repeating gives an endless
    stream of fresh crops); for TFDS only when prepared), options (accepted `**options` with
    defaults), and for crop sets source_images (the skimage.data images cropped from).
    """
    _check_name(name)
    if name.startswith(folder.PREFIX):
        paths = folder.list_images(os.path.expanduser(name[len(folder.PREFIX) :]))
        counts = {s: len(sources.split_indices(len(paths), s, name)) for s in sources.SPLITS}
        return {
            "name": name,
            "kind": "folder",
            "description": f"{len(paths)} image files under {name[len(folder.PREFIX) :]}",
            "package": None,
            "native_size": None,
            "channels": None,
            "default_image_size": folder.DEFAULT_IMAGE_SIZE,
            "num_examples": counts,
            "options": dict(folder.OPTIONS),
        }
    if name in builtin.BUILTIN:
        spec = builtin.BUILTIN[name]
        native = spec.native_size
        if native is None and len(spec.source_images) == 1:
            native = tuple(builtin._skimage_image(spec.source_images[0]).shape[:2])
        extra = {"source_images": spec.source_images} if spec.source_images else {}
        return {
            "name": name,
            "kind": "builtin",
            "description": spec.description,
            "package": spec.package,
            "native_size": native,
            "channels": spec.channels,
            "default_image_size": spec.default_image_size,
            "num_examples": dict(spec.num_examples),
            "options": dict(spec.options),
            **extra,
        }
    try:
        info = tfds_source.native_info(name, data_dir)
    except tfds_source.NotTfdsName:
        raise _unknown_name(name) from None
    h, w = info["native_size"]
    base = tfds_source.base_name(name)
    default = tfds_source.DEFAULT_IMAGE_SIZE.get(base) or (h if h is not None and h == w else 64)
    return {
        "name": name,
        "kind": "tfds",
        "description": f"TFDS {name} ({'prepared' if info['prepared'] else 'NOT prepared'} at "
        f"{info['builder'].data_path})",
        "package": "tensorflow-datasets",
        "native_size": (h, w) if h is not None else None,
        "channels": info["channels"],
        "default_image_size": default,
        "num_examples": info["splits"],
        "options": dict(tfds_source.OPTIONS),
    }


def load_dataset(
    name: str,
    image_size: int | None = None,
    split: str = "train",
    batch_size: int = 64,
    *,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int = 0,
    channels: int | None = None,
    drop_remainder: bool = True,
    limit: int | None = None,
    data_dir: str | None = None,
    skip_batches: int = 0,
    **options,
) -> tf.data.Dataset:
    """A batched, prefetched `tf.data.Dataset` of float32 [batch, S, S, C] images in [0, 1].

    Args:
      name: a built-in set (see `list_datasets()`), a TFDS image dataset name (`cifar10`,
        `celeb_a`, `lsun/bedroom`, `mnist`, ...; must already be prepared on disk), or
        `folder:/path/to/images`.
      image_size: output height == width S; None = the set's default (`describe(name)`).
      split: "train" | "test" | "all" for built-in sets and folders (test = every 10th example;
        mnist_local uses the official split); any TFDS split or slice for TFDS names.
      batch_size: examples per batch.
      shuffle: visit examples in a seeded random order, reshuffled every epoch.
      repeat: repeat forever (epochs are concatenated before batching).
      seed: the seed of the order (and of the crop positions of crop sets).
      channels: 1 or 3 to convert (RGB -> luma, gray -> replicated); None keeps the native count.
      drop_remainder: drop a last, smaller batch (only matters when repeat=False).
      limit: use only the first `limit` examples of the split (for crop sets: a fixed set of
        `limit` crops instead of an endless stream).
      data_dir: TFDS data directory (default `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
      skip_batches: start after this many batches of the uninterrupted run (for resuming).
      **options: per-dataset options, listed by `describe(name)["options"]`: crop sets take
        `crop` (False = the whole image(s) resized), `crop_size` (pixels cut before resizing to
        S, default S), `num_crops` (crops per epoch when not repeating, default 1024 train / 256
        test); TFDS sets take `image_key`, `crop_size` (celeb_a, default 108), `shuffle_buffer`;
        folders take `validate` (decode every file up front, default True).

    Raises:
      EbmZooError: unknown name, option or split; TFDS set not prepared; bad folder or file.
    """
    _check_args(image_size, batch_size, channels, limit, skip_batches, seed)
    source = _make_source(name, image_size, split, data_dir, shuffle, seed, limit, options)
    if not repeat and drop_remainder:
        n = _finite_size(source, limit)
        if n is not None and n < batch_size:
            raise EbmZooError(
                f"{name!r} split {split!r} has {n} examples, fewer than batch_size={batch_size}, so "
                "repeat=False with drop_remainder=True would yield no batch; lower batch_size, or pass "
                "drop_remainder=False or repeat=True."
            )
    start = skip_batches * batch_size
    if isinstance(source, sources.IndexedSource):
        images = _indexed_images(source, shuffle=shuffle, repeat=repeat, seed=seed, limit=limit, start=start)
    else:
        images = _stream_images(source, shuffle=shuffle, repeat=repeat, seed=seed, limit=limit, start=start)
    out_channels = channels or source.channels
    size = source.image_size

    def finish(image):
        if out_channels != source.channels:
            image = transforms.set_channels(image, out_channels)
        return tf.ensure_shape(tf.cast(image, tf.float32), [size, size, out_channels])

    images = images.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return images.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def load_array(
    name: str,
    image_size: int | None = None,
    split: str = "train",
    limit: int | None = None,
    *,
    channels: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    **options,
) -> np.ndarray:
    """All images of a split (or the first `limit`) as one float32 [N, S, S, C] array in [0, 1].

    The order is the split's natural order (no shuffling). Crop sets give `num_crops` crops
    (or `limit`) from the seeded positions. Arguments as for `load_dataset`. Mind the memory for
    large TFDS splits (N * S * S * C * 4 bytes): pass `limit` for reference sets.
    """
    ds = load_dataset(
        name,
        image_size,
        split,
        batch_size=256,
        shuffle=False,
        repeat=False,
        seed=seed,
        channels=channels,
        drop_remainder=False,
        limit=limit,
        data_dir=data_dir,
        **options,
    )
    batches = [b.numpy() for b in ds]
    if not batches:
        raise EbmZooError(f"{name!r} split {split!r} is empty.")
    return np.concatenate(batches, axis=0)


# ----------------------------------------------------------------------------------------------


def _check_args(image_size, batch_size, channels, limit, skip_batches, seed) -> None:
    def is_int(v):
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if image_size is not None and (not is_int(image_size) or image_size <= 0):
        raise EbmZooError(
            f"`image_size` must be a positive int (height == width) or None, got {image_size!r}."
        )
    if not is_int(batch_size) or batch_size <= 0:
        raise EbmZooError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if channels not in (None, 1, 3):
        raise EbmZooError(f"`channels` must be 1 (gray), 3 (RGB) or None (native), got {channels!r}.")
    if limit is not None and (not is_int(limit) or limit <= 0):
        raise EbmZooError(f"`limit` must be a positive int or None, got {limit!r}.")
    if not is_int(skip_batches) or skip_batches < 0:
        raise EbmZooError(f"`skip_batches` must be an int >= 0, got {skip_batches!r}.")
    if not is_int(seed):
        raise EbmZooError(f"`seed` must be an int, got {seed!r}.")
    if not -(2**31) <= seed < 2**31:
        raise EbmZooError(f"`seed` of a dataset must fit in int32 ([-2**31, 2**31)), got {seed}.")


def _check_options(name: str, options: dict, accepted: dict) -> None:
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"
        raise EbmZooError(
            f"Unknown option(s) {', '.join(unknown)} for dataset {name!r}; accepted options: {valid}."
        )


def _unknown_name(name: str) -> EbmZooError:
    names = list(builtin.BUILTIN)
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return EbmZooError(
        f"Unknown dataset {name!r}.{hint} Valid names: built-in offline sets {', '.join(names)}; "
        "any TFDS image dataset name prepared on disk, e.g. 'cifar10', 'celeb_a', 'lsun/bedroom', "
        "'mnist' (TFDS form 'name', 'name/config' or 'name:version'); or 'folder:/path/to/images' "
        "for your own images."
    )


def _check_name(name) -> None:
    if not isinstance(name, str) or not name:
        raise EbmZooError(f"`name` must be a non-empty dataset name string, got {name!r}.")


def _make_source(name, image_size, split, data_dir, shuffle, seed, limit, options):
    _check_name(name)
    if name.startswith(folder.PREFIX):
        _check_options(name, options, folder.OPTIONS)
        return folder.make_source(name, split, image_size, options.get("validate", True), limit)
    if name in builtin.BUILTIN:
        spec = builtin.BUILTIN[name]
        _check_options(name, options, spec.options)
        size = spec.default_image_size if image_size is None else image_size
        return spec.make(split, size, seed, **options)
    _check_options(name, options, tfds_source.OPTIONS)
    buffer = options.get("shuffle_buffer", tfds_source.OPTIONS["shuffle_buffer"])
    if not isinstance(buffer, int) or buffer <= 0:
        raise EbmZooError(f"Option shuffle_buffer must be a positive int, got {buffer!r}.")
    try:
        return tfds_source.make_source(
            name,
            split,
            image_size,
            data_dir,
            shuffle_files=shuffle and limit is None,
            seed=seed,
            **options,
        )
    except tfds_source.NotTfdsName:
        raise _unknown_name(name) from None


def _finite_size(source, limit) -> int | None:
    """Examples per epoch: the first `limit` of the split, or for crop sets a set of `limit` crops."""
    n = source.num_examples
    if limit is None:
        return n
    if n is None or getattr(source, "unbounded", False):
        return limit
    return min(n, limit)


def _indexed_images(source, *, shuffle, repeat, seed, limit, start) -> tf.data.Dataset:
    """Images of an IndexedSource starting at position `start` of the (repeated) example stream."""
    if source.unbounded and repeat and limit is None:
        # Endless stream of fresh examples (random crops): example i is load(i).
        return tf.data.Dataset.counter(start).map(
            source.load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    n = _finite_size(source, limit)
    positions = tf.data.Dataset.counter(start) if repeat else tf.data.Dataset.range(start, n)
    base_seed = tf.constant([seed, _SHUFFLE_SALT], tf.int64)

    def index_of(position):
        if not shuffle:
            return position % n
        epoch, offset = position // n, position % n
        epoch_seed = tf.random.experimental.stateless_fold_in(base_seed, epoch)
        return tf.random.experimental.index_shuffle(offset, epoch_seed, max_index=n - 1)

    return positions.map(
        lambda p: source.load(index_of(p)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def _stream_images(source, *, shuffle, repeat, seed, limit, start) -> tf.data.Dataset:
    """Images of a StreamSource (TFDS) starting at position `start` of the (repeated) stream."""
    ds = source.elements
    n = source.num_examples
    if limit is not None:
        ds = ds.take(limit)
        n = limit if n is None else min(n, limit)
    if shuffle:
        buffer = min(n, source.shuffle_buffer) if n else source.shuffle_buffer
        ds = ds.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if start:
        ds = ds.skip(start)
    return ds.map(source.preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
