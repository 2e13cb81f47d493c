"""Evaluation metrics: pure functions on activations, plus swappable feature extractors.

Distances (numpy, no network):
  frechet_distance, frechet_distance_from_statistics, activation_statistics,
  kernel_inception_distance (KID), inception_score, kernel_mmd, median_heuristic,
  sliced_wasserstein_distance (multi-scale SWD on Laplacian pyramids), gram_distance.
Extractors (TensorFlow):
  extract_features / class_probabilities: the small classifier shipped with the package;
  inception_activations: Inception-v3 from a local file ($EBM_ZOO_INCEPTION), never downloaded.
  mnist_features / mnist_probabilities: the dedicated MNIST classifier (sha256-pinned).
Fidelity (numpy): classifier_score, effective_num_classes, precision_recall (k-NN manifolds).
One call for model reports: evaluate_samples(samples, reference, metrics=(...), seed=0).
The fixed MNIST protocol (docs/benchmarks.md): evaluate_mnist(images or sample_fn) -> dict.
"""

from ebm_zoo.metrics.distances import (
    MeanStd,
    activation_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    kernel_inception_distance,
    kernel_mmd,
    median_heuristic,
)
from ebm_zoo.metrics.evaluate import DEFAULT_METRICS, METRICS, evaluate_samples
from ebm_zoo.metrics.features import (
    CLASS_NAMES,
    class_probabilities,
    extract_features,
    extractor_info,
    load_feature_extractor,
)
from ebm_zoo.metrics.fidelity import (
    PrecisionRecall,
    classifier_score,
    effective_num_classes,
    precision_recall,
)
from ebm_zoo.metrics.inception import inception_activations, load_inception
from ebm_zoo.metrics.mnist_classifier import mnist_features, mnist_probabilities
from ebm_zoo.metrics.mnist_protocol import evaluate_mnist
from ebm_zoo.metrics.swd import SWDResult, laplacian_pyramid, sliced_wasserstein_distance
from ebm_zoo.metrics.texture import GramResult, gram_distance, gram_statistics

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_METRICS",
    "METRICS",
    "GramResult",
    "MeanStd",
    "PrecisionRecall",
    "SWDResult",
    "activation_statistics",
    "class_probabilities",
    "classifier_score",
    "effective_num_classes",
    "evaluate_mnist",
    "evaluate_samples",
    "extract_features",
    "extractor_info",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gram_distance",
    "gram_statistics",
    "inception_activations",
    "inception_score",
    "kernel_inception_distance",
    "kernel_mmd",
    "laplacian_pyramid",
    "load_feature_extractor",
    "load_inception",
    "median_heuristic",
    "mnist_features",
    "mnist_probabilities",
    "precision_recall",
    "sliced_wasserstein_distance",
]
