"""Presets of the multigrid family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "multigrid_lfw": {
        "description": "Multi-grid generative ConvNets (Gao et al. 2018) on LFW faces (scikit-image), 16x16 gray, grids 1/4/16, per-image norm (servable)",
        "config": "multigrid_layer_cpu",
        "dataset": "lfw_faces",
        "image_size": 16,
        "weights": "package",
        "sha256": "554703fc02b65fc4649e7e78380194911a0b25fdf3644e1e9c5abfe95b0b5d7a",
    },
    "multigrid_celeba": {
        "description": "Multi-grid generative ConvNets (Gao et al. 2018) on CelebA 64x64, grids 1/4/16/64",
        "config": "multigrid_celeba",
        "dataset": "celeb_a",
        "image_size": 64,
    },
    "multigrid_mnist": {
        "description": "Multi-grid EBM (Gao et al. 2018), full MNIST 28x28, grids 1/7/28, 4,000 iterations",
        "config": "multigrid_mnist",
        "weights": "package",
        "sha256": "19839c7bbbe7f31016b24742170ce84646dbbd1d89455d8e0e6b7253322b27ad",
        "dataset": "mnist_local",
        "image_size": 28,
    },
    "multigrid_cd_mnist": {
        "description": "Contrastive divergence baseline (single 28x28 grid, chains from data), full MNIST, 4,000 iterations; samples stay flat (CD's known failure)",
        "config": "multigrid_cd_mnist",
        "weights": "package",
        "sha256": "4de7cb823ad8a8ff70bee02703bc6a26a1ce7fb182d0d9d06a7f6abe74feb7bc",
        "dataset": "mnist_local",
        "image_size": 28,
    },
    "multigrid_pcd_mnist": {
        "description": "Persistent CD baseline (single 28x28 grid, persistent chains), full MNIST, 4,000 iterations",
        "config": "multigrid_pcd_mnist",
        "weights": "package",
        "sha256": "435712a8fbe0318c9e8a69366631a70ec83230426ee0bf6ee2e35eceb4d06ea0",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
