"""Presets of the vapo family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "vapo_digits": {
        "description": "Variational potential flow (VAPO) on scikit-learn digits, 8x8 gray",
        "config": "vapo_cpu",
        "dataset": "digits",
        "image_size": 8,
        "weights": "package",
        "sha256": "d55c4d81e1a0cb47a011660f6838add484aaeaacaaaef689b801f926ae1ea25e",
    },
    "vapo_cifar10": {
        "description": "Variational potential flow (VAPO) on CIFAR-10 32x32",
        "config": "vapo_cifar10",
        "dataset": "cifar10",
        "image_size": 32,
    },
    "vapo_celeba": {
        "description": "Variational potential flow (VAPO) on CelebA 64x64",
        "config": "vapo_celeba",
        "dataset": "celeb_a",
        "image_size": 64,
    },
    "vapo_mnist": {
        "description": "VAPO potential flow on full MNIST (mnist_local, 28x28 gray), training checkpoint 4,500; align term without its time power (a CPU-budget deviation, see configs/vapo_mnist.py)",
        "config": "vapo_mnist",
        "weights": "package",
        "sha256": "3312c315ebe6a19cdcb93fe97767a5ff35c6655d177648c45981ada6de3fd4b2",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
