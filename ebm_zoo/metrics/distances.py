"""Distances between sets of activations: Fréchet distance, KID, Inception score, kernel MMD.

Every function here is a pure numpy function of activations (rows = samples, columns = features),
so it does not care which network produced them: the Inception-v3 pool3 layer
(`ebm_zoo.metrics.inception`) for the standard FID / KID / IS, or the small shipped classifier
(`ebm_zoo.metrics.features`) for offline figures. All computations are done in float64.

References:
  Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium" (FID).
  Bińkowski et al. 2018, "Demystifying MMD GANs" (KID: unbiased MMD² with a cubic polynomial kernel).
  Salimans et al. 2016, "Improved techniques for training GANs" (Inception score).
  Gretton et al. 2012, "A kernel two-sample test" (MMD, median heuristic).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg

from ebm_zoo.metrics._validation import as_activations, same_dim, single_threaded_blas
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive


class MeanStd(NamedTuple):
    """A metric estimated several times (subsets or splits): the mean and the standard deviation."""

    mean: float
    std: float


# --------------------------------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------------------------------


@single_threaded_blas
def activation_statistics(activations) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a set of activations.

    Args:
      activations: [N, D] array, N >= 2, finite.

    Returns:
      (mu [D], sigma [D, D]) in float64; sigma is the unbiased (N - 1) sample covariance.
    """
    act = as_activations(activations, "activations")
    mu = act.mean(axis=0)
    sigma = np.cov(act, rowvar=False).reshape(act.shape[1], act.shape[1])
    return mu, sigma


def _sym_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix (negative round-off eigenvalues clipped to 0)."""
    eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str, eps: float) -> float:
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD sigma1, sigma2."""
    if method == "eigh":
        # sigma1 sigma2 is similar to S sigma2 S with S = sigma1^(1/2), which is symmetric PSD,
        # so its eigenvalues are real and >= 0: no complex arithmetic and no imaginary part.
        root1 = _sym_sqrt(sigma1)
        inner = root1 @ sigma2 @ root1
        eigvals = np.linalg.eigvalsh((inner + inner.T) / 2.0)
        return float(np.sqrt(np.clip(eigvals, 0.0, None)).sum())
    # method == "sqrtm": the classic FID recipe.
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        # Singular product: regularise both covariances with eps * I and retry.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Round-off gives a small imaginary part; a large one means the estimate is unreliable.
        imag = float(np.max(np.abs(covmean.imag)))
        scale = max(1.0, float(np.max(np.abs(covmean.real))))
        if imag > 1e-3 * scale:
            raise EbmZooError(
                f"sqrtm(sigma1 @ sigma2) has an imaginary component of {imag:.3g} (relative to {scale:.3g}); "
                "the covariances are badly conditioned (too few samples for the feature dimension?). "
                "Use method='eigh' or more samples."
            )
        covmean = covmean.real
    return float(np.trace(covmean))


@single_threaded_blas
def frechet_distance_from_statistics(
    mu1, sigma1, mu2, sigma2, *, method: str = "eigh", eps: float = 1e-6
) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

        d² = |mu1 - mu2|² + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

    Args:
      mu1, mu2: [D] means.
      sigma1, sigma2: [D, D] symmetric PSD covariances.
      method: "eigh" (default): tr((sigma1 sigma2)^(1/2)) from the eigenvalues of the symmetric PSD
        matrix sigma1^(1/2) sigma2 sigma1^(1/2) — real by construction and stable for singular
        covariances (D > N). "sqrtm": scipy.linalg.sqrtm of sigma1 sigma2 as in the reference FID code,
        retried with eps * I added to both covariances if the result is not finite, and its round-off
        imaginary part dropped (an EbmZooError if that part is not small).
      eps: regulariser for the "sqrtm" method.

    Returns:
      The squared Fréchet distance d² (the number usually reported as "FID"), a float >= 0
      (tiny negative round-off is clipped to 0).
    """
    check_choice(method, "method", ("eigh", "sqrtm"))
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    for name, value, shape in (
        ("mu1", mu1, (d,)),
        ("mu2", mu2, (d,)),
        ("sigma1", sigma1, (d, d)),
        ("sigma2", sigma2, (d, d)),
    ):
        if value.shape != shape:
            raise EbmZooError(
                f"`{name}` has shape {value.shape} but {shape} was expected from mu1 of shape {(d,)}; "
                "pass means [D] and covariances [D, D] of the same feature dimension."
            )
        if not np.all(np.isfinite(value)):
            raise EbmZooError(f"`{name}` contains NaN/inf values (shape {value.shape}).")
    diff = mu1 - mu2
    tr_covmean = _trace_sqrt_product(sigma1, sigma2, method, eps)
    fd = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


@single_threaded_blas
def frechet_distance(activations1, activations2, *, method: str = "eigh") -> float:
    """Fréchet distance (FID when the activations are Inception pool3) between two activation sets.

    Args:
      activations1: [N1, D] activations of the first set (e.g. samples), N1 >= 2, finite.
      activations2: [N2, D] activations of the second set (e.g. reference data), N2 >= 2.
      method: see `frechet_distance_from_statistics`.

    Returns:
      The squared Fréchet distance between Gaussians fitted to the two sets, a float >= 0 in the
      units² of the activations. Symmetric in its arguments. Biased upwards for small N (compare
      figures only at equal N).
    """
    a = as_activations(activations1, "activations1")
    b = as_activations(activations2, "activations2")
    same_dim(a, b, "activations1", "activations2")
    mu1, sigma1 = activation_statistics(a)
    mu2, sigma2 = activation_statistics(b)
    return frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2, method=method)


# --------------------------------------------------------------------------------------------------
# Kernel Inception distance (unbiased MMD² with a cubic polynomial kernel)
# --------------------------------------------------------------------------------------------------


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x·y / D + 1)³ for rows of x [n, D] and y [m, D] -> [n, m]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD² from kernel matrices (diagonals of k_xx, k_yy excluded)."""
    n = k_xx.shape[0]
    m = k_yy.shape[0]
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


@single_threaded_blas
def kernel_inception_distance(
    activations1,
    activations2,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> MeanStd:
    """Kernel Inception distance (KID): unbiased MMD² with k(x, y) = (x·y / D + 1)³.

    Works on any activations (Inception pool3 for the standard KID, the shipped classifier for the
    offline "kid_small"). As in Bińkowski et al. (2018), the estimate is averaged over random subsets:
    each subset draws `subset_size` rows without replacement from each set.

    Args:
      activations1: [N1, D] activations, N1 >= 2, finite.
      activations2: [N2, D] activations, N2 >= 2.
      num_subsets: number of random subsets (>= 1).
      subset_size: rows per subset; reduced to min(N1, N2) when the sets are smaller.
      seed: seed of the subset draws (the result is deterministic given the seed).

    Returns:
      MeanStd(mean, std) of the per-subset unbiased MMD² estimates. Unbiased, so for two samples of
      the same distribution the mean is ≈ 0 and can be slightly negative; the standard KID figure
      is `mean` (often reported ×1e3).
    """
    check_positive(num_subsets, "num_subsets")
    check_positive(subset_size, "subset_size")
    a = as_activations(activations1, "activations1")
    b = as_activations(activations2, "activations2")
    same_dim(a, b, "activations1", "activations2")
    m = int(min(subset_size, a.shape[0], b.shape[0]))
    if m < 2:
        raise EbmZooError(f"KID needs subsets of at least 2 rows, got subset_size={subset_size}.")
    if m == a.shape[0] == b.shape[0]:
        # Every subset would be the whole of both sets: one estimate, no spread.
        return MeanStd(
            _unbiased_mmd2(_polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)), 0.0
        )
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        estimates[i] = _unbiased_mmd2(
            _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        )
    return MeanStd(float(estimates.mean()), float(estimates.std()))


# --------------------------------------------------------------------------------------------------
# Inception score
# --------------------------------------------------------------------------------------------------


@single_threaded_blas
def inception_score(probabilities, *, splits: int = 10) -> MeanStd:
    """Inception score exp(E_x KL(p(y|x) || p(y))) from class probabilities.

    Args:
      probabilities: [N, K] class probabilities p(y|x) (rows >= 0 summing to 1 within 1e-3), e.g.
        the softmax of Inception-v3 or of the shipped classifier (`class_probabilities`).
      splits: the rows are cut into this many consecutive, near-equal chunks; p(y) and the score
        are computed per chunk (as in Salimans et al. 2016). Must be <= N.

    Returns:
      MeanStd(mean, std) over the chunks, each score in [1, K]: 1 when every p(y|x) equals p(y)
      (e.g. uniform predictions), K for confident one-hot predictions balanced over K classes.
    """
    check_positive(splits, "splits")
    p = as_activations(probabilities, "probabilities", min_rows=1)
    if p.min() < 0 or np.max(np.abs(p.sum(axis=1) - 1.0)) > 1e-3:
        raise EbmZooError(
            f"`probabilities` (shape {p.shape}) must have rows of probabilities >= 0 summing to 1; "
            f"got values in [{p.min():.3g}, {p.max():.3g}] and row sums in "
            f"[{p.sum(axis=1).min():.4g}, {p.sum(axis=1).max():.4g}]. If these are logits, apply a softmax."
        )
    if splits > p.shape[0]:
        raise EbmZooError(
            f"`splits`={splits} is larger than the number of samples {p.shape[0]}; use fewer splits."
        )
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(marginal)), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    scores = np.asarray(scores)
    return MeanStd(float(scores.mean()), float(scores.std()))


# --------------------------------------------------------------------------------------------------
# Kernel MMD (Gaussian RBF)
# --------------------------------------------------------------------------------------------------


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.clip(sq, 0.0, None)


@single_threaded_blas
def median_heuristic(x, y=None, *, max_points: int = 1000, seed: int = 0) -> float:
    """Median of the pairwise Euclidean distances in the pooled sample (Gretton et al. 2012).

    Args:
      x: [N, D] activations; y: optional [M, D], pooled with x.
      max_points: at most this many pooled rows are used (a seeded random subset beyond that).
      seed: seed of that subset.

    Returns:
      A bandwidth sigma > 0 (1.0 if all points coincide).
    """
    pooled = as_activations(x, "x")
    if y is not None:
        y = as_activations(y, "y")
        same_dim(pooled, y, "x", "y")
        pooled = np.concatenate([pooled, y])
    if pooled.shape[0] > max_points:
        pooled = pooled[np.random.default_rng(seed).choice(pooled.shape[0], max_points, replace=False)]
    dist = np.sqrt(_squared_distances(pooled, pooled)[np.triu_indices(pooled.shape[0], k=1)])
    sigma = float(np.median(dist))
    return sigma if sigma > 0 else 1.0


@single_threaded_blas
def kernel_mmd(
    x,
    y,
    *,
    bandwidth: float | Sequence[float] | str = "median",
    unbiased: bool = True,
) -> float:
    """Squared maximum mean discrepancy with a Gaussian RBF kernel k = exp(-|a - b|² / (2 sigma²)).

    Args:
      x: [N, D] activations (or flattened images), N >= 2, finite.
      y: [M, D] activations, M >= 2.
      bandwidth: sigma > 0; a sequence of sigmas (the kernel is then the mean of the RBF kernels,
        a common multi-scale choice); or "median" for the median heuristic on the pooled sample.
      unbiased: True for the unbiased U-statistic (diagonal terms excluded; ≈ 0 and possibly slightly
        negative for equal distributions); False for the biased V-statistic (>= 0).

    Returns:
      MMD² as a float; in [-2, 2] (unbiased) or [0, 2] (biased) since 0 < k <= 1.
    """
    a = as_activations(x, "x")
    b = as_activations(y, "y")
    same_dim(a, b, "x", "y")
    if isinstance(bandwidth, str):
        check_choice(bandwidth, "bandwidth", ("median",))
        sigmas = [median_heuristic(a, b)]
    else:
        sigmas = [float(s) for s in np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))]
        if not sigmas or not all(np.isfinite(s) and s > 0 for s in sigmas):
            raise EbmZooError(
                f"`bandwidth` must be 'median' or positive finite number(s), got {bandwidth!r}."
            )
    d_xx, d_yy, d_xy = _squared_distances(a, a), _squared_distances(b, b), _squared_distances(a, b)

    def rbf(sq: np.ndarray) -> np.ndarray:
        return np.mean([np.exp(-sq / (2.0 * s * s)) for s in sigmas], axis=0)

    k_xx, k_yy, k_xy = rbf(d_xx), rbf(d_yy), rbf(d_xy)
    if unbiased:
        return _unbiased_mmd2(k_xx, k_yy, k_xy)
    return float(k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean())
