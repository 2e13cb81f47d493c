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
        "description": "Generative ConvNet (object mode, 40 Langevin steps from noise) on full MNIST 28x28, 10,000 iterations",
        "config": "descriptor_mnist",
        "weights": "package",
        "sha256": "b2191fd154123b0703ba4c8cb179f5d067815c8c0ca08242d0f2e95b18059ae3",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
