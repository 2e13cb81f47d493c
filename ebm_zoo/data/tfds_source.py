"""TFDS image data sets (`cifar10`, `celeb_a`, `lsun/<category>`, `mnist`, ... any TFDS name whose
examples have an image feature).

Nothing is ever downloaded: the builder must already be prepared on disk (under `data_dir`,
`$TFDS_DATA_DIR` or `~/tensorflow_datasets`). Otherwise `EbmZooError` says where it looked and
how to prepare the data on a connected machine, in well under a second (an offline `tfds.load`
would retry downloads for minutes).

Preprocessing to `image_size` (float32 [0, 1]):
  * `celeb_a`: centre crop 108×108 of the 218×178 aligned faces, then resize (the usual 64×64
    CelebA setting); option `crop_size` changes the 108.
  * square images (cifar10, mnist, ...): plain resize when the size differs.
  * other shapes (lsun, ...): resize the shorter side to `image_size`, then centre crop.
"""

from __future__ import annotations

import os
import re

import tensorflow as tf

from ebm_zoo.data import sources, transforms
from ebm_zoo.utils.checks import EbmZooError

OPTIONS = {"image_key": "image", "crop_size": None, "shuffle_buffer": 10000}
CELEBA_CROP = 108
DEFAULT_IMAGE_SIZE = {"celeb_a": 64, "lsun": 64}


class NotTfdsName(Exception):
    """`name` is not a registered TFDS data set (the caller reports the valid names)."""


def base_name(name: str) -> str:
    """'lsun/bedroom:3.1.0' -> 'lsun'."""
    return name.split(":")[0].split("/")[0]


def get_builder(name: str, data_dir: str | None):
    """`tfds.builder(name, data_dir=...)` without any network access; raises NotTfdsName."""
    import tensorflow_datasets as tfds

    if ":" in name and not re.fullmatch(r"[0-9.*]+", name.split(":", 1)[1]):
        # 'namespace:dataset' (huggingface:..., kaggle:...) resolves over the network.
        raise NotTfdsName(name)
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise NotTfdsName(name) from e
    except (ValueError, KeyError, AssertionError) as e:  # e.g. unknown config or version
        raise EbmZooError(f"TFDS could not make a builder for {name!r}: {e}") from e


def check_prepared(builder, name: str, data_dir: str | None) -> None:
    """Raises EbmZooError saying where TFDS looked and how to prepare `name` offline."""
    if builder.is_prepared():
        return
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets (default)"
    raise EbmZooError(
        f"TFDS dataset {name!r} is not prepared on this machine: looked for {builder.data_path} "
        f"(data_dir={where}) and found no dataset_info.json. ebm_zoo never downloads (this machine is "
        f"offline). On a machine with internet run `tfds build {name} --data_dir=DIR` (or `python -m "
        f"tensorflow_datasets.scripts.download_and_prepare --datasets={name} --data_dir=DIR`), then "
        f"copy DIR/{name.split(':')[0]} into ~/tensorflow_datasets, $TFDS_DATA_DIR, or the data_dir you "
        "pass to load_dataset. For offline work use a built-in set (see ebm_zoo.data.list_datasets())."
    )


def image_feature(builder, name: str, image_key: str):
    import tensorflow_datasets as tfds

    features = builder.info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    if image_key not in keys or not isinstance(features[image_key], tfds.features.Image):
        images = [k for k in keys if isinstance(features[k], tfds.features.Image)]
        raise EbmZooError(
            f"TFDS dataset {name!r} has no image feature {image_key!r} (features: {', '.join(keys)}); "
            + (
                f"pass image_key={images[0]!r}."
                if images
                else "it is not an image dataset; pick one with an `image` feature (e.g. cifar10)."
            )
        )
    return features[image_key]


def native_info(name: str, data_dir: str | None = None, image_key: str = "image") -> dict:
    """Shape, channels and split sizes from the builder's metadata (no data is read)."""
    builder = get_builder(name, data_dir)
    feature = image_feature(builder, name, image_key)
    h, w, c = feature.shape
    prepared = builder.is_prepared()
    splits = {k: v.num_examples for k, v in builder.info.splits.items()} if prepared else {}
    return {"native_size": (h, w), "channels": c, "prepared": prepared, "splits": splits, "builder": builder}


def make_source(
    name: str,
    split: str,
    image_size: int | None,
    data_dir: str | None,
    *,
    shuffle_files: bool,
    seed: int,
    image_key: str = "image",
    crop_size: int | None = None,
    shuffle_buffer: int = 10000,
) -> sources.StreamSource:
    import tensorflow_datasets as tfds

    builder = get_builder(name, data_dir)
    check_prepared(builder, name, data_dir)
    feature = image_feature(builder, name, image_key)
    try:
        num_examples = builder.info.splits[split].num_examples
    except (KeyError, ValueError, AssertionError) as e:
        raise EbmZooError(
            f"TFDS dataset {name!r} has no split {split!r}; available: "
            f"{', '.join(builder.info.splits.keys())} (slices such as 'train[:10%]' work too)."
        ) from e
    h, w, c = feature.shape
    native_channels = 1 if c == 1 else 3
    base = base_name(name)
    if image_size is None:
        image_size = DEFAULT_IMAGE_SIZE.get(base) or (h if h is not None and h == w else 64)
    if base == "celeb_a":
        crop = CELEBA_CROP if crop_size is None else int(crop_size)
        if h is not None and (crop > h or crop > w):
            raise EbmZooError(
                f"crop_size {crop} exceeds the {h}×{w} CelebA images; pass crop_size <= {min(h, w)}."
            )
    elif crop_size is not None:
        raise EbmZooError(f"Option crop_size applies to celeb_a only, not {name!r}; drop it.")
    dtype = tf.as_dtype(feature.np_dtype)
    max_value = {tf.uint8: 255.0, tf.uint16: 65535.0}.get(dtype, 1.0)

    read_config = tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True)
    elements = builder.as_dataset(
        split=split,
        shuffle_files=shuffle_files,
        decoders={image_key: tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    encoded = elements.element_spec[image_key].dtype == tf.string

    def preprocess(example):
        image = example[image_key]
        if encoded:
            image = tf.io.decode_image(image, channels=0, dtype=dtype, expand_animations=False)
            image = tf.ensure_shape(image, [h, w, c])
        image = transforms.to_float(transforms.normalize_channels(image), max_value)
        if base == "celeb_a":
            return transforms.resize(transforms.center_crop(image, crop, crop), image_size)
        if h is not None and h == w:
            return transforms.resize(image, image_size)
        return transforms.center_crop_resize(image, image_size)

    return sources.StreamSource(
        elements=elements,
        preprocess=preprocess,
        image_size=image_size,
        channels=native_channels,
        num_examples=num_examples,
        shuffle_buffer=shuffle_buffer,
    )
