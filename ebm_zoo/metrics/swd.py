"""Multi-scale sliced Wasserstein distance (SWD) on Laplacian pyramids (Karras et al. 2018, §5).

For each set of images a Laplacian pyramid is built (5-tap binomial filter, factor 2 per level; the
last level is the low-pass residual). From every level, `patches_per_image` neighbourhoods of
`patch_size` x `patch_size` pixels x C channels are cut from each image, giving descriptors of
dimension patch_size² C. Each set's descriptors are normalised per channel (zero mean, unit
standard deviation over all of that set's descriptors at that level, as in Karras et al.; or with
statistics pooled over both sets, `normalization="joint"`). The sliced Wasserstein-1 distance
between the two descriptor sets is then: project onto `num_directions` random unit directions,
sort each projection, and average |sorted_a - sorted_b| over ranks and directions.

Reported figures follow the usual convention: distances multiplied by 1e3, per level (finest first)
and averaged over the levels. Lower is better; 0 for identical sets.

Differences from the reference recipe, for small images and CPU speed: the coarsest level is the
last one whose side is still >= patch_size (so 8x8 digits get a single level, 64x64 images get the
levels 64, 32, 16, 8), fewer descriptors and directions by default (64 per image, 256 directions
instead of 128 per image and 4 x 128 directions), and the patch positions of a level are drawn once
and shared by all images of both sets, which makes the result exactly invariant to the order of the
images and exactly 0 for identical sets.

Reference: Karras, Aila, Laine, Lehtinen 2018, "Progressive growing of GANs for improved quality,
stability, and variation" (ICLR), Section 5 / Appendix D.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
from scipy.ndimage import convolve1d

from ebm_zoo.metrics._validation import as_image_batch, single_threaded_blas
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0


class SWDResult(NamedTuple):
    """Sliced Wasserstein distances (×1e3) per pyramid level and their mean.

    Attributes:
      resolutions: (height, width) of each level, finest first.
      per_level: SWD ×1e3 of each level (same order).
      mean: the average of `per_level` (the single "SWD" figure).
    """

    resolutions: tuple[tuple[int, int], ...]
    per_level: tuple[float, ...]
    mean: float

    def as_dict(self, prefix: str = "swd") -> dict[str, float]:
        """{"swd": mean, "swd_64": level 64x64, ...} (keys "swd_HxW" for non-square levels)."""
        out = {prefix: self.mean}
        for (h, w), value in zip(self.resolutions, self.per_level):
            out[f"{prefix}_{h}" if h == w else f"{prefix}_{h}x{w}"] = value
        return out


def _blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Separable 5-tap binomial filter on the H and W axes of [N, H, W, C] (mirror boundaries)."""
    kernel = _BINOMIAL * gain
    x = convolve1d(x, kernel, axis=1, mode="mirror")
    return convolve1d(x, kernel, axis=2, mode="mirror")


def _downsample(x: np.ndarray) -> np.ndarray:
    return _blur(x)[:, ::2, ::2]


def _upsample(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Zero insertion to `size` then the binomial filter with gain 2 per axis."""
    up = np.zeros((x.shape[0], size[0], size[1], x.shape[3]), dtype=x.dtype)
    up[:, ::2, ::2] = x
    return _blur(up, gain=2.0)


def num_pyramid_levels(height: int, width: int, patch_size: int = 7) -> int:
    """Number of levels whose smaller side is still >= patch_size (each level halves the size, rounding up)."""
    levels, h, w = 0, height, width
    while min(h, w) >= patch_size:
        levels += 1
        h, w = (h + 1) // 2, (w + 1) // 2
    return levels


def laplacian_pyramid(images, num_levels: int) -> list[np.ndarray]:
    """Laplacian pyramid of a batch of images.

    Args:
      images: float [N, H, W, C] (any range; float32 is used).
      num_levels: number of levels >= 1.

    Returns:
      `num_levels` float32 arrays, finest first: band-pass levels [N, H_l, W_l, C] with
      H_l = ceil(H / 2^l), and as the last entry the low-pass residual. Summing the levels after
      upsampling back reconstructs the images exactly.
    """
    check_positive(num_levels, "num_levels")
    current = np.asarray(images, dtype=np.float32)
    levels = []
    for _ in range(num_levels - 1):
        smaller = _downsample(current)
        levels.append(current - _upsample(smaller, current.shape[1:3]))
        current = smaller
    levels.append(current)
    return levels


def _descriptors(level: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch_size: int) -> np.ndarray:
    """[N, h, w, C] level -> [N * P, patch_size² * C] neighbourhoods with top-left corners (ys, xs)."""
    offsets = np.arange(patch_size)
    rows = ys[:, None, None] + offsets[None, :, None]
    cols = xs[:, None, None] + offsets[None, None, :]
    patches = level[:, rows, cols, :]  # [N, P, p, p, C]
    return patches.reshape(-1, patch_size * patch_size * level.shape[-1])


def _moments(desc: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel sum and sum of squares (float64) of [M, p² C] descriptors, and the count."""
    d = tf.convert_to_tensor(desc)
    total = tf.reduce_sum(d, axis=0).numpy().astype(np.float64).reshape(-1, channels).sum(axis=0)
    total_sq = (
        tf.reduce_sum(tf.square(d), axis=0).numpy().astype(np.float64).reshape(-1, channels).sum(axis=0)
    )
    return total, total_sq, desc.size // channels


def _mean_std(*moments: tuple[np.ndarray, np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    total = sum(m[0] for m in moments)
    total_sq = sum(m[1] for m in moments)
    count = sum(m[2] for m in moments)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean, np.maximum(std, 1e-8)


def _sorted_projections(
    desc: np.ndarray, directions: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """Sorted projections of the per-channel normalised descriptors.

    desc [M, D] (D = p² C, channel fastest), directions [D, K], mean / std [C] -> [K, M] sorted along M.
    ((desc - mean) / std) @ directions is computed as desc @ (directions / std) - (mean / std) @ directions
    so that the normalised descriptors are never materialised.
    """
    reps = desc.shape[1] // mean.shape[0]
    inv_std = np.tile(1.0 / std, reps)
    scaled = (directions * inv_std[:, None]).astype(np.float32)
    shift = (np.tile(mean, reps) * inv_std) @ directions
    # [K, M] in TensorFlow: numpy's OpenBLAS is many times slower here when the CPU is shared.
    proj = tf.matmul(scaled, desc, transpose_a=True, transpose_b=True).numpy()
    proj -= shift.astype(np.float32)[:, None]
    proj.sort(axis=1)
    return proj


def _resample_sorted(sorted_proj: np.ndarray, m: int) -> np.ndarray:
    """Quantile function of each row evaluated at m midpoint probabilities (linear interpolation)."""
    n = sorted_proj.shape[1]
    if n == m:
        return sorted_proj
    position = (np.arange(m) + 0.5) * n / m - 0.5
    lo = np.clip(np.floor(position).astype(np.int64), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    frac = np.clip(position - lo, 0.0, 1.0).astype(np.float32)
    return sorted_proj[:, lo] * (1 - frac) + sorted_proj[:, hi] * frac


@single_threaded_blas
def sliced_wasserstein_distance(
    images1,
    images2,
    *,
    patch_size: int = 7,
    patches_per_image: int = 64,
    num_directions: int = 256,
    num_levels: int | None = None,
    normalization: str = "per_set",
    seed: int = 0,
) -> SWDResult:
    """Multi-scale sliced Wasserstein distance between two sets of images (×1e3, see module doc).

    Args:
      images1: float [N1, H, W, C] in [0, 1], NHWC, C = 1 (gray) or 3 (RGB) (any C works).
      images2: float [N2, H, W, C] in [0, 1], same H, W, C as images1 (N2 may differ).
      patch_size: side of the square neighbourhood descriptors (7 in Karras et al.).
      patches_per_image: neighbourhoods per image and level (positions shared by all images).
      num_directions: random projection directions per level.
      num_levels: pyramid levels; None (default) chooses all levels whose side is >= patch_size
        (`num_pyramid_levels`): 8x8 -> 1, 32x32 -> 3, 64x64 -> 4.
      normalization: "per_set" (Karras et al.: each set normalised with its own per-channel mean and
        std, so the metric compares local structure, not global brightness / contrast) or "joint"
        (statistics of both sets pooled, so brightness and contrast differences count too).
      seed: seed of the patch positions and directions; the result is deterministic given it.

    Returns:
      SWDResult(resolutions, per_level, mean) with distances ×1e3 (>= 0; exactly 0 for identical
      sets). With N1 != N2 the sorted projections are compared at min(N1, N2) * patches_per_image
      common quantiles.
    """
    a = as_image_batch(images1, "images1")
    b = as_image_batch(images2, "images2")
    if a.shape[1:] != b.shape[1:]:
        raise EbmZooError(
            f"`images1` {a.shape} and `images2` {b.shape} must have the same height, width and channels; "
            "resize one set (e.g. tf.image.resize) and convert channels first."
        )
    check_positive(patches_per_image, "patches_per_image")
    check_positive(num_directions, "num_directions")
    check_choice(normalization, "normalization", ("per_set", "joint"))
    if not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
        raise EbmZooError(f"`patch_size` must be a positive int, got {patch_size!r}.")
    height, width, channels = a.shape[1:]
    max_levels = num_pyramid_levels(height, width, patch_size)
    if max_levels == 0:
        raise EbmZooError(
            f"Images of {height}x{width} are smaller than patch_size={patch_size}; use a smaller patch_size."
        )
    if num_levels is None:
        num_levels = max_levels
    elif not 1 <= num_levels <= max_levels:
        raise EbmZooError(
            f"`num_levels`={num_levels} but {height}x{width} images allow 1..{max_levels} levels with "
            f"patch_size={patch_size}; pass num_levels=None to choose automatically."
        )

    rng = np.random.default_rng(seed)
    pyr_a = laplacian_pyramid(a, num_levels)
    pyr_b = laplacian_pyramid(b, num_levels)
    resolutions, per_level = [], []
    for level_a, level_b in zip(pyr_a, pyr_b):
        h, w = level_a.shape[1:3]
        ys = rng.integers(0, h - patch_size + 1, size=patches_per_image)
        xs = rng.integers(0, w - patch_size + 1, size=patches_per_image)
        desc_a = _descriptors(level_a, ys, xs, patch_size)
        desc_b = _descriptors(level_b, ys, xs, patch_size)
        moments_a, moments_b = _moments(desc_a, channels), _moments(desc_b, channels)
        if normalization == "per_set":
            stats_a, stats_b = _mean_std(moments_a), _mean_std(moments_b)
        else:
            stats_a = stats_b = _mean_std(moments_a, moments_b)
        directions = rng.standard_normal((desc_a.shape[1], num_directions))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        proj_a = _sorted_projections(desc_a, directions, *stats_a)
        proj_b = _sorted_projections(desc_b, directions, *stats_b)
        m = min(proj_a.shape[1], proj_b.shape[1])
        proj_a, proj_b = _resample_sorted(proj_a, m), _resample_sorted(proj_b, m)
        per_level.append(float(np.abs(proj_a - proj_b).mean(dtype=np.float64)) * 1e3)
        resolutions.append((int(h), int(w)))
    return SWDResult(tuple(resolutions), tuple(per_level), float(np.mean(per_level)))
