"""Images for ebm_zoo: one entry point, `load_dataset(name, image_size, split, batch_size)`.

    from ebm_zoo.data import load_dataset, load_array, list_datasets
    list_datasets()                               # built-in offline sets -> description
    ds = load_dataset("textures/brick", 64)       # float32 [64, 64, 64, 1] batches in [0, 1]
    ds = load_dataset("cifar10", split="train")   # TFDS (must be prepared on disk; never downloads)
    ds = load_dataset("folder:/data/faces", 64)   # your own images
    ref = load_array("digits", 16, split="test")  # numpy [N, 16, 16, 1]

Importing this package loads no data set: each is read when first asked for.
"""

from ebm_zoo.data.pipeline import describe, list_datasets, load_array, load_dataset

__all__ = ["describe", "list_datasets", "load_array", "load_dataset"]
