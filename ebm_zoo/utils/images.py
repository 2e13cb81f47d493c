"""Image grids as PNG (numpy + Pillow only).

from ebm_zoo.utils.images import save_grid
save_grid(model.sample(64, seed=0), "samples.png")   # 8x8 grid, written atomically
"""

from __future__ import annotations

import io
import math

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
    # Atomic (temporary file in the same directory + os.replace), so a reader never sees a
    # half-written PNG (e.g. a viewer refreshing while training writes grids).
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return atomic.atomic_write_bytes(path, buffer.getvalue())


def save_grid(images, path: str, ncol: int | None = None, min_side: int = 256) -> str:
    """Writes a grid PNG of images, upscaled (nearest) so the grid is >= min_side px; returns path.

    Args:
      images: float [N, H, W, C] in [0, 1] (numpy or a tf.Tensor, e.g. `model.sample(64, seed=0)`),
        C = 1 (gray) or 3 (RGB).
      path: the PNG file; written atomically (temporary file in the same directory + os.replace).
      ncol: images per row (default ceil(sqrt(N)): 64 images give an 8x8 grid).
      min_side: minimum side of the written PNG in pixels.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[-1] not in (1, 3):
        from ebm_zoo.utils.checks import EbmZooError  # imports TensorFlow: only on the error path

        raise EbmZooError(
            f"save_grid: `images` must be a non-empty [N, H, W, C] batch with C = 1 or 3, got shape "
            f"{x.shape}; add a batch axis with images[None] for a single image."
        )
    grid = make_grid(x, ncol)
    upscale = max(1, int(math.ceil(min_side / max(grid.shape[0], grid.shape[1]))))
    return save_png(grid, path, upscale)
