"""Energy ConvNets f_s of the multi-grid EBM (Gao et al., CVPR 2018; MODELS.md §2).

Each grid s has its own bottom-up ConvNet, conv → norm → LeakyReLU(0.2) per layer ('same'
padding, Glorot-uniform kernels, zero biases), then Flatten → Dense(1):

| grid  | layers (filters, kernel, stride)                                   |
|-------|--------------------------------------------------------------------|
| 4×4   | 96 5×5 s2 → 128 3×3 s1 → 256 3×3 s1 → Dense 1                      |
| 16×16 | 96 5×5 s2 → 128 3×3 s1 → 256 3×3 s1 → 512 3×3 s1 → Dense 1         |
| 64×64 | 64 5×5 s2 → 128 5×5 s2 → 256 5×5 s2 → 512 5×5 s2 → Dense 1         |

Grid sizes outside the table use the row of the next larger tabulated size (≤ 4 → 4×4 row,
≤ 16 → 16×16 row, larger → 64×64 row); `width` scales every filter count (1.0 = the paper).

Normalisation (`norm`):
- "batch": `BatchStatNorm`, batch statistics in every call (training, sampling and scoring),
  as in the original code. A score then depends on the other images of its batch.
- "layer": per-image normalisation over (H, W, C) (GroupNorm with one group): batch-independent.
- "none": no normalisation: batch-independent.
"""

from __future__ import annotations

import keras

from ebm_zoo.nets import fused
from ebm_zoo.nets.precision import output_dtype
from ebm_zoo.utils.checks import EbmZooError, check_choice

#: (filters, kernel, stride) per conv layer, keyed by the tabulated grid size.
LAYER_TABLE: dict[int, tuple[tuple[int, int, int], ...]] = {
    4: ((96, 5, 2), (128, 3, 1), (256, 3, 1)),
    16: ((96, 5, 2), (128, 3, 1), (256, 3, 1), (512, 3, 1)),
    64: ((64, 5, 2), (128, 5, 2), (256, 5, 2), (512, 5, 2)),
}
NORMS = ("batch", "layer", "none")
LEAKY_SLOPE = 0.2


def layer_spec(grid_size: int, width: float = 1.0) -> list[tuple[int, int, int]]:
    """The (filters, kernel, stride) list of the net for a grid of `grid_size`² pixels."""
    if grid_size < 2:
        raise EbmZooError(f"A multi-grid energy net needs a grid of at least 2×2, got {grid_size}.")
    if width <= 0:
        raise EbmZooError(f"`width` must be > 0 (1.0 = the paper's filter counts), got {width!r}.")
    row = 4 if grid_size <= 4 else 16 if grid_size <= 16 else 64
    return [(max(1, round(f * width)), k, s) for f, k, s in LAYER_TABLE[row]]


@keras.saving.register_keras_serializable(package="ebm_zoo")
class BatchStatNorm(keras.layers.Layer):
    """Normalisation with the statistics of the current batch, always (no moving averages).

    y = γ·(x − mean_{N,H,W}(x)) / sqrt(var_{N,H,W}(x) + ε) + β, per channel.

    This is what the original multi-grid code computes in every call (BatchNorm in training mode
    during learning *and* sampling). Keras' BatchNormalization(training=True) would compute the
    same output but also update moving averages at every Langevin step — averages of synthesised
    images that the original never reads. Keeping no moving averages makes the behaviour explicit
    and avoids side-effect writes inside the sampler's while_loop.

    Input/Output: [N, H, W, C] (any float dtype).
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(c,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(c,), initializer="zeros", name="beta")

    def call(self, x, training=None):
        del training  # batch statistics in every mode, by design (see class docstring)
        # One fused kernel forward and backward (ebm_zoo.nets.fused), the same function.
        return fused.batch_stat_norm(x, self.gamma, self.beta, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _norm_layer(norm: str, name: str):
    if norm == "batch":
        return BatchStatNorm(name=name)
    if norm == "layer":
        return keras.layers.GroupNormalization(groups=1, epsilon=1e-5, name=name)
    return None


def make_energy_net(
    grid_size: int,
    channels: int,
    *,
    norm: str = "batch",
    width: float = 1.0,
    name: str | None = None,
) -> keras.Sequential:
    """Builds f_s for one grid.

    Args:
      grid_size: s, the input is [N, s, s, channels] (internal scale [0, 255]).
      channels: C.
      norm: "batch" (original, batch statistics), "layer" or "none" (batch-independent).
      width: multiplier of every filter count (1.0 = paper).
      name: Keras name of the net.

    Returns:
      A built keras.Sequential mapping [N, s, s, C] -> scores [N, 1].
    """
    check_choice(norm, "norm", NORMS)
    layers = [keras.Input((grid_size, grid_size, channels))]
    for i, (filters, kernel, stride) in enumerate(layer_spec(grid_size, width)):
        layers.append(
            keras.layers.Conv2D(
                filters,
                kernel,
                strides=stride,
                padding="same",
                kernel_initializer="glorot_uniform",
                bias_initializer="zeros",
                name=f"conv{i + 1}",
            )
        )
        norm_layer = _norm_layer(norm, f"norm{i + 1}")
        if norm_layer is not None:
            layers.append(norm_layer)
        layers.append(keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"lrelu{i + 1}"))
    layers += [
        keras.layers.Flatten(name="flatten"),
        # float32 under a mixed policy: scores stay float32 under "mixed_bfloat16".
        keras.layers.Dense(
            1,
            kernel_initializer="glorot_uniform",
            bias_initializer="zeros",
            name="score",
            dtype=output_dtype(),
        ),
    ]
    return keras.Sequential(layers, name=name or f"f_{grid_size}")


def conv_layers(net: keras.Model) -> list[keras.layers.Conv2D]:
    """The Conv2D layers of a net, in order (for inspection and tests)."""
    return [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
