"""Presets of the descriptor family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "descriptor_brick": {
        "description": "Generative ConvNet (Xie et al. 2016) learned from the scikit-image brick texture, 64x64 gray",
        "config": "descriptor_texture",
        "dataset": "textures/brick",
        "image_size": 64,
        "weights": "package",
        "sha256": "e92ae92139cc0fe00c8d11602810291824ba53a8950885fefea39864f419fff3",
    },
    "descriptor_mnist": {
        "description": "Generative ConvNet (object mode, short-run chains from noise) on full MNIST 28x28 (no weights yet: tools/experiments/train_mnist_presets.sh)",
        "config": "descriptor_mnist",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
