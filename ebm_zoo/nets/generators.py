"""Generators G_α: latent code h ~ N(0, I) → image, by learned up-sampling (GGCN, MODELS.md §3).

GGCN's "trainable non-linear up-sampling function" replaces the fixed pixel replication between
the grids of the multi-grid model by learned blocks. Our reading [reconstruction]:

    h  [N, s, s, c] (spatial code)  --conv 3×3-->  [N, s, s, F]
    h  [N, d]       (vector code)   --dense----->  [N, s, s, F]
    then  log2(image_size / s)  blocks, each doubling H and W and halving the filters:
          up-sample ×2 (transposed conv 4×4 s2, or nearest + conv 3×3) → norm → activation
    then  conv 3×3 → C channels → tanh   (output in [−1, 1], the GGCN internal scale)

Every choice above is an argument of `build_generator`, so a config can change it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from ebm_zoo.nets.precision import output_dtype
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive

NORMS = ("none", "layer", "batch")
UPSAMPLES = ("transpose", "nearest")
OUTPUTS = ("tanh", "linear")


def latent_base_size(latent_shape: Sequence[int], base_size: int) -> int:
    """Spatial size s of the first feature map: the code's own size, or `base_size` for vectors."""
    return int(latent_shape[0]) if len(latent_shape) == 3 else int(base_size)


def check_latent_shape(latent_shape: Sequence[int], image_size: int, base_size: int = 4) -> int:
    """Validates a latent shape against the image size and returns the number of ×2 blocks.

    Args:
      latent_shape: [d] (a vector code) or [s, s, c] (a spatial code).
      image_size: H = W of the generated images; must equal s·2^B for some B ≥ 0.
      base_size: s for vector codes (the dense layer's output size).

    Raises:
      EbmZooError: a shape of another rank, non-positive entries, a non-square spatial code, or a
        size that does not double up to `image_size`.
    """
    shape = [int(v) for v in latent_shape]
    if len(shape) not in (1, 3) or min(shape, default=0) <= 0:
        raise EbmZooError(
            f"`latent_shape` must be [d] (vector code) or [s, s, c] (spatial code) with positive "
            f"entries, got {list(latent_shape)!r}; e.g. [4, 4, 16] or [64]."
        )
    if len(shape) == 3 and shape[0] != shape[1]:
        raise EbmZooError(f"A spatial `latent_shape` must be square [s, s, c], got {shape!r}.")
    s = latent_base_size(shape, base_size)
    blocks = math.log2(image_size / s) if image_size >= s else -1.0
    if blocks < 0 or blocks != int(blocks):
        valid = [image_size // 2**b for b in range(6) if image_size % 2**b == 0]
        raise EbmZooError(
            f"The generator starts at {s}×{s} (latent_shape={shape!r}, base_size={base_size}) and "
            f"doubles the size per block, which cannot reach image_size={image_size}; use a start "
            f"size in {valid}."
        )
    return int(blocks)


def _norm(kind: str, name: str):
    if kind == "layer":
        return keras.layers.LayerNormalization(axis=[1, 2, 3], name=name)
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    return None


def build_generator(
    latent_shape: Sequence[int],
    image_size: int,
    channels: int,
    *,
    filters: int = 128,
    min_filters: int = 16,
    base_size: int = 4,
    upsample: str = "transpose",
    norm: str = "none",
    activation: str = "leaky_relu",
    output: str = "tanh",
    name: str = "generator",
) -> keras.Model:
    """Builds G_α as a functional Keras model.

    Args:
      latent_shape: [d] or [s, s, c]; see `check_latent_shape`.
      image_size, channels: output images [N, image_size, image_size, channels].
      filters: F, filters of the first feature map; halved per block, never below `min_filters`.
      base_size: start size s for vector codes.
      upsample: "transpose" (Conv2DTranspose 4×4, stride 2) or "nearest" (×2 replication then a
        3×3 conv: the multi-grid up-sampling followed by a learned filter).
      norm: "none" (default: a sample does not depend on the others in its batch), "layer"
        (per-example LayerNorm over H, W, C) or "batch" (BatchNorm; batch-dependent in training).
      activation: any Keras activation name; "leaky_relu" uses slope 0.2.
      output: "tanh" (images in [−1, 1]) or "linear".

    Returns:
      A model mapping h [N, *latent_shape] to x [N, image_size, image_size, channels].
    """
    check_choice(upsample, "generator upsample", UPSAMPLES)
    check_choice(norm, "generator norm", NORMS)
    check_choice(output, "generator output", OUTPUTS)
    check_positive(filters, "gen_filters")
    check_positive(min_filters, "gen_min_filters")
    blocks = check_latent_shape(latent_shape, image_size, base_size)
    s = latent_base_size(latent_shape, base_size)

    def act(y, label):
        if activation == "leaky_relu":
            return keras.layers.LeakyReLU(negative_slope=0.2, name=label)(y)
        return keras.layers.Activation(activation, name=label)(y)

    h = keras.Input(shape=tuple(int(v) for v in latent_shape), name="latent")
    if len(latent_shape) == 1:
        y = keras.layers.Dense(s * s * filters, name="project")(h)
        y = keras.layers.Reshape((s, s, filters), name="to_map")(y)
    else:
        y = keras.layers.Conv2D(filters, 3, padding="same", name="project")(h)
    norm_layer = _norm(norm, "project_norm")
    if norm_layer is not None:
        y = norm_layer(y)
    y = act(y, "project_act")
    f = filters
    for b in range(blocks):
        f = max(min_filters, f // 2)
        if upsample == "transpose":
            y = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same", name=f"up{b}")(y)
        else:
            y = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"replicate{b}")(y)
            y = keras.layers.Conv2D(f, 3, padding="same", name=f"up{b}")(y)
        norm_layer = _norm(norm, f"up{b}_norm")
        if norm_layer is not None:
            y = norm_layer(y)
        y = act(y, f"up{b}_act")
    # Under a mixed policy ("mixed_bfloat16") the image layers compute in float32.
    x = keras.layers.Conv2D(channels, 3, padding="same", name="to_image", dtype=output_dtype())(y)
    if output == "tanh":
        x = keras.layers.Activation("tanh", name="tanh", dtype=output_dtype())(x)
    return keras.Model(h, x, name=name)
