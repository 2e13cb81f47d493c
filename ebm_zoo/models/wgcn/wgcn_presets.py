"""Presets of the wgcn family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "wgcn_lfw": {
        "description": "Wasserstein generative ConvNet (wGCN, implicit JKO flow) on LFW faces (scikit-image), 16x16 gray",
        "config": "wgcn_cpu",
        "dataset": "lfw_faces",
        "image_size": 16,
        "weights": "package",
        "sha256": "a23c0d13bf9ae8301fad3dc3ef2c0b3896f4d8cbe8c875287a992e6e35e514b5",
    },
    "wgcn_mnist": {
        "description": "wGCN (generative ConvNet + JKO particle flow, chains from noise) on full MNIST, 28x28 gray, 12,000 iterations",
        "config": "wgcn_mnist",
        "weights": "package",
        "sha256": "1f8e8db4ab92e3283824c409e58572976a5303317d987cc042b7a6f2410090a0",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
