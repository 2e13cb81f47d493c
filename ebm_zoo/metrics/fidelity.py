"""Sample-quality figures from class probabilities and features: classifier score, effective number
of classes, and k-NN precision / recall.

Pure numpy functions of activations, like `distances.py`; the MNIST protocol
(`ebm_zoo.metrics.mnist_protocol`) feeds them the MNIST classifier's outputs.

References:
  Salimans et al. 2016, "Improved techniques for training GANs" (Inception score; with another
    classifier it is usually called the classifier score).
  Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing generative models"
    (k-NN manifolds in feature space).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ebm_zoo.metrics._validation import as_activations, same_dim, single_threaded_blas
from ebm_zoo.metrics.distances import MeanStd, inception_score
from ebm_zoo.utils.checks import EbmZooError, check_positive


class PrecisionRecall(NamedTuple):
    """Kynkäänniemi et al. (2019) precision (fidelity) and recall (coverage), each in [0, 1]."""

    precision: float
    recall: float


def _as_probabilities(probabilities, name: str = "probabilities") -> np.ndarray:
    p = as_activations(probabilities, name, min_rows=1)
    if p.min() < 0 or np.max(np.abs(p.sum(axis=1) - 1.0)) > 1e-3:
        raise EbmZooError(
            f"`{name}` (shape {p.shape}) must have rows of probabilities >= 0 summing to 1; got values "
            f"in [{p.min():.3g}, {p.max():.3g}]. If these are logits, apply a softmax."
        )
    return p


def classifier_score(probabilities, *, splits: int = 10) -> MeanStd:
    """Classifier score exp(E_x KL(p(y|x) || p(y))): the Inception score computed with any classifier.

    Args:
      probabilities: [N, K] softmax outputs p(y|x) of the classifier (rows sum to 1).
      splits: p(y) and the score are computed per consecutive chunk of rows, as for the Inception
        score; must be <= N.

    Returns:
      MeanStd over the chunks; each score lies in [1, K]: K for confident predictions spread
      evenly over the K classes, 1 when every prediction equals the marginal.
    """
    return inception_score(probabilities, splits=splits)


def effective_num_classes(probabilities) -> float:
    """exp(H(p̄)), p̄ = mean over rows of p(y|x): how many classes the samples cover.

    Args:
      probabilities: [N, K] softmax outputs (rows sum to 1), N >= 1.

    Returns:
      A float in [1, K]: K when p̄ is uniform, 1 when every sample goes to the same class
      (whatever the confidence), m when the samples are spread evenly over m classes.
    """
    p = _as_probabilities(probabilities)
    mean = p.mean(axis=0)
    mean = mean[mean > 0]
    return float(np.exp(-(mean * np.log(mean)).sum()))


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.clip(sq, 0.0, None)


def knn_radii(features, k: int = 3, *, block: int = 1024) -> np.ndarray:
    """Squared distance from each row to its k-th nearest neighbour among the other rows.

    Args:
      features: [N, D] activations, N > k.
      k: neighbour rank (1 = nearest other point).
      block: rows per distance block (bounds memory to block x N floats).

    Returns:
      float64 [N] squared radii (the k-NN ball of row i is {y : |y - x_i|² <= r_i}).
    """
    check_positive(k, "k")
    x = as_activations(features, "features")
    n = x.shape[0]
    if n <= k:
        raise EbmZooError(f"k-NN radii with k={k} need more than {k} rows, got {n}; use a smaller k.")
    radii = np.empty(n)
    for start in range(0, n, block):
        d = _squared_distances(x[start : start + block], x)
        rows = np.arange(d.shape[0])
        d[rows, start + rows] = np.inf  # exclude the point itself
        radii[start : start + block] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return radii


def _fraction_inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, block: int) -> float:
    """Fraction of `points` inside at least one ball (centres[j], radii[j])."""
    inside = np.zeros(points.shape[0], bool)
    for start in range(0, points.shape[0], block):
        d = _squared_distances(points[start : start + block], centres)
        inside[start : start + block] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


@single_threaded_blas
def precision_recall(real_features, fake_features, *, k: int = 3, block: int = 1024) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    The real manifold is the union of the balls around each real row with radius its distance to
    the k-th nearest other real row; the fake manifold likewise. Precision = fraction of fake rows
    inside the real manifold; recall = fraction of real rows inside the fake manifold. A point on
    a ball's boundary counts as inside.

    Args:
      real_features: [N, D] activations of real images, N > k.
      fake_features: [M, D] activations of generated images, M > k.
      k: neighbour rank of the radii (3 in the paper).
      block: rows per distance block (memory).

    Returns:
      PrecisionRecall(precision, recall), both in [0, 1]. The radii shrink as N, M grow, so figures
      are comparable only at equal N and M.
    """
    real = as_activations(real_features, "real_features")
    fake = as_activations(fake_features, "fake_features")
    same_dim(real, fake, "real_features", "fake_features")
    check_positive(block, "block")
    real_radii = knn_radii(real, k, block=block)
    fake_radii = knn_radii(fake, k, block=block)
    return PrecisionRecall(
        precision=_fraction_inside(fake, real, real_radii, block),
        recall=_fraction_inside(real, fake, fake_radii, block),
    )
