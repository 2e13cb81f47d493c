"""ebm_zoo: energy-based generative ConvNets for TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

_PACKAGES = find_packages(include=["ebm_zoo", "ebm_zoo.*"]) + ["ebm_zoo.configs"]

setup(
    name="ebm_zoo",
    version="0.1.0",
    description="A TensorFlow 2 / Keras 3 model zoo of energy-based generative ConvNets.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=_PACKAGES,
    # `configs/` lives at the top level of the repository (one file per experiment) and is
    # installed as the sub-package `ebm_zoo.configs` so that an installed copy finds it too.
    package_dir={"ebm_zoo.configs": "configs"},
    package_data={
        "ebm_zoo": ["presets/weights/**/*", "metrics/weights/*"],
    },
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.10 imports importlib_resources without declaring it.
        "importlib_resources",
        "tensorflow-probability>=0.24",
        # tensorflow-probability needs tf-keras at import time under TF >= 2.16.
        "tf-keras",
        "absl-py",
        # TensorBoard summaries (tf.summary) need the tensorboard package; TF 2.21 no longer pulls it.
        "tensorboard",
        "ml_collections",
        "scikit-image>=0.22",
        "scikit-learn>=1.3",
        "scipy",
        "pillow",
        "numpy",
    ],
    extras_require={
        # torch: tests/test_bench.py checks that the PyTorch twin used by tools/bench.py computes
        # the same function as the TF net (pinned to the CPU build these machines carry).
        # torchebm: the TorchEBM peer row's tests (tests/test_mnist_presets.py), which skipped on a
        # clean CI machine without it (it only needs torch, so it adds no other torch).
        "test": ["pytest>=7", "pytest-xdist>=3.5", "ruff", "torch==2.13.0", "torchebm==0.8.9"],
        # tools/bench.py: the PyTorch rows and the TorchEBM peer row (torchebm 0.8.9 needs
        # torch>=2.10 and installs against the CPU build 2.13.0 without pulling another torch).
        "bench": ["torch==2.13.0", "torchebm==0.8.9"],
        # plots of tools/experiments/ (e.g. the wGCN energy-dissipation figure)
        "experiments": ["matplotlib"],
    },
    entry_points={},
)
