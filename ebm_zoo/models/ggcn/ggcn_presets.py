"""Presets of the ggcn family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "ggcn_lfw": {
        "description": "Generator-guided generative ConvNet (GGCN) on LFW faces (scikit-image), 16x16 gray",
        "config": "ggcn_cpu",
        "dataset": "lfw_faces",
        "image_size": 16,
        "weights": "package",
        "sha256": "e533275bf36da9e966ecf6c51a3b6d0ac448219618b6bf0571ae0391784ae170",
    },
    "ggcn_celeba": {
        "description": "Generator-guided generative ConvNet (GGCN, wGCN + generator) on CelebA 64x64",
        "config": "ggcn_celeba",
        "dataset": "celeb_a",
        "image_size": 64,
    },
    "ggcn_mnist": {
        "description": "GGCN on full MNIST (mnist_local, 28x28 gray), training checkpoint 4,600 (the last before the energy diverged)",
        "config": "ggcn_mnist",
        "weights": "package",
        "sha256": "9126d0d2015d58e45f89b4f6351b09131ff5cc398c5ccb012fa836156c2f6c8e",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
