"""Inception-v3 activations for the standard FID / KID / IS, from a LOCAL model file (never downloaded).

The network is loaded from the path given as argument or by the environment variable
`$EBM_ZOO_INCEPTION`:
  * a Keras file (`.keras` or `.h5`) loadable by `keras.models.load_model`, or
  * a TensorFlow SavedModel directory (called through its `serving_default` signature, or the
    object itself if it has none).
The model must take float32 [N, 299, 299, 3] images in [-1, 1] (the Keras InceptionV3 convention)
and return either pool3 features [N, 2048] (for FID / KID; a 4-D output is averaged over space) or
class probabilities [N, 1000] (for the Inception score).

To produce the file on a machine with internet access:

    python -c "import keras; keras.applications.InceptionV3(include_top=False, pooling='avg', \\
        weights='imagenet').save('inception_v3_pool3.keras')"

(and with `include_top=True` for the classifier used by the Inception score), then copy it here
and `export EBM_ZOO_INCEPTION=/path/to/inception_v3_pool3.keras`.

Note: Keras' InceptionV3 weights are close to, but not bit-identical with, the 2015 TF graph used
by the original FID code, so absolute figures differ slightly from published ones; compare runs
that used the same file.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from ebm_zoo.metrics.features import to_rgb
from ebm_zoo.utils.checks import EbmZooError, check_images, check_positive

ENV_VAR = "EBM_ZOO_INCEPTION"
INPUT_SIZE = 299

_HOW_TO = (
    "Expected: a Keras file (.keras / .h5) or a SavedModel directory holding Inception-v3 that maps "
    f"[N, {INPUT_SIZE}, {INPUT_SIZE}, 3] images in [-1, 1] to pool3 features [N, 2048] (or to class "
    "probabilities [N, 1000] for the Inception score). ebm_zoo never downloads it. On a machine with "
    "internet access run\n"
    "  python -c \"import keras; keras.applications.InceptionV3(include_top=False, pooling='avg', "
    "weights='imagenet').save('inception_v3_pool3.keras')\"\n"
    f"copy the file here, and pass its path (e.g. --inception=/path/inception_v3_pool3.keras) or set "
    f"${ENV_VAR}=/path/inception_v3_pool3.keras. Offline alternatives that need no file: the metrics "
    "'swd', 'fd_small', 'kid_small', 'gram'."
)


def resolve_inception_path(path: str | os.PathLike | None = None) -> Path:
    """The model path: `path` if given, else $EBM_ZOO_INCEPTION; EbmZooError if neither exists."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise EbmZooError(f"No Inception-v3 model given: pass `path=` or set ${ENV_VAR}. {_HOW_TO}")
        source = f"${ENV_VAR}"
    else:
        source = "`path`"
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise EbmZooError(f"The Inception-v3 model {resolved} (from {source}) does not exist. {_HOW_TO}")
    return resolved.resolve()


@functools.lru_cache(maxsize=2)
def _load(path: str) -> Callable[[tf.Tensor], tf.Tensor]:
    p = Path(path)
    if p.is_dir():
        if not (p / "saved_model.pb").is_file():
            raise EbmZooError(f"{p} is a directory without saved_model.pb, so not a SavedModel. {_HOW_TO}")
        loaded = tf.saved_model.load(path)
        fn = loaded.signatures.get("serving_default") if hasattr(loaded, "signatures") else None
        if fn is None:
            if not callable(loaded):
                raise EbmZooError(f"The SavedModel {p} has no serving_default signature and is not callable.")
            return lambda x: loaded(x)
        input_name = list(fn.structured_input_signature[1].keys())
        if len(input_name) != 1:
            raise EbmZooError(
                f"The SavedModel {p} signature takes inputs {input_name}; expected exactly one (images)."
            )
        return lambda x: fn(**{input_name[0]: x})
    if p.suffix not in (".keras", ".h5"):
        raise EbmZooError(f"{p} is neither a .keras / .h5 file nor a SavedModel directory. {_HOW_TO}")
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - re-raised with the expected format
        raise EbmZooError(f"Could not load {p} with keras.models.load_model ({err}). {_HOW_TO}") from None
    return lambda x: model(x, training=False)


def load_inception(path: str | os.PathLike | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """Loads (cached per path) the Inception-v3 model as a function images -> activations.

    Args:
      path: a .keras / .h5 file or a SavedModel directory; default `$EBM_ZOO_INCEPTION`.

    Returns:
      fn(float32 [N, 299, 299, 3] in [-1, 1]) -> tf.Tensor output of the model.

    Raises:
      EbmZooError: no path, a missing path, or an unreadable file; the message says what file is
        expected and how to obtain it.
    """
    return _load(str(resolve_inception_path(path)))


def inception_preprocess(images) -> tf.Tensor:
    """float [N, H, W, C] in [0, 1], C in {1, 3, 4} -> float32 [N, 299, 299, 3] in [-1, 1] (bilinear)."""
    x = to_rgb(check_images(images))
    x = tf.image.resize(x, (INPUT_SIZE, INPUT_SIZE), method="bilinear")
    return tf.clip_by_value(x, 0.0, 1.0) * 2.0 - 1.0


def inception_activations(images, path: str | os.PathLike | None = None, batch_size: int = 50) -> np.ndarray:
    """Runs the local Inception-v3 model on images.

    Args:
      images: float [N, H, W, C] in [0, 1], NHWC, C in {1, 3, 4}, any size (resized to 299x299).
      path: the model (see `load_inception`); default `$EBM_ZOO_INCEPTION`.
      batch_size: images per forward pass.

    Returns:
      float64 numpy [N, D]: pool3 features (D = 2048) for a pooled model, for FID / KID; or the
      model's class probabilities (D = 1000) for a classifier, for the Inception score. A 4-D
      output is averaged over its spatial axes.
    """
    check_positive(batch_size, "batch_size")
    fn = load_inception(path)
    x = check_images(images)
    outputs = []
    for i in range(0, int(x.shape[0]), batch_size):
        out = fn(inception_preprocess(x[i : i + batch_size]))
        if isinstance(out, dict):
            if len(out) != 1:
                raise EbmZooError(f"The Inception model returns {sorted(out)}; expected a single output.")
            out = next(iter(out.values()))
        if isinstance(out, (list, tuple)):
            out = out[-1]
        out = tf.convert_to_tensor(out)
        if out.shape.rank == 4:
            out = tf.reduce_mean(out, axis=(1, 2))
        if out.shape.rank != 2:
            raise EbmZooError(
                f"The Inception model returned shape {tuple(out.shape)}; expected [N, D]. {_HOW_TO}"
            )
        outputs.append(out.numpy())
    return np.concatenate(outputs).astype(np.float64)
