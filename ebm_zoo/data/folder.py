"""`folder:/path/to/images`: a user's own images (png, jpg/jpeg, bmp, gif; searched recursively).

Files are listed in sorted order; the split is deterministic: file i is in "test" iff
i % 10 == 9, "train" is the rest, "all" is everything. Every selected file is decoded once by a
validation pass (with the same TensorFlow decoder the pipeline uses) before the dataset is
returned, so an unreadable or corrupt file is reported by name instead of failing mid-training
(or being replaced by a black image). Pass `validate=False` to skip that pass for very large
folders (a bad file then stops iteration with TensorFlow's decode error, and the images are
taken as RGB). Images are resized on the shorter side to `image_size` and centre-cropped; GIFs use
their first frame; alpha channels are dropped. The native channel count is 1 if every image is
grayscale, else 3.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

from ebm_zoo.data import sources, transforms
from ebm_zoo.utils.checks import EbmZooError

PREFIX = "folder:"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
DEFAULT_IMAGE_SIZE = 64
OPTIONS = {"validate": True}


def list_images(root: str) -> list[str]:
    """Sorted paths of the image files under `root` (recursive)."""
    if not os.path.isdir(root):
        what = "is a file, not a folder" if os.path.exists(root) else "does not exist"
        raise EbmZooError(
            f"Image folder {root!r} {what}; pass `folder:/path/to/a/directory` containing "
            f"{'/'.join(e[1:] for e in EXTENSIONS)} files."
        )
    paths = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        paths.extend(os.path.join(dirpath, f) for f in filenames if f.lower().endswith(EXTENSIONS))
    if not paths:
        raise EbmZooError(
            f"Image folder {root!r} contains no image files (searched recursively for "
            f"{', '.join(EXTENSIONS)}); add images or point `folder:` at another directory."
        )
    return sorted(paths)


def _decode(contents: tf.Tensor) -> tf.Tensor:
    """Encoded bytes -> uint8 [H, W, C] with C in {1, 3} (first GIF frame, alpha dropped)."""
    image = tf.io.decode_image(contents, channels=0, expand_animations=False)
    return transforms.normalize_channels(image)


def _probe(path: str) -> tuple[str, int | None, str | None]:
    """Decodes one file eagerly; returns (path, channels or None, error or None)."""
    try:
        image = _decode(tf.io.read_file(path))
        h, w, c = image.shape
        if h == 0 or w == 0:
            return path, None, f"has an empty {h}×{w} image"
        return path, int(c), None
    except (tf.errors.OpError, OSError, ValueError) as e:
        message = (getattr(e, "message", None) or str(e)).strip()
        message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)  # TF op-wrapper noise
        message = re.sub(r"\s*\[Op:\w+\].*$", "", message.splitlines()[0] if message else "")
        return path, None, message or type(e).__name__


def validate(paths: list[str]) -> int:
    """Decodes every file; returns the channel count (1 if all gray, else 3).

    Raises:
      EbmZooError: naming each unreadable or corrupt file (up to 10) and what to do.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_probe, paths))
    bad = [(p, err) for p, _, err in results if err is not None]
    if bad:
        listing = "\n".join(f"  {p}: {err}" for p, err in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise EbmZooError(
            f"{len(bad)} of {len(paths)} image file(s) could not be decoded:\n{listing}{more}\n"
            "Delete or re-save these files (they are never replaced by blank images)."
        )
    return 1 if all(c == 1 for _, c, _ in results) else 3


def make_source(
    spec: str, split: str, image_size: int | None, validate_files: bool = True, limit: int | None = None
):
    """IndexedSource over the images of `folder:<path>` (see the module docstring); with `limit`
    only the first `limit` files of the split are used (and validated)."""
    root = os.path.expanduser(spec[len(PREFIX) :])
    if not root:
        raise EbmZooError("`folder:` needs a path, e.g. 'folder:/data/my_faces'.")
    paths = list_images(root)
    selected = [paths[i] for i in sources.split_indices(len(paths), split, spec)][:limit]
    if not selected:
        raise EbmZooError(
            f"Split {split!r} of {spec!r} is empty ({len(paths)} image(s); test = every 10th file); "
            "use split='all' or add images."
        )
    channels = validate(selected) if validate_files else 3
    image_size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    table = tf.constant(selected, dtype=tf.string)

    def load(index):
        image = _decode(tf.io.read_file(tf.gather(table, index)))
        image = transforms.set_channels(transforms.to_float(image), channels)
        return transforms.center_crop_resize(image, image_size)

    return sources.IndexedSource(
        num_examples=len(selected), load=load, image_size=image_size, channels=channels
    )
