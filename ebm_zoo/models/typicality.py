"""The fitted part of the typicality OOD score (`EnergyModel.ood_score(method="typicality")`).

`EnergyModel.fit_ood(train_images)` turns the [M, D] statistics of in-distribution images into a
`TypicalityFit`: their mean, a whitening matrix W (the inverse Cholesky factor of their
covariance), the whitened statistics as kernel centres and Scott's bandwidth M^(−1/(D+4)). The
score of an image with statistics s is −log (1/M) Σᵢ N(W(s − mean); cᵢ, h²I).

A fit is saved as one `.npz` of plain float64/int arrays (no pickles), `ood_fit.npz` inside a
preset directory (sha256-listed in its metadata.json, loaded by `ebm_zoo.load`), so a shipped
preset scores OOD images offline, without its training data. `neg_log_density_tf` is the same
density in TensorFlow (float64), used by the served `ood_typicality` signature.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebm_zoo.utils.checks import EbmZooError

#: File name of a fit inside a preset directory.
FIT_FILE = "ood_fit.npz"
#: The statistics (columns) of `EnergyModel.ood_statistics`, in order.
STATISTICS = ("score", "log_grad_norm", "perturbation_gain")
#: Largest fit file `load` reads (a 100,000-image fit is 2.4 MB).
MAX_FIT_BYTES = 64 * 2**20
_ARRAYS = ("mean", "whiten", "centres", "bandwidth", "seed", "perturbation", "version")
VERSION = 1


def kde_neg_log_density(points, centres, bandwidth: float) -> np.ndarray:
    """−log of the Gaussian kernel density (1/M) Σᵢ N(p; cᵢ, h²I) at each row of points [N, D]
    (centres [M, D], h = bandwidth), computed stably in chunks."""
    points, centres = np.asarray(points, np.float64), np.asarray(centres, np.float64)
    m, d = centres.shape
    h2 = float(bandwidth) ** 2
    out = np.empty(len(points))
    for i in range(0, len(points), 1024):
        p = points[i : i + 1024]
        sq = (p * p).sum(1)[:, None] - 2.0 * p @ centres.T + (centres * centres).sum(1)[None, :]
        a = -np.maximum(sq, 0.0) / (2.0 * h2)
        top = a.max(1)
        lse = top + np.log(np.exp(a - top[:, None]).sum(1))
        out[i : i + 1024] = -(lse - np.log(m) - 0.5 * d * np.log(2.0 * np.pi * h2))
    return out


@dataclass(frozen=True, eq=False)
class TypicalityFit:
    """A fitted typicality score: see the module docstring."""

    mean: np.ndarray  # [D]
    whiten: np.ndarray  # [D, D], lower triangular
    centres: np.ndarray  # [M, D], whitened reference statistics
    bandwidth: float
    seed: int  # the seed of the reference statistics' perturbation draws
    perturbation: float  # the gray-level scale of that perturbation

    @classmethod
    def from_statistics(cls, stats, seed: int, perturbation: float) -> TypicalityFit:
        """The fit of reference statistics [M, D] (M ≥ 10, finite)."""
        stats = np.asarray(stats, np.float64)
        if stats.ndim != 2 or len(stats) < 10:
            raise EbmZooError(f"A typicality fit needs [M >= 10, D] statistics, got shape {stats.shape}.")
        if not np.all(np.isfinite(stats)):
            raise EbmZooError(
                "fit_ood: the reference images' statistics are not finite (the energy diverged)."
            )
        mean = stats.mean(0)
        cov = np.atleast_2d(np.cov(stats.T))
        cov = cov + 1e-9 * max(float(np.trace(cov)), 1e-12) * np.eye(len(cov))
        whiten = np.linalg.inv(np.linalg.cholesky(cov))  # kernels shaped like the data (as scipy's KDE)
        centres = (stats - mean) @ whiten.T
        bandwidth = float(len(centres) ** (-1.0 / (centres.shape[1] + 4)))  # Scott's rule
        return cls(mean, whiten, centres, bandwidth, int(seed), float(perturbation))

    @property
    def num_reference(self) -> int:
        return int(self.centres.shape[0])

    def summary(self) -> dict:
        """num_reference, mean, std (of the unwhitened statistics) and bandwidth."""
        cov = np.linalg.inv(self.whiten.T @ self.whiten)
        return {
            "num_reference": self.num_reference,
            "mean": self.mean.tolist(),
            "std": np.sqrt(np.diag(cov)).tolist(),
            "bandwidth": self.bandwidth,
        }

    def whitened(self, stats) -> np.ndarray:
        return (np.asarray(stats, np.float64) - self.mean) @ self.whiten.T

    def neg_log_density(self, stats) -> np.ndarray:
        """The score [N] of statistics [N, D] (float64)."""
        return kde_neg_log_density(self.whitened(stats), self.centres, self.bandwidth)

    def neg_log_density_tf(self, stats):
        """The score [N] of a statistics tensor [N, D], in float64 TensorFlow ops (the fit's
        arrays become graph constants): the served twin of `neg_log_density`."""
        import tensorflow as tf

        stats = tf.cast(stats, tf.float64)
        z = tf.matmul(stats - tf.constant(self.mean), tf.constant(self.whiten), transpose_b=True)
        c = tf.constant(self.centres)
        sq = (
            tf.reduce_sum(z * z, 1, keepdims=True)
            - 2.0 * tf.matmul(z, c, transpose_b=True)
            + tf.reduce_sum(c * c, 1)[None, :]
        )
        h2 = self.bandwidth**2
        m, d = self.centres.shape
        lse = tf.reduce_logsumexp(-tf.maximum(sq, 0.0) / (2.0 * h2), axis=1)
        return -(lse - np.log(m) - 0.5 * d * np.log(2.0 * np.pi * h2))

    # ----------------------------------------------------------------------------------------
    # Files.
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            mean=self.mean,
            whiten=self.whiten,
            centres=self.centres,
            bandwidth=np.float64(self.bandwidth),
            seed=np.int64(self.seed),
            perturbation=np.float64(self.perturbation),
            version=np.int64(VERSION),
        )
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the fit to `path` (.npz) atomically."""
        from ebm_zoo.utils import atomic

        return atomic.write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike, num_statistics: int = len(STATISTICS)) -> TypicalityFit:
        """Reads and checks a fit written by `save` (EbmZooError naming the file and the fix)."""
        path = Path(path)
        fix = "re-fit it with model.fit_ood(train_images) and save it again (model.save_ood_fit)."
        if not path.is_file():
            raise EbmZooError(f"OOD fit file {path} does not exist; {fix}")
        size = path.stat().st_size
        if size > MAX_FIT_BYTES:
            raise EbmZooError(f"OOD fit file {path} is {size} bytes (> {MAX_FIT_BYTES}); not a fit file.")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in _ARRAYS if k not in z.files]
                arrays = {k: np.array(z[k]) for k in _ARRAYS if k in z.files}
        except (ValueError, OSError, EOFError) as e:
            raise EbmZooError(
                f"OOD fit file {path} is not a readable .npz ({type(e).__name__}: {e}); {fix}"
            ) from None
        if missing:
            raise EbmZooError(f"OOD fit file {path} lacks {', '.join(missing)}; {fix}")
        if int(arrays["version"]) != VERSION:
            raise EbmZooError(
                f"OOD fit file {path} has version {int(arrays['version'])}, this ebm_zoo reads {VERSION}."
            )
        d = num_statistics
        mean, whiten, centres = arrays["mean"], arrays["whiten"], arrays["centres"]
        shapes_ok = (
            mean.shape == (d,) and whiten.shape == (d, d) and centres.ndim == 2 and centres.shape[1:] == (d,)
        )
        if not shapes_ok or centres.shape[0] < 10:
            raise EbmZooError(
                f"OOD fit file {path} has shapes mean {mean.shape}, whiten {whiten.shape}, centres "
                f"{centres.shape}; expected ({d},), ({d}, {d}), (M >= 10, {d}). {fix}"
            )
        bandwidth, perturbation = float(arrays["bandwidth"]), float(arrays["perturbation"])
        numbers = (mean, whiten, centres, np.array([bandwidth, perturbation]))
        if not all(np.all(np.isfinite(np.asarray(a, np.float64))) for a in numbers) or bandwidth <= 0:
            raise EbmZooError(f"OOD fit file {path} holds non-finite values or a bandwidth <= 0; {fix}")
        return cls(
            mean.astype(np.float64),
            whiten.astype(np.float64),
            centres.astype(np.float64),
            bandwidth,
            int(arrays["seed"]),
            perturbation,
        )
