"""The MNIST evaluation protocol: fixed settings, one report per sample set.

Settings (`PROTOCOL`): 5,000 samples against the 10,000 MNIST test images, seed 0. Every figure
uses the dedicated MNIST classifier (`ebm_zoo.metrics.mnist_classifier`, sha256-pinned):

  * fd_mnist           Fréchet distance of the 128-d penultimate features (lower is better);
  * kid_mnist          KID (unbiased MMD², cubic kernel) of the same features, 100 subsets of
                       1,000 rows, reported as is (not ×1e3), with kid_mnist_std;
  * classifier_score   exp(E KL(p(y|x) || p(y))) over 10 chunks of 500 samples (the 10,000 test
                       images score 9.83 in 10 chunks of 1,000);
  * effective_classes  exp(H(mean p(y|x))) (test images: 9.98);
  * precision, recall  k-NN manifolds (k = 3; Kynkäänniemi et al. 2019) of the L2-normalised
                       features, the 10,000 test images as the real set. Normalised because in
                       the raw ReLU features degenerate images (noise, blur) land near the
                       origin, inside the huge k-NN balls of faint, low-activation test digits:
                       measured raw-space precision was 1.00 for the Gaussian baseline and 0.9998
                       for the blur baseline (0.29 and 0.12 after normalisation; the floor's is
                       0.86 raw, 0.84 normalised);
  * class_fractions    share of samples per predicted digit.

Reference rows computed by the same code (`reference_images`):
  * "floor":    5,000 MNIST train images (seeded choice) — what a perfect sampler scores;
  * "gaussian": independent per-pixel Gaussian (mean and std of each pixel over the 60,000 train
                images), drawn 5,000 times and clipped to [0, 1];
  * "blur":     the floor's 5,000 train images through a 7×7 box filter (mean of the 7×7
                neighbourhood, zero padding = MNIST's black background).

Samples from a model: `evaluate_mnist(sample_fn)` calls `sample_fn(n, seed=...)` in chunks of
`sample_batch` (default 250) with `seed=seed * 1_000_000 + i` for chunk i, so a report is
reproducible given (model, seed, sample_batch). It never imports a model: the CLI passes
`ebm_zoo.load(name).sample`.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable

import numpy as np

from ebm_zoo.metrics import distances, fidelity
from ebm_zoo.metrics import mnist_classifier as M
from ebm_zoo.utils import machine
from ebm_zoo.utils.atomic import atomic_write_text
from ebm_zoo.utils.checks import SEED_LIMIT, EbmZooError, check_choice, check_count, check_seed
from ebm_zoo.utils.images import save_grid

PROTOCOL = {
    "name": "mnist",
    "num_samples": 5000,
    "num_reference": 10000,
    "reference_split": "test",
    "seed": 0,
    "k": 3,
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "score_splits": 10,
    "precision_recall_features": "L2-normalised penultimate features",
    "grid": 64,
}
REFERENCES = ("floor", "gaussian", "blur")
BLUR_SIZE = 7
CHUNK_SEED_STRIDE = 1_000_000


@functools.cache
def _mnist_arrays() -> dict[str, np.ndarray]:
    from ebm_zoo.metrics.mnist_training import load_mnist_arrays

    return load_mnist_arrays()


def mnist_images(split: str) -> np.ndarray:
    """MNIST images float32 [N, 28, 28, 1] in [0, 1] ("train": 60,000; "test": 10,000)."""
    check_choice(split, "split", ("train", "test"))
    return _mnist_arrays()[f"x_{split}"]


@functools.cache
def _test_outputs(weights_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    return M.mnist_outputs(mnist_images("test"), weights_path=weights_path)


def box_blur(images: np.ndarray, size: int = BLUR_SIZE) -> np.ndarray:
    """Mean over each pixel's size×size neighbourhood (zero padding), per image and channel.

    Args:
      images: float [N, H, W, C].

    Returns:
      float32 [N, H, W, C]; values stay in [0, 1] for inputs in [0, 1].
    """
    import scipy.ndimage

    x = np.asarray(images, np.float32)
    blurred = scipy.ndimage.uniform_filter(x, size=(1, size, size, 1), mode="constant", cval=0.0)
    return np.clip(blurred, 0.0, 1.0)  # float32 round-off of the running mean


def reference_images(
    kind: str, num: int = PROTOCOL["num_samples"], seed: int = PROTOCOL["seed"]
) -> np.ndarray:
    """The images of a reference row: "floor", "gaussian" or "blur" (see the module docstring).

    Returns:
      float32 [num, 28, 28, 1] in [0, 1].
    """
    check_choice(kind, "kind", REFERENCES)
    num = check_count(num, "num")
    rng = np.random.default_rng(_protocol_seed(seed))
    train = mnist_images("train")
    if kind == "gaussian":
        mean, std = train.mean(axis=0), train.std(axis=0)
        draws = mean + std * rng.standard_normal((num, *train.shape[1:]))
        return np.clip(draws, 0.0, 1.0).astype(np.float32)
    if num > len(train):
        raise EbmZooError(f"`num`={num} exceeds the {len(train)} MNIST train images.")
    chosen = train[np.sort(rng.choice(len(train), num, replace=False))]
    return chosen if kind == "floor" else box_blur(chosen)


def _protocol_seed(seed) -> int:
    seed = check_seed(seed)
    if seed is None or seed >= SEED_LIMIT // CHUNK_SEED_STRIDE:
        raise EbmZooError(
            f"`seed` must be an int in [0, {SEED_LIMIT // CHUNK_SEED_STRIDE}) for the MNIST protocol "
            f"(reports must be reproducible), got {seed!r}; the protocol's seed is {PROTOCOL['seed']}."
        )
    return seed


def draw_samples(
    sample_fn: Callable, num_samples: int, seed: int, sample_batch: int = 250
) -> tuple[np.ndarray, dict]:
    """Calls `sample_fn(n, seed=seed * 1_000_000 + i)` for chunks i of `sample_batch` images.

    Returns:
      (images float32 [num_samples, H, W, C], timing dict with wall / process-CPU seconds).
    """
    num_samples = check_count(num_samples, "num_samples")
    sample_batch = check_count(sample_batch, "sample_batch")
    seed = _protocol_seed(seed)
    parts = []
    wall, cpu = time.perf_counter(), time.process_time()
    for i, start in enumerate(range(0, num_samples, sample_batch)):
        n = min(sample_batch, num_samples - start)
        parts.append(np.asarray(sample_fn(n, seed=seed * CHUNK_SEED_STRIDE + i), np.float32))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    images = np.concatenate(parts)
    if images.shape[0] != num_samples:
        raise EbmZooError(
            f"`sample_fn` returned {images.shape[0]} images for {num_samples} requested; it must "
            "return exactly n images [n, H, W, C] per call."
        )
    timing = {
        "sampling_wall_seconds": round(wall, 2),
        "sampling_cpu_seconds": round(cpu, 2),
        "sampling_cpu_seconds_per_100": round(100.0 * cpu / num_samples, 3),
        "sample_batch": sample_batch,
        "machine": machine.summary(),  # the CPU the sampling CPU-s were measured on, and its load
    }
    return images, timing


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def evaluate_mnist(
    samples,
    *,
    num_samples: int = PROTOCOL["num_samples"],
    seed: int = PROTOCOL["seed"],
    sample_batch: int = 250,
    num_reference: int | None = None,
    weights_path: str | os.PathLike | None = None,
    k: int = PROTOCOL["k"],
) -> dict:
    """Runs the MNIST protocol on a sample set.

    Args:
      samples: float images [N, H, W, C] in [0, 1] (28x28, or 32x32 = MNIST padded by 2 px;
        see `mnist_classifier.mnist_input`), or a callable `sample_fn(n, seed=...)` returning such images
        (e.g. `ebm_zoo.load(name).sample`), then called for `num_samples` images.
      num_samples: samples drawn from a callable (ignored for arrays; the protocol uses 5,000).
      seed: seed of the sample chunks and of the KID subsets.
      sample_batch: images per `sample_fn` call.
      num_reference: use only the first n test images (tests; the protocol uses all 10,000).
      weights_path: another classifier file (default: the shipped, sha256-checked one).
      k: neighbour rank of precision / recall.

    Returns:
      A JSON-ready dict: the figures (fd_mnist, kid_mnist, kid_mnist_std, classifier_score,
      classifier_score_std, effective_classes, precision, recall), class_fractions [10],
      num_samples, num_reference, seed, the protocol settings, the classifier's sha256, timings
      and `standard` (True when the settings are the fixed protocol's).
    """
    seed = _protocol_seed(seed)
    timing: dict = {}
    if callable(samples):
        images, timing = draw_samples(samples, num_samples, seed, sample_batch)
    else:
        images = np.asarray(samples, np.float32)
    start = time.perf_counter()
    wp = None if weights_path is None else str(weights_path)
    fake_f, fake_p = M.mnist_outputs(images, weights_path=wp)
    real_f, _ = _test_outputs(wp)
    if num_reference is not None:
        real_f = real_f[: check_count(num_reference, "num_reference")]
    splits = min(PROTOCOL["score_splits"], fake_p.shape[0])
    score = fidelity.classifier_score(fake_p, splits=splits)
    kid = distances.kernel_inception_distance(
        fake_f,
        real_f,
        num_subsets=PROTOCOL["kid_subsets"],
        subset_size=PROTOCOL["kid_subset_size"],
        seed=seed,
    )
    pr = fidelity.precision_recall(_unit_rows(real_f), _unit_rows(fake_f), k=k)
    n = int(fake_f.shape[0])
    report = {
        "fd_mnist": distances.frechet_distance(fake_f, real_f),
        "kid_mnist": kid.mean,
        "kid_mnist_std": kid.std,
        "classifier_score": score.mean,
        "classifier_score_std": score.std,
        "effective_classes": fidelity.effective_num_classes(fake_p),
        "precision": pr.precision,
        "recall": pr.recall,
        "class_fractions": np.bincount(fake_p.argmax(1), minlength=M.NUM_CLASSES).astype(float) / n,
        "num_samples": n,
        "num_reference": int(real_f.shape[0]),
        "seed": seed,
        "k": k,
        "standard": bool(
            n == PROTOCOL["num_samples"]
            and real_f.shape[0] == PROTOCOL["num_reference"]
            and seed == PROTOCOL["seed"]
            and k == PROTOCOL["k"]
            and weights_path is None
        ),
        "protocol": dict(PROTOCOL),
        "classifier_sha256": M.WEIGHTS_SHA256 if weights_path is None else M.file_sha256(weights_path),
        "metric_seconds": round(time.perf_counter() - start, 2),
        **timing,
    }
    report["class_fractions"] = [round(float(v), 4) for v in report["class_fractions"]]
    return report


def write_mnist_report(report: dict, images, out_dir: str | os.PathLike, name: str) -> dict:
    """Writes <out_dir>/report.json (with `name`) and <out_dir>/samples.png (first 64 images, 8×8).

    Returns:
      The report with "name" and "files" added.
    """
    out_dir = os.fspath(out_dir)
    images = np.asarray(images, np.float32)
    report = {"name": name, **report}
    files = {"report": os.path.join(out_dir, "report.json"), "sheet": os.path.join(out_dir, "samples.png")}
    save_grid(images[: PROTOCOL["grid"]], files["sheet"], ncol=8)
    report["files"] = files
    atomic_write_text(files["report"], json.dumps(report, indent=2) + "\n")
    return report


def run_mnist_protocol(samples, out_dir: str | os.PathLike, name: str, **kwargs) -> dict:
    """`evaluate_mnist` + `write_mnist_report`: the JSON report and the 8×8 PNG sheet in `out_dir`.

    Args:
      samples: images or `sample_fn(n, seed=...)` as for `evaluate_mnist`.
      out_dir: output directory; name: the row name stored in the report.
      **kwargs: forwarded to `evaluate_mnist`.
    """
    if callable(samples):
        images, timing = draw_samples(
            samples,
            kwargs.pop("num_samples", PROTOCOL["num_samples"]),
            kwargs.get("seed", PROTOCOL["seed"]),
            kwargs.pop("sample_batch", 250),
        )
    else:
        images, timing = np.asarray(samples, np.float32), {}
    report = evaluate_mnist(images, **kwargs)
    report.update(timing)
    return write_mnist_report(report, images, out_dir, name)


def reference_report(kind: str, out_dir: str | os.PathLike | None = None, **kwargs) -> dict:
    """Runs the protocol on a reference row ("floor", "gaussian", "blur").

    Writes the report and sheet when `out_dir` is given; returns the report either way.
    """
    images = reference_images(kind)
    if out_dir is None:
        return {"name": kind, **evaluate_mnist(images, **kwargs)}
    return run_mnist_protocol(images, out_dir, kind, **kwargs)
