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
        "description": "GGCN on full MNIST (mnist_local, 28x28 gray) (no weights yet: tools/experiments/train_mnist_presets.sh)",
        "config": "ggcn_mnist",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
