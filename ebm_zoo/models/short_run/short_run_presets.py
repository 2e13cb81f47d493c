"""Presets of the short_run family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "short_run_digits": {
        "description": "Short-run MCMC EBM with replay buffer (Nijkamp et al. 2019) on scikit-learn digits, 16x16 gray",
        "config": "short_run_digits",
        "dataset": "digits",
        "image_size": 16,
        "weights": "package",
        "sha256": "46e9d8e7efd58cfcac23c3a9984e97cc300734dce4782ee4841db337fd2e0e91",
    },
    "short_run_mnist": {
        "description": "Short-run MCMC EBM (Nijkamp et al. 2019), non-persistent chains from uniform noise, full MNIST 28x28, 20,000 iterations",
        "config": "short_run_mnist",
        "weights": "package",
        "sha256": "c1baed0a2b14a9ad0e4d09382aad20b55c342832c8e56e011f0ef0c2a36e3af6",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
