"""`evaluate_samples`: the figures the model families report, from two image sets in one call."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ebm_zoo.metrics import distances, swd, texture
from ebm_zoo.metrics._validation import as_image_batch
from ebm_zoo.utils.checks import EbmZooError

# name -> what it needs: "small" = the shipped classifier, "inception" = a local Inception file.
METRICS = {
    "swd": "sliced Wasserstein distance on Laplacian pyramids (×1e3; also per level as swd_<res>)",
    "fd_small": "Fréchet distance in the shipped classifier's 128-d feature space",
    "kid_small": "KID (unbiased MMD², cubic kernel) in the shipped classifier's feature space (+ _std)",
    "is_small": "Inception-score analogue from the shipped classifier's softmax (+ _std)",
    "mmd_small": "Gaussian-RBF MMD² (median heuristic) in the shipped classifier's feature space",
    "gram": "texture Gram distance with the shipped classifier's conv layers (relative Frobenius)",
    "gram_pixels": "texture Gram distance of 3x3 pixel neighbourhoods on a Gaussian pyramid",
    "fid": "FID with a local Inception-v3 pool3 model ($EBM_ZOO_INCEPTION or inception_path)",
    "kid": "KID with a local Inception-v3 pool3 model",
}
DEFAULT_METRICS = ("swd", "fd_small", "kid_small", "gram")


def evaluate_samples(
    samples,
    reference,
    metrics: Sequence[str] = DEFAULT_METRICS,
    seed: int = 0,
    *,
    inception_path: str | os.PathLike | None = None,
    kid_subsets: int = 50,
    kid_subset_size: int = 1000,
    gram_max_images: int | None = 256,
) -> dict[str, float]:
    """Computes the requested metrics between generated samples and reference images.

    Args:
      samples: float [N, H, W, C] in [0, 1], NHWC numpy (C = 1 or 3), e.g. `model.sample(n)`.
      reference: float [M, H', W', C'] in [0, 1] reference images. "swd" needs the same H, W, C as
        `samples`; the feature metrics resize both sets to 32x32 RGB; "gram" accepts any sizes.
      metrics: names from `METRICS` (default: swd, fd_small, kid_small, gram).
      seed: seed of every random choice (SWD patches / directions, KID subsets).
      inception_path: the local Inception-v3 file for "fid" / "kid" (default $EBM_ZOO_INCEPTION).
      kid_subsets, kid_subset_size: KID subset count and size (size reduced to min(N, M)).
      gram_max_images: "gram" / "gram_pixels" use at most this many images per set (seeded subset;
        the mean Gram matrix converges quickly and the classifier runs at native resolution).

    Returns:
      A flat dict of floats: "swd" plus "swd_<res>" per pyramid level, "fd_small", "kid_small" and
      "kid_small_std", "is_small" and "is_small_std", "mmd_small", "gram", "gram_pixels", "fid",
      "kid" and "kid_std" — the keys of the requested metrics only. Lower is better for all but
      "is_small". Figures are only comparable at equal N and M.
    """
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise EbmZooError(f"Unknown metric(s) {unknown}; valid names: {', '.join(METRICS)}.")
    x = as_image_batch(samples, "samples")
    y = as_image_batch(reference, "reference")
    results: dict[str, float] = {}
    cache: dict[str, np.ndarray] = {}

    def small_features() -> tuple[np.ndarray, np.ndarray]:
        if "small" not in cache:
            from ebm_zoo.metrics.features import extract_features

            cache["small"] = (extract_features(x), extract_features(y))
        return cache["small"]

    def inception_features() -> tuple[np.ndarray, np.ndarray]:
        if "inception" not in cache:
            from ebm_zoo.metrics.inception import inception_activations

            cache["inception"] = (
                inception_activations(x, inception_path),
                inception_activations(y, inception_path),
            )
        return cache["inception"]

    for name in metrics:
        if name == "swd":
            results.update(swd.sliced_wasserstein_distance(x, y, seed=seed).as_dict("swd"))
        elif name in ("fd_small", "fid"):
            a, b = small_features() if name == "fd_small" else inception_features()
            results[name] = distances.frechet_distance(a, b)
        elif name in ("kid_small", "kid"):
            a, b = small_features() if name == "kid_small" else inception_features()
            kid = distances.kernel_inception_distance(
                a, b, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
            )
            results[name], results[f"{name}_std"] = kid.mean, kid.std
        elif name == "mmd_small":
            a, b = small_features()
            results[name] = distances.kernel_mmd(a, b)
        elif name == "is_small":
            from ebm_zoo.metrics.features import class_probabilities

            score = distances.inception_score(class_probabilities(x), splits=min(10, x.shape[0]))
            results[name], results[f"{name}_std"] = score.mean, score.std
        elif name == "gram":
            results[name] = texture.gram_distance(
                x, y, features="classifier", max_images=gram_max_images, seed=seed
            ).mean
        elif name == "gram_pixels":
            results[name] = texture.gram_distance(
                x, y, features="pixels", max_images=gram_max_images, seed=seed
            ).mean
    return results
