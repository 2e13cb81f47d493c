"""Image grids as PNG (numpy + Pillow only)."""

from __future__ import annotations

import math
import os

import numpy as np


def make_grid(images, ncol: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tiles images [N, H, W, C] in [0, 1] into one [rows·(H+pad)−pad, cols·(W+pad)−pad, C] array."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"make_grid expects [N, H, W, C] images, got shape {x.shape}.")
    n, h, w, c = x.shape
    ncol = ncol or max(1, int(math.ceil(math.sqrt(n))))
    nrow = int(math.ceil(n / ncol))
    grid = np.full((nrow * (h + pad) - pad, ncol * (w + pad) - pad, c), pad_value, np.float32)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = x[i]
    return np.clip(grid, 0.0, 1.0)


def save_png(image, path: str, upscale: int = 1) -> str:
    """Writes an [H, W, C] or [H, W] float image in [0, 1] as an 8-bit PNG; returns the path."""
    from PIL import Image

    from ebm_zoo.utils import atomic

    x = np.asarray(image, np.float32)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    arr = (np.clip(x, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    img = Image.fromarray(arr)
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.file(path) as tmp:  # a reader never sees half a PNG
        img.save(tmp, format="PNG")
    return path


def save_grid(images, path: str, ncol: int | None = None, min_side: int = 256) -> str:
    """Writes a grid PNG of images in [0, 1], upscaled (nearest) so the grid is >= min_side px."""
    grid = make_grid(images, ncol)
    upscale = max(1, int(math.ceil(min_side / max(grid.shape[0], grid.shape[1]))))
    return save_png(grid, path, upscale)
