"""Dtype of a net's output layer under Keras mixed precision."""

from __future__ import annotations

import keras


def output_dtype() -> str | None:
    """ "float32" under a mixed global policy ("mixed_bfloat16", "mixed_float16"), else None.

    Output layers (scores, images, U(x, t)) built with this dtype stay float32 when the rest of
    the net computes in 16 bits, so energies, losses and sampler updates mix with float32
    tensors; under a plain policy (float32, or float64 in gradient checks) they follow it.
    """
    return "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None
