"""Line plots and image strips drawn with PIL alone (matplotlib is an optional extra).

Used by tools/diagnose.py: `line_panel` draws one or more series on shared axes with the value
range written on the y axis; `stack` joins panels vertically.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

#: Distinct colours for up to 10 series (tab10), then cycled.
COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def line_panel(
    series,
    *,
    title: str,
    xlabel: str = "",
    width: int = 720,
    height: int = 220,
    x=None,
    hline: float | None = None,
) -> Image.Image:
    """One panel: each entry of `series` ([T] arrays, same length) a coloured polyline.

    x: optional [T] x values (default 0..T-1); hline: optional dashed horizontal reference line.
    Non-finite values are skipped.
    """
    series = [np.asarray(s, np.float64) for s in series]
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 70, 12, 22, 26
    pw, ph = width - left - right, height - top - bottom
    xs = np.arange(len(series[0]), dtype=np.float64) if x is None else np.asarray(x, np.float64)
    vals = np.concatenate(
        [s[np.isfinite(s)] for s in series] + ([np.array([hline])] if hline is not None else [])
    )
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    x0, x1 = float(xs.min()), float(xs.max()) if len(xs) > 1 else float(xs.min()) + 1

    def to_px(xv, yv):
        return left + (xv - x0) / (x1 - x0) * pw, top + (hi - yv) / (hi - lo) * ph

    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    d.text((left, 4), title, fill=(0, 0, 0))
    d.text((4, top), _fmt(hi), fill=(0, 0, 0))
    d.text((4, top + ph - 10), _fmt(lo), fill=(0, 0, 0))
    d.text((left, top + ph + 6), _fmt(x0), fill=(0, 0, 0))
    d.text((left + pw - 40, top + ph + 6), _fmt(x1), fill=(0, 0, 0))
    d.text((left + pw // 2 - 20, top + ph + 6), xlabel, fill=(0, 0, 0))
    if hline is not None:
        _, yh = to_px(x0, hline)
        for xp in range(left, left + pw, 8):
            d.line([(xp, yh), (xp + 4, yh)], fill=(90, 90, 90))
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = [to_px(a, b) for a, b in zip(xs, s) if np.isfinite(b)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=1)
        elif pts:
            d.point(pts, fill=colour)
    return img


def image_strip(
    snapshots: np.ndarray, *, title: str, labels=None, scale: int = 2, pad: int = 2
) -> Image.Image:
    """Rows = chains, columns = snapshots: `snapshots` [S, K, H, W, C] in [0, 1]."""
    s, k, h, w, c = snapshots.shape
    cell_h, cell_w = h * scale + pad, w * scale + pad
    img = Image.new("RGB", (max(s * cell_w + pad, 200), k * cell_h + pad + 34), "white")
    d = ImageDraw.Draw(img)
    d.text((pad, 2), title, fill=(0, 0, 0))
    for j in range(s):
        if labels is not None:
            d.text((pad + j * cell_w, 14), str(labels[j]), fill=(0, 0, 0))
        for i in range(k):
            a = np.clip(snapshots[j, i], 0.0, 1.0)
            a = np.repeat(a, 3, axis=-1) if c == 1 else a[..., :3]
            tile = Image.fromarray((a * 255 + 0.5).astype(np.uint8)).resize(
                (w * scale, h * scale), Image.NEAREST
            )
            img.paste(tile, (pad + j * cell_w, 30 + i * cell_h))
    return img


def text_panel(lines, width: int = 720) -> Image.Image:
    """Lines of text on white, one per 14 px."""
    img = Image.new("RGB", (width, 14 * len(lines) + 8), "white")
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((6, 4 + 14 * i), line, fill=(0, 0, 0))
    return img


def stack(panels) -> Image.Image:
    """Panels stacked top to bottom on a white canvas as wide as the widest."""
    width = max(p.width for p in panels)
    out = Image.new("RGB", (width, sum(p.height for p in panels)), "white")
    y = 0
    for p in panels:
        out.paste(p, (0, y))
        y += p.height
    return out
