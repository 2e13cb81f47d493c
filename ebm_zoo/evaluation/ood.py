"""Out-of-distribution evaluation on MNIST: AUROC of `model.ood_score` between MNIST test digits
(in-distribution, label 0) and each of six out-of-distribution sets (label 1).

    from ebm_zoo.evaluation import ood
    report = ood.evaluate_ood(model.ood_score)          # {"auroc": {"noise": ..., ...}, ...}
    python tools/eval.py --preset=ggcn_mnist --protocol=mnist_ood   # writes <out>/ood.json

The sets (all gray, at the model's image size, default 28×28, pixels in [0, 1]):

| set       | images                                                                        |
|-----------|-------------------------------------------------------------------------------|
| noise     | i.i.d. uniform pixels                                                         |
| constant  | one uniform gray level per image                                              |
| inverted  | 1 − x of MNIST test digits (other digits than the in-distribution ones)       |
| textures  | crops of scikit-image's brick, grass and gravel textures (test columns)       |
| faces     | the 100 LFW face crops of scikit-image's `lfw_subset`                          |
| photos    | crops of the six scikit-image photos (test columns), converted to gray        |

Crops are `CROP_SIZE`×`CROP_SIZE` source pixels resized to the image size. AUROC = P(score of a
random OOD image > score of a random in-distribution image), ties counted ½
(`sklearn.metrics.roc_auc_score`); 1 = perfect, 0.5 = chance, 0 = ranked backwards.

All images are scored in ONE pass over a seeded shuffle of every set together, in batches of
`batch_size`: a model whose energy uses batch statistics (multi-grid with BatchNorm) then never
sees a batch made of one set only, which would hide the set's shift in the normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ebm_zoo.utils.checks import EbmZooError, check_choice, check_count, check_seed

OOD_SETS = ("noise", "constant", "inverted", "textures", "faces", "photos")
CROP_SIZE = 56
NUM_FACES = 100  # scikit-image's lfw_subset has 100 faces


def _resize(images: np.ndarray, image_size: int) -> np.ndarray:
    if images.shape[1] == image_size:
        return images
    import tensorflow as tf

    return tf.image.resize(images, [image_size, image_size], antialias=True).numpy().clip(0.0, 1.0)


def mnist_test_images(image_size: int = 28) -> np.ndarray:
    """The 10,000 MNIST test digits, float32 [10000, S, S, 1] in [0, 1]."""
    from ebm_zoo.metrics.mnist_protocol import mnist_images

    return _resize(mnist_images("test"), image_size).astype(np.float32)


def fit_typicality(model, num: int = 4000, seed: int = 0, batch_size: int = 250) -> dict:
    """Fits `model.ood_score(method="typicality")` on `num` MNIST *train* digits (a seeded random
    subset; the evaluation uses test digits) at the model's size; returns the fit summary."""
    from ebm_zoo.metrics.mnist_protocol import mnist_images

    num, seed = check_count(num, "num"), check_seed(seed, "seed")
    train = mnist_images("train")
    if num > len(train):
        raise EbmZooError(f"`num` is {num} but MNIST has {len(train)} train digits; pass at most that.")
    idx = np.sort(np.random.default_rng(seed).choice(len(train), num, replace=False))
    images = _resize(train[idx], int(model.image_size)).astype(np.float32)
    return {"split": "train", **model.fit_ood(images, seed=seed, batch_size=batch_size)}


def ood_images(name: str, n: int, image_size: int = 28, seed: int = 0) -> np.ndarray:
    """`n` images of OOD set `name` (faces: at most 100), float32 [n, S, S, 1] in [0, 1]."""
    from ebm_zoo.data import load_array

    check_choice(name, "name", OOD_SETS)
    n, seed = check_count(n, "n"), check_seed(seed, "seed")
    image_size = check_count(image_size, "image_size")
    rng = np.random.default_rng([seed, OOD_SETS.index(name)])
    s = image_size
    if name == "noise":
        x = rng.uniform(0.0, 1.0, (n, s, s, 1))
    elif name == "constant":
        x = np.broadcast_to(rng.uniform(0.0, 1.0, (n, 1, 1, 1)), (n, s, s, 1))
    elif name == "inverted":
        test = mnist_test_images(s)
        # The last n test digits: disjoint from the first ones used as the in-distribution set.
        x = 1.0 - test[len(test) - n :]
    elif name == "faces":
        x = load_array("lfw_faces", s, split="all", channels=1)[:n]
    else:
        per = math.ceil(n / 3) if name == "textures" else n
        names = [f"textures/{t}" for t in ("brick", "grass", "gravel")] if name == "textures" else ["photos"]
        x = np.concatenate(
            [
                load_array(k, s, split="test", channels=1, seed=seed, crop_size=CROP_SIZE, num_crops=per)
                for k in names
            ]
        )[:n]
    return np.ascontiguousarray(x, dtype=np.float32)


def auroc(scores_in, scores_out) -> float:
    """AUROC of separating `scores_out` (positives) from `scores_in` by "higher = OOD"."""
    from sklearn.metrics import roc_auc_score

    a, b = np.asarray(scores_in, np.float64).ravel(), np.asarray(scores_out, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise EbmZooError(f"auroc needs scores of both sets, got {a.size} and {b.size}.")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise EbmZooError("auroc got non-finite scores; the model's ood_score diverged on some images.")
    labels = np.concatenate([np.zeros(a.size), np.ones(b.size)])
    return float(roc_auc_score(labels, np.concatenate([a, b])))


def score_images(score_fn: Callable, images: np.ndarray, batch_size: int = 250) -> np.ndarray:
    """score_fn applied batch by batch; float64 [N]."""
    batch_size = check_count(batch_size, "batch_size")
    out = []
    for i in range(0, len(images), batch_size):
        s = np.asarray(score_fn(images[i : i + batch_size]), np.float64).reshape(-1)
        if s.shape[0] != len(images[i : i + batch_size]):
            raise EbmZooError(
                f"score_fn returned {s.shape[0]} scores for {len(images[i : i + batch_size])} images; "
                "it must return one score per image."
            )
        out.append(s)
    return np.concatenate(out)


def evaluate_ood(
    score_fn: Callable,
    num_in: int = 2000,
    num_per_set: int = 1000,
    sets=OOD_SETS,
    image_size: int = 28,
    seed: int = 0,
    batch_size: int = 250,
) -> dict:
    """AUROC of `score_fn` (e.g. `model.ood_score`; images [N, S, S, 1] in [0, 1] -> [N], higher =
    OOD) for MNIST test (the first `num_in` digits) vs each OOD set (`num_per_set` images each;
    faces: at most 100).

    Returns {"auroc": {set: float}, "mean_score": {"mnist": ..., set: ...}, "settings": {...}}.
    """
    num_in, num_per_set = check_count(num_in, "num_in"), check_count(num_per_set, "num_per_set")
    seed, image_size = check_seed(seed, "seed"), check_count(image_size, "image_size")
    if isinstance(sets, str):
        sets = [sets]
    sets = list(sets)
    if not sets:
        raise EbmZooError(f"`sets` is empty; pass some of {', '.join(OOD_SETS)}.")
    for name in sets:
        check_choice(name, "sets", OOD_SETS)
    if num_in + ("inverted" in sets) * num_per_set > 10_000:
        raise EbmZooError(
            f"num_in ({num_in}) + num_per_set ({num_per_set}) for the inverted set exceed the 10,000 "
            "MNIST test digits; lower them."
        )
    groups = {"mnist": mnist_test_images(image_size)[:num_in]}
    for name in sets:
        groups[name] = ood_images(name, num_per_set, image_size, seed)
    names = list(groups)
    images = np.concatenate([groups[k] for k in names])
    owner = np.concatenate([np.full(len(groups[k]), i) for i, k in enumerate(names)])
    order = np.random.default_rng([seed, 7]).permutation(len(images))
    scores = np.empty(len(images))
    scores[order] = score_images(score_fn, images[order], batch_size)
    by = {k: scores[owner == i] for i, k in enumerate(names)}
    return {
        "auroc": {k: auroc(by["mnist"], by[k]) for k in sets},
        "mean_score": {k: float(np.mean(v)) for k, v in by.items()},
        "settings": {
            "num_in": num_in,
            "num_per_set": {k: len(groups[k]) for k in sets},
            "image_size": image_size,
            "seed": seed,
            "batch_size": batch_size,
            "crop_size": CROP_SIZE,
            "in_distribution": "MNIST test digits 0..num_in-1 (inverted set: the last digits)",
            "scoring": "one pass over a seeded shuffle of all sets (mixed batches)",
        },
    }


def constant_levels(
    score_fn: Callable,
    num_in: int = 2000,
    num_constant: int = 1000,
    quantile: float = 0.95,
    image_size: int = 28,
    seed: int = 0,
    batch_size: int = 250,
) -> dict:
    """Which constant images a score takes for digits: the gray levels of the constant images
    scored below the `quantile` of the MNIST test digits' scores (so inside the digits' range), and
    the AUROC of the constant set with and without the near-black ones (level < 0.1).

    The constant set of `evaluate_ood` spreads its gray levels uniformly over [0, 1]; an image of
    level ≈ 0 is MNIST's empty black canvas. Returns {"auroc", "auroc_level_ge_0.1",
    "num_inside", "inside_max_level", "inside_levels", "settings"}.
    """
    if not 0.0 < float(quantile) < 1.0:
        raise EbmZooError(f"quantile must be in (0, 1), got {quantile}.")
    num_in, num_constant = check_count(num_in, "num_in"), check_count(num_constant, "num_constant")
    digits = mnist_test_images(image_size)[:num_in]
    const = ood_images("constant", num_constant, image_size, seed)
    level = const.reshape(len(const), -1)[:, 0].astype(np.float64)
    s_in = score_images(score_fn, digits, batch_size)
    s_c = score_images(score_fn, const, batch_size)
    inside = s_c < np.quantile(s_in, quantile)
    bright = level >= 0.1
    return {
        "auroc": auroc(s_in, s_c),
        "auroc_level_ge_0.1": auroc(s_in, s_c[bright]) if bright.any() else None,
        "num_inside": int(inside.sum()),
        "inside_max_level": float(level[inside].max()) if inside.any() else None,
        "inside_levels": [round(float(v), 4) for v in np.sort(level[inside])],
        "settings": {
            "num_in": num_in,
            "num_constant": num_constant,
            "quantile": float(quantile),
            "image_size": image_size,
            "seed": seed,
        },
    }
