"""Bottom-up energy ConvNets f(x): one scalar "score" per image (higher = more probable).

`EnergyConvNet` is the descriptor's network (Xie et al. 2016) and the building block other
families reuse: a stack of convolutions with a piecewise-linear activation, then either

- a `"sum"` top (texture / stationary model): a 1×1 linear conv to one channel, summed over all
  positions, so the model is shift-invariant and scores images of any size; or
- a `"dense"` top (object model): flatten + Dense(1), the score read at fixed positions.

With ReLU activations f is piecewise linear in x, which makes the descriptor a piecewise
Gaussian whose local mean is σ²·∂f/∂x (see ebm_zoo.models.descriptor).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ebm_zoo.nets.fused import silu
from ebm_zoo.nets.precision import output_dtype

_ACTIVATIONS = ("relu", "leaky_relu", "elu", "swish", "softplus")


@keras.saving.register_keras_serializable(package="ebm_zoo")
class EnergyConvNet(keras.layers.Layer):
    """Score network f(x).

    Args:
      layers: list of [filters, kernel, stride] per conv layer.
      top: "sum" (fully convolutional, summed over positions) or "dense" (fixed positions).
      activation: one of relu, leaky_relu (slope 0.2), elu, swish, softplus.
      padding: "same" or "valid".
      top_kernel: kernel size of the final linear conv of the "sum" top.

    Call: x [N, H, W, C] in the model's internal scale → f(x) [N].
    `call(x, per_position=True)` on a "sum" net returns the score divided by the number of
    top-layer positions (used to compare images of different sizes).
    """

    def __init__(
        self,
        layers=((64, 5, 2), (128, 3, 2)),
        top: str = "sum",
        activation: str = "relu",
        padding: str = "same",
        top_kernel: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if top not in ("sum", "dense"):
            raise ValueError(f"EnergyConvNet top must be 'sum' or 'dense', got {top!r}.")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}.")
        self.layer_spec = [tuple(int(v) for v in spec) for spec in layers]
        for spec in self.layer_spec:
            if len(spec) != 3 or min(spec) <= 0:
                raise ValueError(f"Each conv layer is [filters, kernel, stride] > 0, got {list(spec)}.")
        self.top = top
        self.activation = activation
        self.padding = padding
        self.top_kernel = int(top_kernel)
        self.convs = [
            keras.layers.Conv2D(f, k, strides=s, padding=padding, name=f"conv{i + 1}")
            for i, (f, k, s) in enumerate(self.layer_spec)
        ]
        # Under a mixed policy ("mixed_bfloat16") the top computes in float32, so f is float32.
        if top == "sum":
            self.head = keras.layers.Conv2D(
                1, self.top_kernel, padding="valid", name="top", dtype=output_dtype()
            )
        else:
            self.head = keras.layers.Dense(1, name="top", dtype=output_dtype())

    def _act(self, h):
        if self.activation == "leaky_relu":
            return tf.nn.leaky_relu(h, 0.2)
        if self.activation == "swish":
            return silu(h)  # fused backward pass (ebm_zoo.nets.fused)
        return getattr(tf.nn, self.activation)(h)

    def features(self, x):
        h = x
        for conv in self.convs:
            h = self._act(conv(h))
        return h

    def call(self, x, per_position: bool = False):
        h = self.features(x)
        if self.top == "sum":
            r = self.head(h)[..., 0]  # [N, h, w]
            if per_position:
                return tf.reduce_mean(r, axis=[1, 2])
            return tf.reduce_sum(r, axis=[1, 2])
        flat = int(h.shape[1]) * int(h.shape[2]) * int(h.shape[3])  # object nets have a fixed size
        return self.head(tf.reshape(h, [-1, flat]))[:, 0]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            layers=[list(s) for s in self.layer_spec],
            top=self.top,
            activation=self.activation,
            padding=self.padding,
            top_kernel=self.top_kernel,
        )
        return cfg
