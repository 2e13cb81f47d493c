"""tools/eval.py, tools/sample.py and ebm_zoo.evaluation.harness on a tiny training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from ebm_zoo.evaluation import harness as evaluate
from ebm_zoo.presets import files
from ebm_zoo.utils.checks import EbmZooError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A finished 2-step run of a tiny descriptor on the shipped 8x8 digits."""
    from ebm_zoo import training

    cfg = ml_collections.ConfigDict(
        dict(
            description="tiny descriptor on digits",
            config_name="test_tiny",
            model=dict(
                family="descriptor",
                image_size=8,
                channels=1,
                mode="object",
                layers=[[8, 3, 1], [8, 3, 2]],
                num_chains=4,
                num_steps=4,
                step_size=0.3,
                optimizer="adam",
                learning_rate=1e-3,
                grad_norm_by_filters=False,
                grad_clip=0.0,
            ),
            data=dict(name="digits", image_size=8, batch_size=8, split="train"),
            train=dict(steps=2, log_every=1, checkpoint_every=2, num_samples=4, seed=0),
        )
    )
    path = tmp_path_factory.mktemp("runs") / "tiny"
    training.train(cfg, str(path), verbose=0)
    return path


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return _run_env({}, tool, *args)


def _run_env(extra_env: dict, tool: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "EBM_ZOO_OFFLINE": "1"}
    env.pop("EBM_ZOO_INCEPTION", None)
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=900,
    )


def test_eval_tool_writes_report_and_sheet(workdir, tmp_path):
    out = tmp_path / "report"
    proc = _run("eval.py", f"--workdir={workdir}", "--num_samples=16", "--num_reference=32", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    for name in ("swd", "fd_small", "kid_small", "is_small", "gram"):
        assert np.isfinite(report["metrics"][name]), name
    assert set(report["not_computed"]) >= {"fid", "kid", "is"}
    assert "EBM_ZOO_INCEPTION" in report["not_computed"]["fid"]
    assert report["samples"]["num_samples"] == 16 and report["samples"]["seed"] == 0
    assert report["samples"]["sampler"]["num_steps"] == 4
    assert report["reference"] == {"dataset": "digits", "split": "test", "num_images": 32, "options": {}}
    assert report["extractor"]["weights_sha256"]
    assert report["model"]["kind"] == "workdir" and report["model"]["family"] == "descriptor"
    from PIL import Image

    sheet = Image.open(out / "samples.png")
    assert min(sheet.size) >= 64
    assert '"swd"' in proc.stdout


def test_inception_metrics_fail_clearly_before_sampling(workdir, tmp_path, monkeypatch):
    monkeypatch.delenv("EBM_ZOO_INCEPTION", raising=False)
    gen = evaluate.open_model(workdir=str(workdir))

    def no_sampling(*a, **k):
        raise AssertionError("sampled before checking the Inception path")

    monkeypatch.setattr(gen, "sample", no_sampling)
    with pytest.raises(EbmZooError, match=r"Inception-v3.*EBM_ZOO_INCEPTION"):
        evaluate.evaluate(gen, tmp_path, metrics=["fid"])
    with pytest.raises(EbmZooError, match="EBM_ZOO_INCEPTION_CLASSIFIER"):
        evaluate.evaluate(gen, tmp_path, metrics=["is"])
    with pytest.raises(EbmZooError, match="Unknown metric"):
        evaluate.evaluate(gen, tmp_path, metrics=["fidd"])


def test_savedmodel_evaluation_matches_keras_samples(workdir, tmp_path):
    model = files.load_workdir(workdir)
    path = model.export(str(tmp_path / "export"))
    saved = evaluate.open_model(savedmodel=path)
    keras_gen = evaluate.open_model(workdir=str(workdir))
    assert saved.dataset == "digits" and saved.image_size == 8
    np.testing.assert_allclose(
        saved.sample(6, seed=3, batch_size=4), keras_gen.sample(6, seed=3, batch_size=4), atol=1e-6
    )
    report = evaluate.evaluate(saved, tmp_path / "rep", metrics=["swd"], num_samples=8, num_reference=16)
    assert report["model"]["kind"] == "savedmodel" and np.isfinite(report["metrics"]["swd"])
    assert report["samples"]["sampler"]["num_steps"] == -1 and report["samples"]["sampler"]["max_steps"] == 16
    assert np.isfinite(report["energy"]["samples_mean"])


def test_langevin_trajectory_strip(workdir, tmp_path):
    gen = evaluate.open_model(workdir=str(workdir))
    states = evaluate.langevin_trajectory(gen, n=3, seed=0, every=2, num_steps=5)
    assert len(states) == 1 + 3  # start, after 2, 4, 5 steps
    assert all(s.shape == (3, 8, 8, 1) for s in states)
    assert not np.allclose(states[0], states[-1])
    png = evaluate.save_trajectory(states, str(tmp_path / "traj.png"))
    assert os.path.getsize(png) > 0


def test_record_in_preset_keeps_checksums(workdir, tmp_path):
    import ebm_zoo
    from ebm_zoo import presets

    path = presets.export_workdir(workdir, out_dir=tmp_path / "tiny_preset")
    gen = evaluate.open_model(preset=str(path))
    report = evaluate.evaluate(gen, tmp_path / "rep", metrics=["swd"], num_samples=8, num_reference=8)
    evaluate.record_in_preset(gen, report)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["metrics"]["evaluation"]["figures"]["swd"] == report["metrics"]["swd"]
    assert "training" in meta["metrics"]
    assert ebm_zoo.load(str(path)).family == "descriptor"  # sha256 sums still match
    with pytest.raises(EbmZooError, match="--record needs a preset stored on disk"):
        evaluate.record_in_preset(evaluate.open_model(workdir=str(workdir)), report)


@pytest.mark.slow
def test_sample_tool_writes_grid_and_trajectory(workdir, tmp_path):
    out = tmp_path / "s.png"
    proc = _run("sample.py", f"--handle={workdir}", "--num_samples=4", "--trajectory_every=2", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file() and (tmp_path / "s_trajectory.png").is_file()


def test_open_model_errors_name_the_handle(tmp_path):
    with pytest.raises(EbmZooError, match="Unknown preset 'no_such_preset'"):
        evaluate.open_model(preset="no_such_preset")
    with pytest.raises(EbmZooError, match="Give exactly one of"):
        evaluate.open_model(preset="a", workdir="b")
    with pytest.raises(EbmZooError, match="not a SavedModel directory"):
        evaluate.open_model(savedmodel=str(tmp_path))


# ---------------------------------------------------------------- benchmark figures in metadata.json

FAKE_MNIST_REPORT = {
    "name": "tiny",
    "fd_mnist": 12.5,
    "kid_mnist": 0.4,
    "kid_mnist_std": 0.1,
    "classifier_score": 8.7,
    "classifier_score_std": 0.05,
    "effective_classes": 9.6,
    "precision": 0.7,
    "recall": 0.5,
    "class_fractions": [0.1] * 10,
    "num_samples": 5000,
    "num_reference": 10000,
    "seed": 0,
    "k": 3,
    "standard": True,
    "classifier_sha256": "ab" * 32,
    "sample_batch": 250,
    "sampling_cpu_seconds": 40.0,
    "sampling_wall_seconds": 25.0,
    "sampling_cpu_seconds_per_100": 0.8,
    "machine": {"cpu": "Test CPU 9000", "cpus": 2, "loadavg": ["0.50", "0.40", "0.30"]},
    "metric_seconds": 30.0,
}
FAKE_OOD_REPORT = {"model": "tiny", "auroc": {"noise": 1.0, "inverted": 0.6}, "settings": {"seed": 0}}


def test_training_records_wall_clock_and_cpu_seconds(workdir):
    timing = json.loads((workdir / "timing.json").read_text())
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert timing["step"] == metrics["step"] == 2
    assert timing["invocations"] == 1 and timing["complete"] is True
    assert 0 < timing["train_wall_seconds"] == metrics["train_wall_seconds"]
    assert 0 < timing["train_cpu_seconds"] == metrics["train_cpu_seconds"]
    assert files.training_time(workdir)["cpu_seconds"] == timing["train_cpu_seconds"]


def test_resumed_training_sums_the_time_of_every_invocation(workdir, tmp_path):
    import shutil

    from ebm_zoo import training

    run = tmp_path / "resumed"
    shutil.copytree(workdir, run)
    before = json.loads((run / "timing.json").read_text())
    cfg = ml_collections.ConfigDict(json.loads((run / "config.json").read_text()))
    cfg.train.steps = 4
    training.train(cfg, str(run), verbose=0)
    after = json.loads((run / "timing.json").read_text())
    assert after["step"] == 4 and after["invocations"] == 2 and after["complete"] is True
    assert after["train_wall_seconds"] > before["train_wall_seconds"]
    assert after["train_cpu_seconds"] > before["train_cpu_seconds"]
    # The totals at every checkpoint: the first invocation's kept as they were, then step 4.
    assert [h["step"] for h in after["history"]] == [2, 4]
    assert after["history"][0] == before["history"][-1]
    assert after["history"][1]["train_cpu_seconds"] == after["train_cpu_seconds"]
    # A timing record of another step (e.g. lost with a checkpoint) is not summed blindly.
    (run / "timing.json").write_text(json.dumps({**after, "step": 3}))
    cfg.train.steps = 6
    training.train(cfg, str(run), verbose=0)
    last = json.loads((run / "timing.json").read_text())
    assert last["complete"] is False and last["invocations"] == 1


def _write_reports(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(FAKE_MNIST_REPORT))
    (directory / "ood.json").write_text(json.dumps(FAKE_OOD_REPORT))
    return directory


def test_export_stores_protocol_figures_ood_and_training_time(workdir, tmp_path):
    reports = _write_reports(tmp_path / "reports" / "tiny")
    home = tmp_path / "home"
    env_home = {"EBM_ZOO_HOME": str(home)}
    proc = _run_env(
        env_home, "export.py", f"--workdir={workdir}", "--preset=tiny_mnist", f"--reports={reports}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FD-MNIST 12.500" in proc.stdout and "OOD AUROC: noise 1.000" in proc.stdout
    path = home / "presets" / "tiny_mnist"
    meta = json.loads((path / "metadata.json").read_text())
    mnist = meta["metrics"]["mnist"]
    for k in files.MNIST_KEYS:
        assert mnist[k] == FAKE_MNIST_REPORT[k], k
    assert "metric_seconds" not in mnist and "training" in meta["metrics"]
    assert meta["metrics"]["mnist_ood"]["auroc"] == FAKE_OOD_REPORT["auroc"]
    timing = json.loads((workdir / "timing.json").read_text())
    assert meta["training_time"]["wall_seconds"] == timing["train_wall_seconds"]
    assert meta["training_time"]["cpu_seconds"] == timing["train_cpu_seconds"]
    import ebm_zoo

    assert ebm_zoo.load(str(path)).preset_metadata["metrics"]["mnist"]["fd_mnist"] == 12.5  # sha256 intact


def test_export_finds_the_launcher_layout_and_refuses_stale_reports(workdir, tmp_path):
    import shutil

    run = tmp_path / "runs" / "tiny"
    shutil.copytree(workdir, run)
    reports = _write_reports(tmp_path / "runs" / "reports" / "tiny")  # train_mnist_presets.sh layout
    assert files.find_reports(run) == reports
    assert files.benchmark_metadata(run)["metrics"]["mnist"]["fd_mnist"] == 12.5
    weights_time = (run / "model.weights.h5").stat().st_mtime
    os.utime(reports / "report.json", (weights_time - 100, weights_time - 100))
    with pytest.raises(EbmZooError, match="older than .*model.weights.h5"):
        files.benchmark_metadata(run)
    with pytest.raises(EbmZooError, match="holds neither report.json nor ood.json"):
        files.benchmark_metadata(run, tmp_path / "empty")
    (reports / "report.json").write_text(json.dumps({"metrics": {}}))
    with pytest.raises(EbmZooError, match="not an MNIST protocol report"):
        files.benchmark_metadata(run)
    # A run trained before timing.json existed: wall-clock of the last invocation, CPU unknown.
    (run / "timing.json").unlink()
    old = files.training_time(run)
    assert old["cpu_seconds"] is None and old["complete"] is False and old["wall_seconds"] > 0


def test_a_checkpoint_loads_as_the_run_was_at_that_step(workdir, tmp_path):
    """files.load_checkpoint: the last checkpoint gives the finished model's energies, an earlier
    one (of a resumed copy) differs, and the report carries the budget spent up to it."""
    import shutil

    from ebm_zoo import training

    run = tmp_path / "longer"
    shutil.copytree(workdir, run)
    cfg = ml_collections.ConfigDict(json.loads((run / "config.json").read_text()))
    cfg.train.steps = 4
    training.train(cfg, str(run), verbose=0)
    assert files.checkpoint_steps(run) == [2, 4]
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    final = files.load_workdir(run)
    at4, at2 = files.load_checkpoint(run, 4), files.load_checkpoint(run, 2)
    np.testing.assert_allclose(at4.energy(x), final.energy(x), rtol=1e-6)
    np.testing.assert_allclose(at2.energy(x), files.load_workdir(workdir).energy(x), rtol=1e-6)
    assert np.abs(np.asarray(at2.energy(x)) - np.asarray(at4.energy(x))).max() > 1e-6
    timing = json.loads((run / "timing.json").read_text())
    assert at2.preset_metadata["checkpoint"] == {
        "step": 2,
        **{k: timing["history"][0][k] for k in ("train_wall_seconds", "train_cpu_seconds")},
    }
    with pytest.raises(EbmZooError, match=r"no checkpoint at step 3; it keeps 2, 4"):
        files.load_checkpoint(run, 3)
    with pytest.raises(EbmZooError, match="integer >= 1"):
        files.load_checkpoint(run, 0)


def test_a_preset_exported_from_a_checkpoint_is_the_run_at_that_step(workdir, tmp_path):
    """export_workdir(step=...) / tools/export.py --checkpoint: the checkpoint's weights, its
    step, the budget up to it, and only reports of that checkpoint."""
    import shutil
    import subprocess
    import sys

    from ebm_zoo import presets, training

    run = tmp_path / "longer"
    shutil.copytree(workdir, run)
    cfg = ml_collections.ConfigDict(json.loads((run / "config.json").read_text()))
    cfg.train.steps = 4
    training.train(cfg, str(run), verbose=0)
    path = presets.export_workdir(run, out_dir=tmp_path / "at2", step=2)
    x = np.random.default_rng(1).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    exported = presets.load_preset_dir(path)
    np.testing.assert_allclose(exported.energy(x), files.load_checkpoint(run, 2).energy(x), rtol=1e-6)
    assert np.abs(np.asarray(exported.energy(x)) - np.asarray(files.load_workdir(run).energy(x))).max() > 1e-6
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["training_steps"] == 2 and meta["metrics"]["training"]["step"] == 2
    reports = tmp_path / "reports"
    reports.mkdir()
    history = json.loads((run / "timing.json").read_text())["history"]
    at2 = {k: history[0][k] for k in ("train_wall_seconds", "train_cpu_seconds")}
    (reports / "report.json").write_text(json.dumps({"fd_mnist": 50.0, "checkpoint": {"step": 2, **at2}}))
    bench = files.benchmark_metadata(run, reports, step=2)
    assert bench["training_time"]["cpu_seconds"] == at2["train_cpu_seconds"]
    assert bench["training_time"]["step"] == 2 and "--checkpoint=2" in bench["metrics"]["mnist"]["command"]
    with pytest.raises(EbmZooError, match="not the report of checkpoint 4 .*checkpoint 2"):
        files.benchmark_metadata(run, reports, step=4)
    (reports / "report.json").write_text(json.dumps({"fd_mnist": 50.0}))
    with pytest.raises(EbmZooError, match="not the report of checkpoint 2 .*the final weights"):
        files.benchmark_metadata(run, reports, step=2)

    def tool(*args):
        return subprocess.run(
            [sys.executable, "tools/export.py", *args], capture_output=True, text=True, timeout=120
        )

    for args, match in (
        ([f"--workdir={run}", "--checkpoint=3", "--preset=x_at3"], "keeps checkpoints 2, 4"),
        (
            [f"--workdir={run}", "--checkpoint=2", f"--out={tmp_path / 'sm'}"],
            "goes with --workdir=RUN and --preset",
        ),
    ):
        r = tool(*args)
        assert r.returncode != 0 and match in r.stderr and "Traceback" not in r.stderr, r.stderr[-800:]


@pytest.mark.parametrize(
    "args, match",
    [
        (["--preset=descriptor_brick", "--checkpoint=2", "--protocol=mnist"], "goes with --workdir"),
        (["--workdir=RUN", "--checkpoint=2"], "goes with --workdir=RUN and --protocol"),
        (["--workdir=RUN", "--checkpoint=0", "--protocol=mnist"], "--checkpoint"),
    ],
)
def test_eval_checkpoint_flag_misuse_is_one_clear_error(args, match, workdir):
    import subprocess
    import sys

    args = [a.replace("RUN", str(workdir)) for a in args]
    r = subprocess.run(
        [sys.executable, "tools/eval.py", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode != 0 and match in r.stderr and "Traceback" not in r.stderr, r.stderr[-800:]


@pytest.mark.slow
def test_eval_tool_scores_a_checkpoint_and_records_its_budget(workdir, tmp_path):
    out = tmp_path / "ood"
    r = subprocess.run(
        [
            sys.executable,
            "tools/eval.py",
            f"--workdir={workdir}",
            "--checkpoint=2",
            "--protocol=mnist_ood",
            "--num_samples=20",
            "--num_reference=40",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode == 0, r.stderr[-1500:]
    report = json.loads((out / "ood.json").read_text())
    timing = json.loads((workdir / "timing.json").read_text())
    assert report["model"] == f"{workdir.name}@2"
    assert report["checkpoint"]["train_cpu_seconds"] == timing["history"][0]["train_cpu_seconds"]
    assert 0.0 <= report["auroc"]["noise"] <= 1.0
