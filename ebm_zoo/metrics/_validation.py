"""Input checks shared by the metric functions (numpy only; errors are EbmZooError)."""

from __future__ import annotations

import functools

import numpy as np

from ebm_zoo.utils.checks import EbmZooError


def as_activations(x, name: str, *, min_rows: int = 2) -> np.ndarray:
    """Returns `x` as a float64 [N, D] array, or raises EbmZooError saying what is wrong."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise EbmZooError(
            f"`{name}` must be a numeric array of activations [N, D]; got {type(x)}: {err}"
        ) from None
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 4:
            hint = " These look like images: run a feature extractor first (e.g. ebm_zoo.metrics.extract_features)."
        elif arr.ndim == 1:
            hint = " For a single vector per sample use x[:, None]."
        raise EbmZooError(f"`{name}` must be 2-D activations [N, D], got shape {arr.shape}.{hint}")
    if arr.shape[0] < min_rows:
        raise EbmZooError(f"`{name}` needs at least {min_rows} rows (samples), got shape {arr.shape}.")
    if arr.shape[1] < 1:
        raise EbmZooError(f"`{name}` has no feature columns, got shape {arr.shape}.")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        rows = np.unique(np.nonzero(~finite)[0])[:5].tolist()
        raise EbmZooError(
            f"`{name}` contains {bad} NaN/inf values (shape {arr.shape}; first bad rows {rows}); "
            "drop or fix those samples (diverged samples usually mean a diverged sampler)."
        )
    return arr


def same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raises EbmZooError unless the two activation sets have the same feature dimension."""
    if a.shape[1] != b.shape[1]:
        raise EbmZooError(
            f"`{name_a}` has {a.shape[1]} features per row but `{name_b}` has {b.shape[1]} "
            f"(shapes {a.shape} vs {b.shape}); compute both with the same extractor."
        )


def as_image_batch(images, name: str, *, min_size: int = 1) -> np.ndarray:
    """Returns images as float32 [N, H, W, C] numpy in [0, 1] (validated), or raises EbmZooError."""
    if isinstance(images, (list, tuple)):
        try:
            images = np.stack([np.asarray(im) for im in images])
        except ValueError as err:
            raise EbmZooError(
                f"`{name}` is a list of images of different shapes ({err}); resize them to one size "
                "or pass them to a function that accepts mixed sizes (e.g. gram_distance)."
            ) from None
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        raise EbmZooError(
            f"`{name}` is uint8 (shape {arr.shape}); metrics take float images in [0, 1]: pass `{name} / 255.0`."
        )
    if not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool
    ):
        raise EbmZooError(f"`{name}` must be a float array in [0, 1], got dtype {arr.dtype}.")
    if arr.ndim != 4:
        hint = " Add a batch axis with `x[None]`." if arr.ndim == 3 else ""
        if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):
            hint = " For a gray batch [N, H, W] add a channel axis with `x[..., None]`."
        raise EbmZooError(f"`{name}` must be a 4-D NHWC batch [N, H, W, C], got shape {arr.shape}.{hint}")
    if arr.shape[0] < 1:
        raise EbmZooError(f"`{name}` is empty (shape {arr.shape}).")
    if min(arr.shape[1:3]) < min_size:
        raise EbmZooError(
            f"`{name}` images are {arr.shape[1]}x{arr.shape[2]}; need at least {min_size}x{min_size}."
        )
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise EbmZooError(f"`{name}` contains {bad} NaN/inf values (shape {arr.shape}); clean the input.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        hint = ""
        if hi > 1.5:
            hint = " It looks like [0, 255]: divide by 255."
        elif lo < 0:
            hint = " It looks like [-1, 1]: map with (x + 1) / 2."
        raise EbmZooError(f"`{name}` values lie in [{lo:.4g}, {hi:.4g}] but must lie in [0, 1].{hint}")
    return arr


def single_threaded_blas(fn):
    """Runs `fn` with numpy's BLAS limited to one thread (threadpoolctl, if installed).

    The metric matrices are small to medium; on a shared CPU, OpenBLAS's worker threads spin and
    were measured 3-100x slower in wall time than one thread (2-core machine, load ~15), with no
    gain on an idle machine worth that risk.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper
