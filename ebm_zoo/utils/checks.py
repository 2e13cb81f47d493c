"""Input validation with errors that name the offending value and the fix.

Public API images are float32 NHWC in [0, 1]. Every public entry point calls
`check_images` before it converts to its own internal scale.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class EbmZooError(ValueError):
    """Raised for bad user input; the message says what was wrong and what to do."""


def _summary(x) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype.name if hasattr(x.dtype, 'name') else x.dtype}"


def check_images(
    images,
    *,
    name: str = "images",
    channels: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    tolerance: float = 1e-3,
) -> tf.Tensor:
    """Validates a batch of NHWC images and returns it as a float32 tensor.

    Args:
      images: array-like of shape [N, H, W, C].
      name: the argument name used in error messages.
      channels: the expected number of channels C, or None for any.
      image_size: expected H (== W) or (H, W), or None for any.
      value_range: (low, high) the values must lie in, or None to skip the check.
        Checked only for eager tensors (inside a graph the check is skipped).
      tolerance: slack allowed on the range check.

    Raises:
      EbmZooError: wrong rank, channels, size, range, or non-finite values.
    """
    x = tf.convert_to_tensor(images)
    if not x.dtype.is_floating:
        if x.dtype == tf.uint8:
            raise EbmZooError(
                f"`{name}` is uint8 ({_summary(x)}); ebm_zoo takes float32 images in [0, 1]: "
                f"pass `{name} / 255.0`."
            )
        raise EbmZooError(f"`{name}` must be a float tensor in [0, 1], got {_summary(x)}.")
    x = tf.cast(x, tf.float32)
    if x.shape.rank is not None and x.shape.rank != 4:
        hint = " Add a batch axis with `x[None]`." if x.shape.rank == 3 else ""
        raise EbmZooError(f"`{name}` must be a 4-D NHWC batch [N, H, W, C], got {_summary(x)}.{hint}")
    if channels is not None and x.shape[-1] is not None and x.shape[-1] != channels:
        raise EbmZooError(
            f"`{name}` has {x.shape[-1]} channels ({_summary(x)}) but this model expects "
            f"{channels}; convert the images (e.g. tf.image.grayscale_to_rgb / rgb_to_grayscale)."
        )
    if image_size is not None:
        hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        got = tuple(x.shape[1:3])
        if None not in got and got != hw:
            raise EbmZooError(
                f"`{name}` has spatial size {got} ({_summary(x)}) but this model expects {hw}; "
                f"resize with tf.image.resize(images, {hw})."
            )
    if tf.executing_eagerly():
        arr = x.numpy()
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise EbmZooError(f"`{name}` contains {bad} NaN/inf values ({_summary(x)}); clean the input.")
        if value_range is not None and arr.size:
            lo, hi = float(arr.min()), float(arr.max())
            if lo < value_range[0] - tolerance or hi > value_range[1] + tolerance:
                hint = ""
                if hi > 1.5 and value_range == (0.0, 1.0):
                    hint = " It looks like [0, 255]: divide by 255."
                elif lo < -tolerance and value_range == (0.0, 1.0):
                    hint = " It looks like [-1, 1]: map with (x + 1) / 2."
                raise EbmZooError(
                    f"`{name}` values lie in [{lo:.4g}, {hi:.4g}] but must lie in "
                    f"[{value_range[0]}, {value_range[1]}].{hint}"
                )
    return x


def check_positive(value, name: str, *, allow_zero: bool = False) -> None:
    """Raises EbmZooError unless `value` > 0 (or >= 0 with allow_zero)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise EbmZooError(f"`{name}` must be {rel}, got {value!r}.")


def check_choice(value, name: str, choices) -> None:
    """Raises EbmZooError unless `value` is one of `choices` (listed in the message)."""
    if value not in choices:
        raise EbmZooError(f"Unknown {name} {value!r}; valid values: {', '.join(map(str, choices))}.")


# ------------------------------------------------------------------------------------------------
# Scalar arguments of public methods and tools. Each returns the clean value or raises one
# EbmZooError naming the argument, the value and the fix.

#: Seeds are ints in [0, SEED_LIMIT); they map one-to-one onto a stateless [2] int32 seed pair.
SEED_LIMIT = 2**62


def _is_int_like(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_count(value, name: str = "n", *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer count in [minimum, maximum]; floats, bools and strings are refused (no truncation)."""
    if not _is_int_like(value):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            hint = f" pass {int(value)}"
        else:
            hint = " pass a whole number"
        raise EbmZooError(f"`{name}` must be an int, got {value!r} ({type(value).__name__});{hint}.")
    value = int(value)
    if value < minimum:
        raise EbmZooError(f"`{name}` must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise EbmZooError(f"`{name}` must be <= {maximum}, got {value}; use a smaller value.")
    return value


def check_seed(seed, name: str = "seed") -> int | None:
    """None (fresh randomness) or an int in [0, 2**62); anything else is refused."""
    if seed is None:
        return None
    if not _is_int_like(seed):
        raise EbmZooError(
            f"`{name}` must be an int in [0, 2**62) or None, got {seed!r} ({type(seed).__name__})."
        )
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise EbmZooError(f"`{name}` must lie in [0, 2**62), got {seed}; pick a non-negative seed below 2**62.")
    return seed


def seed_pair(seed: int) -> tf.Tensor:
    """The stateless [2] int32 seed of a checked int seed (seeds < 2**31 - 1 give [seed, 0])."""
    seed = int(seed)
    return tf.constant([seed % 2**31, seed >> 31], tf.int32)


def check_num_steps(value, name: str = "num_steps", *, allow_none: bool = True) -> int | None:
    """A number of sampler steps: None (the model's default) or an int >= 0."""
    if value is None and allow_none:
        return None
    return check_count(value, name, minimum=0)
