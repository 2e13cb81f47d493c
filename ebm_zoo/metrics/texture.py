"""Texture statistics: distance between the Gram matrices of two sets of images (Gatys et al. 2015).

A texture is summarised by the Gram matrices G_l = F_l^T F_l / (h_l w_l) of feature maps F_l
[h_l w_l, c_l] at several layers l, averaged over the images of a set (each image weighs the same,
whatever its size, so sets of different-size images can be compared, e.g. 64x64 samples against
crops of a 512x512 texture). The distance is the relative Frobenius norm per layer,

    d_l = ||G_l(images) - G_l(reference)||_F / ||G_l(reference)||_F,

averaged over the layers (0 for identical statistics; ≈ 1 means differences as large as the
reference statistics themselves). It is measured relative to the reference, so it is not symmetric.

Two feature maps are available:
  * features="classifier" (default): the ReLU outputs of the four conv stages (conv1, conv2b, conv3b,
    conv4; resolutions 1, 1/2, 1/4, 1/8) of the shipped classifier (`ebm_zoo.metrics.features`),
    run fully convolutionally at the images' native resolution. Images must be at least 8x8.
  * features="pixels": no network. For each level of a Gaussian pyramid (5-tap binomial filter,
    factor 2), the 3x3 pixel neighbourhoods (9 C values) at every position; the Gram matrix is then
    the local second-moment (auto-correlation) matrix of the pixels at that scale. Any image of at
    least 3x3 works.

Reference: Gatys, Ecker, Bethge 2015, "Texture synthesis using convolutional neural networks".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ebm_zoo.metrics._validation import as_image_batch
from ebm_zoo.metrics.swd import _downsample
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive

PIXEL_PATCH = 3
MAX_PIXEL_LEVELS = 3
_MAX_PIXELS_PER_BATCH = 1 << 20  # bounds the memory of one forward pass


class GramResult(NamedTuple):
    """Relative Frobenius distances of Gram matrices per layer and their mean (all >= 0)."""

    layers: tuple[str, ...]
    per_layer: tuple[float, ...]
    mean: float


def _image_groups(images, name: str) -> list[np.ndarray]:
    """A 4-D batch, a 3-D single image, or a sequence of 3-D / 4-D arrays -> validated 4-D batches."""
    if isinstance(images, (list, tuple)):
        items = list(images)
        if not items:
            raise EbmZooError(f"`{name}` is an empty list; pass at least one image.")
    else:
        items = [images]
    groups = []
    for i, item in enumerate(items):
        arr = np.asarray(item)
        if arr.ndim == 3:
            arr = arr[None]
        label = name if len(items) == 1 else f"{name}[{i}]"
        groups.append(as_image_batch(arr, label))
    channels = {g.shape[-1] for g in groups}
    if len(channels) > 1 and channels != {1, 3}:
        raise EbmZooError(f"`{name}` mixes images with {sorted(channels)} channels; use 1 (gray) or 3 (RGB).")
    return groups


def _to_channels(batch: np.ndarray, channels: int) -> np.ndarray:
    return np.repeat(batch, channels, axis=-1) if batch.shape[-1] == 1 and channels == 3 else batch


def _chunks(batch: np.ndarray):
    per = max(1, _MAX_PIXELS_PER_BATCH // (batch.shape[1] * batch.shape[2]))
    for i in range(0, batch.shape[0], per):
        yield batch[i : i + per]


def _gram_sum(fmap: np.ndarray) -> np.ndarray:
    """[n, h, w, c] feature maps -> sum over the n images of F^T F / (h w) as [c, c] float64.

    The product runs in TensorFlow: numpy's BLAS is very slow for these tall, thin matrices on a
    loaded CPU, while tf.matmul is not.
    """
    import tensorflow as tf

    _, h, w, c = fmap.shape
    flat = tf.reshape(tf.convert_to_tensor(fmap, tf.float32), (-1, c))
    return tf.matmul(flat, flat, transpose_a=True).numpy().astype(np.float64) / (h * w)


def _pixel_levels(batch: np.ndarray, num_levels: int) -> list[np.ndarray]:
    levels = [batch]
    for _ in range(num_levels - 1):
        levels.append(_downsample(levels[-1]))
    return levels


def _neighbourhoods(level: np.ndarray, size: int) -> np.ndarray:
    """[n, h, w, c] -> [n, h - size + 1, w - size + 1, size² c] (every valid size x size window).

    The last axis is ordered (row offset, column offset, channel); built from contiguous shifted
    slices, which is much faster than copying a strided window view.
    """
    hh, ww = level.shape[1] - size + 1, level.shape[2] - size + 1
    shifted = [level[:, dy : dy + hh, dx : dx + ww, :] for dy in range(size) for dx in range(size)]
    return np.concatenate(shifted, axis=-1)


def _num_pixel_levels(groups: Sequence[np.ndarray]) -> int:
    smallest = min(min(g.shape[1:3]) for g in groups)
    if smallest < PIXEL_PATCH:
        raise EbmZooError(
            f"Images of side {smallest} are smaller than the {PIXEL_PATCH}x{PIXEL_PATCH} pixel window."
        )
    levels, side = 0, smallest
    while side >= PIXEL_PATCH and levels < MAX_PIXEL_LEVELS:
        levels += 1
        side = (side + 1) // 2
    return levels


def gram_statistics(
    images,
    *,
    features: str = "classifier",
    num_levels: int | None = None,
    channels: int | None = None,
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """Gram matrices of a set of images, averaged over the images.

    Args:
      images: float [N, H, W, C] in [0, 1], or a sequence of [H, W, C] / [n, H, W, C] arrays of
        different sizes. C = 1 or 3.
      features: "classifier" or "pixels" (see the module docstring).
      num_levels: for "pixels", the number of pyramid levels (default: up to 3, as many as the
        smallest image allows).
      channels: for "pixels", convert gray images to this many channels (3) first.

    Returns:
      (layer names, list of [c_l, c_l] float64 Gram matrices), values >= 0 on the diagonal.
    """
    check_choice(features, "features", ("classifier", "pixels"))
    groups = _image_groups(images, "images")
    count = sum(g.shape[0] for g in groups)
    if features == "classifier":
        from ebm_zoo.metrics import features as F

        names = F.CONV_LAYERS
        sums = None
        for batch in groups:
            if min(batch.shape[1:3]) < 8:
                raise EbmZooError(
                    f"features='classifier' needs images of at least 8x8, got {batch.shape[1]}x{batch.shape[2]}; "
                    "use features='pixels' for smaller images."
                )
            for chunk in _chunks(batch):
                grams = [_gram_sum(m) for m in F.conv_feature_maps(chunk, names)]
                sums = grams if sums is None else [s + g for s, g in zip(sums, grams)]
        return tuple(names), [s / count for s in sums]

    levels = num_levels if num_levels is not None else _num_pixel_levels(groups)
    channels = channels or max(g.shape[-1] for g in groups)
    names = tuple(f"pixels_level{i}" for i in range(levels))
    sums = None
    for batch in groups:
        batch = _to_channels(batch, channels)
        if batch.shape[-1] != channels:
            raise EbmZooError(f"`images` have {batch.shape[-1]} channels but {channels} were expected.")
        for chunk in _chunks(batch):
            pyramid = _pixel_levels(chunk, levels)
            if min(pyramid[-1].shape[1:3]) < PIXEL_PATCH:
                raise EbmZooError(
                    f"num_levels={levels} is too many for {chunk.shape[1]}x{chunk.shape[2]} images "
                    f"(the coarsest level must be at least {PIXEL_PATCH}x{PIXEL_PATCH})."
                )
            grams = [_gram_sum(_neighbourhoods(level, PIXEL_PATCH)) for level in pyramid]
            sums = grams if sums is None else [s + g for s, g in zip(sums, grams)]
    return names, [s / count for s in sums]


def relative_frobenius(gram: np.ndarray, reference: np.ndarray) -> float:
    """||gram - reference||_F / ||reference||_F (>= 0; the denominator is floored at 1e-12)."""
    return float(np.linalg.norm(gram - reference) / max(np.linalg.norm(reference), 1e-12))


def _subsample(groups: list[np.ndarray], max_images: int | None, seed: int) -> list[np.ndarray]:
    """At most `max_images` images in total, a seeded random choice (order within groups kept)."""
    total = sum(g.shape[0] for g in groups)
    if max_images is None or total <= max_images:
        return groups
    keep = np.zeros(total, bool)
    keep[np.random.default_rng(seed).choice(total, max_images, replace=False)] = True
    out, start = [], 0
    for g in groups:
        mask = keep[start : start + g.shape[0]]
        start += g.shape[0]
        if mask.any():
            out.append(g[mask])
    return out


def gram_distance(
    images,
    reference,
    *,
    features: str = "classifier",
    num_levels: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
) -> GramResult:
    """Texture distance between two sets of images (relative Frobenius distance of Gram matrices).

    Args:
      images: float [N, H, W, C] in [0, 1] (e.g. samples) or a sequence of differently sized images.
      reference: the same for the reference set (e.g. crops of the training texture). Sizes may
        differ from `images`. C = 1 or 3 (gray is repeated to RGB when the other set is RGB).
      features: "classifier" (shipped classifier conv layers at native resolution, images >= 8x8)
        or "pixels" (3x3 pixel neighbourhoods on a Gaussian pyramid, any image >= 3x3).
      num_levels: for "pixels", pyramid levels (default: up to 3, limited by the smallest image
        of both sets).
      max_images: use at most this many images of each set (a seeded random subset), since the
        mean Gram matrix converges quickly; None uses all.
      seed: seed of that subset.

    Returns:
      GramResult(layers, per_layer, mean): per layer ||G(images) - G(reference)||_F / ||G(reference)||_F,
      each >= 0 (0 for identical statistics), and their mean (the "gram" figure).
    """
    check_choice(features, "features", ("classifier", "pixels"))
    if max_images is not None:
        check_positive(max_images, "max_images")
    groups_x = _subsample(_image_groups(images, "images"), max_images, seed)
    groups_ref = _subsample(_image_groups(reference, "reference"), max_images, seed + 1)
    channels = None
    if features == "pixels":
        channels = max(g.shape[-1] for g in groups_x + groups_ref)
        if num_levels is None:
            num_levels = _num_pixel_levels(groups_x + groups_ref)
    names, g_images = gram_statistics(groups_x, features=features, num_levels=num_levels, channels=channels)
    _, g_reference = gram_statistics(groups_ref, features=features, num_levels=num_levels, channels=channels)
    per_layer = tuple(relative_frobenius(a, b) for a, b in zip(g_images, g_reference))
    return GramResult(names, per_layer, float(np.mean(per_layer)))
