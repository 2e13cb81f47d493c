"""Fidelity metrics on tiny features (classifier score, effective classes, k-NN precision/recall)
and the public grid helper `ebm_zoo.utils.images.save_grid`."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ebm_zoo.metrics import fidelity
from ebm_zoo.utils.checks import EbmZooError

# ---------------------------------------------------------------- classifier score, effective classes


@pytest.mark.parametrize("k", [2, 5, 10])
def test_classifier_score_of_balanced_one_hot_is_num_classes(k):
    p = np.eye(k)[np.tile(np.arange(k), 20)]  # 20 confident predictions per class
    score = fidelity.classifier_score(p, splits=4)  # each chunk of 5k rows still covers every class
    assert score.mean == pytest.approx(k, rel=1e-9)
    assert score.std == pytest.approx(0.0, abs=1e-9)


def test_classifier_score_of_uniform_predictions_is_one():
    p = np.full((50, 10), 0.1)
    assert fidelity.classifier_score(p, splits=5).mean == pytest.approx(1.0, rel=1e-9)


def test_classifier_score_closed_form_two_classes():
    # Rows (a, 1-a) and (1-a, a) in equal numbers: p(y) uniform, score = exp(log 2 - H(a)).
    a = 0.8
    p = np.array([[a, 1 - a], [1 - a, a]] * 10)
    h = -(a * np.log(a) + (1 - a) * np.log(1 - a))
    assert fidelity.classifier_score(p, splits=1).mean == pytest.approx(np.exp(np.log(2) - h), rel=1e-9)


def test_effective_num_classes_closed_forms():
    one_hot = np.eye(10)
    assert fidelity.effective_num_classes(one_hot[np.arange(100) % 10]) == pytest.approx(10.0)
    assert fidelity.effective_num_classes(one_hot[np.arange(90) % 3]) == pytest.approx(3.0)
    # Every sample confidently the same class: 1 class, whatever the confidence.
    assert fidelity.effective_num_classes(one_hot[np.zeros(40, int)]) == pytest.approx(1.0)
    # Uniform predictions per sample still give a uniform mean: 10 (unlike the classifier score).
    assert fidelity.effective_num_classes(np.full((7, 10), 0.1)) == pytest.approx(10.0)
    # Mean (0.5, 0.25, 0.25): exp(H) = exp(1.5 log 2) = 2^1.5.
    p = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    assert fidelity.effective_num_classes(p) == pytest.approx(2**1.5, rel=1e-12)


def test_probability_checks_name_the_argument():
    with pytest.raises(EbmZooError, match="probabilities.*softmax"):
        fidelity.effective_num_classes(np.array([[2.0, -1.0]]))
    with pytest.raises(EbmZooError, match="probabilities"):
        fidelity.classifier_score(np.ones((4, 3)), splits=2)


# ---------------------------------------------------------------- precision / recall


def test_knn_radii_closed_form():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    # k=1: nearest other point; k=2: second nearest (squared distances).
    np.testing.assert_allclose(fidelity.knn_radii(x, k=1), [1.0, 1.0, 4.0, 16.0])
    np.testing.assert_allclose(fidelity.knn_radii(x, k=2, block=3), [9.0, 4.0, 9.0, 36.0])
    with pytest.raises(EbmZooError, match="k=4"):
        fidelity.knn_radii(x, k=4)


def test_precision_recall_identical_sets_is_one():
    x = np.random.default_rng(0).standard_normal((60, 5))
    pr = fidelity.precision_recall(x, x.copy(), k=3)
    assert pr.precision == 1.0 and pr.recall == 1.0


def test_precision_recall_disjoint_far_sets_is_zero():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((50, 4))
    fake = rng.standard_normal((40, 4)) + 100.0
    assert tuple(fidelity.precision_recall(real, fake, k=3)) == (0.0, 0.0)


def test_precision_recall_hand_computed_1d():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1 radii: 1 each
    fake = np.array([[0.5], [10.0], [11.0]])  # k=1 radii: 90.25, 1, 1 (squared)
    pr = fidelity.precision_recall(real, fake, k=1, block=2)
    assert pr.precision == pytest.approx(1 / 3)  # only 0.5 lies in a real ball
    assert pr.recall == pytest.approx(1.0)  # the ball around 0.5 has radius 9.5: covers 0..3


def test_precision_recall_mode_dropping_lowers_recall_only():
    rng = np.random.default_rng(2)
    real = np.concatenate([rng.standard_normal((200, 2)), rng.standard_normal((200, 2)) + 50.0])
    fake = rng.standard_normal((200, 2))  # one of the two modes
    pr = fidelity.precision_recall(real, fake, k=3)
    assert pr.precision > 0.9
    assert 0.35 < pr.recall < 0.55


def test_precision_recall_checks_dimensions():
    with pytest.raises(EbmZooError, match="fake_features"):
        fidelity.precision_recall(np.zeros((5, 3)), np.zeros((5, 4)))


# ---------------------------------------------------------------- save_grid


def test_save_grid_writes_atomically_an_8x8_grid(tmp_path):
    from PIL import Image

    import ebm_zoo

    images = np.zeros((64, 28, 28, 1), np.float32)
    images[9] = 1.0  # row 1, column 1
    path = tmp_path / "sub" / "grid.png"
    out = ebm_zoo.utils.images.save_grid(images, str(path), min_side=1)
    assert out == str(path)
    assert os.listdir(path.parent) == ["grid.png"]  # no temporary file left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600
    grid = np.asarray(Image.open(path))
    assert grid.shape == (8 * 29 - 1, 8 * 29 - 1)
    assert grid[29:57, 29:57].min() == 255 and grid[:28, :28].max() == 0
    with pytest.raises(EbmZooError, match="images"):
        ebm_zoo.utils.images.save_grid(np.zeros((28, 28)), str(tmp_path / "x.png"))


def test_save_grid_failure_keeps_the_old_file(tmp_path, monkeypatch):
    from PIL import Image

    from ebm_zoo.utils import images as image_utils

    path = tmp_path / "grid.png"
    image_utils.save_grid(np.ones((4, 8, 8, 1), np.float32), str(path))
    before = path.read_bytes()

    def broken_save(self, fp, format=None, **params):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        image_utils.save_grid(np.zeros((4, 8, 8, 1), np.float32), str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["grid.png"]


def test_save_grid_reachable_after_import_ebm_zoo_without_tensorflow(tmp_path):
    """The new user's path `import ebm_zoo; ebm_zoo.utils.images.save_grid(...)`, in a fresh process."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, ebm_zoo; "
        f"ebm_zoo.utils.images.save_grid(np.zeros((64, 28, 28, 1), np.float32), {str(tmp_path / 'g.png')!r}); "
        "assert 'tensorflow' not in sys.modules, 'save_grid imported TensorFlow'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "g.png").is_file()
