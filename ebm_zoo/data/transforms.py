"""Per-image transforms shared by every data source (traceable inside `tf.data.Dataset.map`).

All functions take and return one HWC image. "float" images are float32 in [0, 1].
"""

from __future__ import annotations

import tensorflow as tf


def to_float(image: tf.Tensor, max_value: float = 255.0) -> tf.Tensor:
    """uint8 (or any numeric) [H, W, C] in [0, max_value] -> float32 [H, W, C] in [0, 1]."""
    return tf.cast(image, tf.float32) / max_value


def normalize_channels(image: tf.Tensor) -> tf.Tensor:
    """Decoded image with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels -> 1 or 3 channels.

    The alpha channel is dropped. The channel count of the result is dynamic (1 or 3) unless the
    input's is static.
    """
    c = image.shape[-1]
    if c is not None:
        return image[..., :1] if c <= 2 else image[..., :3]
    n = tf.shape(image)[-1]
    return tf.cond(n <= 2, lambda: image[..., :1], lambda: image[..., :3])


def to_rgb(image: tf.Tensor) -> tf.Tensor:
    """[H, W, C] with C in {1, 2, 3, 4} -> [H, W, 3] (gray is replicated, alpha dropped)."""
    c = image.shape[-1]
    if c is not None:
        return tf.tile(image[..., :1], [1, 1, 3]) if c <= 2 else image[..., :3]
    n = tf.shape(image)[-1]
    rgb = tf.cond(n <= 2, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
    return tf.ensure_shape(rgb, [None, None, 3])


def set_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """[H, W, C] (C in {1, 2, 3, 4}) -> [H, W, channels]: 3 replicates gray; 1 is the ITU-R 601 luma
    of RGB (gray input is passed through unchanged). Alpha is dropped."""
    if channels == 3:
        return to_rgb(image)
    c = image.shape[-1]
    if c is not None:
        return image[..., :1] if c <= 2 else tf.image.rgb_to_grayscale(image[..., :3])
    n = tf.shape(image)[-1]
    gray = tf.cond(n <= 2, lambda: image[..., :1], lambda: tf.image.rgb_to_grayscale(image[..., :3]))
    return tf.ensure_shape(gray, [None, None, 1])


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Float [H, W, C] -> float [size, size, C] (bilinear, anti-aliased when shrinking), clipped to [0, 1].

    The aspect ratio is not preserved; use `center_crop_resize` for non-square inputs.
    """
    h, w = image.shape[0], image.shape[1]
    if h == size and w == size:
        return image
    out = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(out, 0.0, 1.0)


def center_crop(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """[H, W, C] -> the central [height, width, C] window (offsets rounded down)."""
    shape = tf.shape(image)
    top = (shape[0] - height) // 2
    left = (shape[1] - width) // 2
    return image[top : top + height, left : left + width, :]


def center_crop_resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Float [H, W, C] -> [size, size, C]: resize the shorter side to `size`, then crop the centre.

    This is the usual LSUN / image-folder preprocessing (aspect ratio preserved, borders of the
    longer side dropped).
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    new_hw = tf.maximum(tf.cast(tf.math.ceil(shape * scale), tf.int32), size)
    scaled = tf.image.resize(image, new_hw, method="bilinear", antialias=True)
    out = center_crop(scaled, size, size)
    out = tf.ensure_shape(out, [size, size, image.shape[-1]])
    return tf.clip_by_value(out, 0.0, 1.0)
