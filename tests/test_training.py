"""The training loop and CLI: resume, divergence, config errors, end-to-end run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import config as config_lib
from ebm_zoo import training
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import tiny_descriptor_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _weights(run):
    return [w.copy() for w in run.model.get_weights()]


def test_resumed_run_continues_the_same_trajectory(tmp_path):
    cfg = tiny_descriptor_config()
    cfg.train.steps = 4
    straight = training.Run(cfg, str(tmp_path / "straight"), verbose=0)
    straight.fit()
    w_straight = _weights(straight)
    chains_straight = straight.model.chains.states.numpy()

    half = tiny_descriptor_config()
    half.train.steps = 2
    training.Run(half, str(tmp_path / "resumed"), verbose=0).fit()
    resumed = training.Run(cfg, str(tmp_path / "resumed"), verbose=0)
    assert resumed.start_step == 2
    resumed.fit()
    for a, b in zip(w_straight, _weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chains_straight, resumed.model.chains.states.numpy(), rtol=1e-5, atol=1e-4)
    # Checkpoints, sample grids, TensorBoard events and the resolved config are in the workdir.
    wd = tmp_path / "resumed"
    assert sorted(os.listdir(wd / "samples"))[:2] == ["step_000002.png", "step_000002_chains.png"]
    assert any(f.startswith("events") for f in os.listdir(wd / "tb"))
    assert json.loads((wd / "config.json").read_text())["model"]["family"] == "descriptor"
    assert json.loads((wd / "metrics.json").read_text())["step"] == 4


def test_divergence_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    cfg = tiny_descriptor_config(divergence_threshold=1e-3)  # any real score exceeds this
    cfg.train.update(dict(steps=4, log_every=2, checkpoint_every=2))
    with pytest.raises(training.TrainingDiverged, match=r"diverged at step 1: .*none \(no checkpoint"):
        training.train(cfg, str(tmp_path / "run"), verbose=0)
    # A run that diverges later keeps its last good checkpoint.
    ok = tiny_descriptor_config()
    ok.train.steps = 2
    training.train(ok, str(tmp_path / "later"), verbose=0)
    bad = tiny_descriptor_config(learning_rate=1e30)
    bad.model.divergence_threshold = 1e12
    with pytest.raises(EbmZooError, match="different model config"):
        training.train(bad, str(tmp_path / "later"), verbose=0)
    before = sorted(os.listdir(tmp_path / "later" / "checkpoints"))
    cfg2 = tiny_descriptor_config()
    cfg2.train.steps = 4
    run = training.Run(cfg2, str(tmp_path / "later"), verbose=0)
    run.threshold = 1e-3
    with pytest.raises(training.TrainingDiverged, match=r"step 3: .*ckpt-2"):
        run.fit()
    assert sorted(os.listdir(tmp_path / "later" / "checkpoints")) == before


def test_config_errors_list_valid_names():
    with pytest.raises(EbmZooError, match="valid names: .*descriptor"):
        config_lib.get_config("no_such_model")
    cfg = config_lib.get_config("descriptor")
    with pytest.raises(EbmZooError, match="valid keys: .*model.step_size"):
        config_lib.apply_overrides(cfg, {"model.stepsize": "0.1"})
    config_lib.apply_overrides(cfg, {"model.step_size": "0.25", "train.steps": "10"})
    assert cfg.model.step_size == 0.25 and cfg.train.steps == 10
    bad = tiny_descriptor_config()
    bad.train.steps = 0
    with pytest.raises(EbmZooError, match="train.steps must be an int >= 1, got 0"):
        training.Run(bad, "/nonexistent/never-created", verbose=0)


def _cli(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_cli_end_to_end_on_shipped_texture(tmp_path):
    args = [
        "--model=descriptor",
        f"--workdir={tmp_path / 'run'}",
        "--train_steps=4",
        "--verbose=2",
        "--config.model.image_size=16",
        "--config.model.synth_size=16",
        "--config.model.layers=[[8,3,2],[8,3,1]]",
        "--config.model.num_chains=4",
        "--config.model.num_steps=3",
        "--config.data.image_size=16",
        "--config.train.log_every=2",
        "--config.train.checkpoint_every=2",
        "--config.train.num_samples=4",
    ]
    out = _cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Final metrics: step=4" in out.stdout
    assert (tmp_path / "run" / "samples" / "step_000004.png").exists()
    # Re-running resumes and has nothing left to do.
    again = _cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "Resumed from" in again.stdout
    # Bad input: unknown dataset and unknown config key give one clear line, exit code 1.
    bad = _cli("--model=descriptor", "--dataset=no_such_set", f"--workdir={tmp_path / 'bad'}", cwd=tmp_path)
    assert bad.returncode == 1 and "no_such_set" in bad.stderr and "digits" in bad.stderr
    bad_key = _cli("--model=descriptor", "--config.model.nope=1", cwd=tmp_path)
    assert bad_key.returncode == 1 and "valid keys" in bad_key.stderr


@pytest.mark.parametrize(
    "config_name",
    ["descriptor_texture", "short_run_digits", "wgcn_cpu", "ggcn_cpu", "multigrid_layer_cpu", "vapo_cpu"],
)
def test_checkpoint_restores_every_model_variable(config_name, tmp_path):
    """Every variable of the model (incl. VAPO's EMA U-Net, whose blocks Keras keeps in Python
    lists and no optimizer references) survives a training checkpoint round trip."""
    from ebm_zoo import config as config_lib
    from ebm_zoo.models import build_model

    def built():
        m = build_model(config_lib.get_config(config_name).model)
        m.compile()
        m.build_all()
        return m

    src = built()
    rng = np.random.default_rng(0)
    for v in src.variables:
        if v.dtype in ("float32", "float64"):
            v.assign(rng.standard_normal(v.shape).astype(v.dtype))
    path = tf.train.Checkpoint(**src.checkpoint_items()).save(str(tmp_path / "ckpt"))
    dst = built()
    tf.train.Checkpoint(**dst.checkpoint_items()).restore(path).assert_existing_objects_matched()
    assert len(dst.variables) == len(src.variables)
    for a, b in zip(src.variables, dst.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_global_batch_not_divisible_by_replicas_is_refused(tmp_path):
    from tests.helpers import two_cpu_strategy

    cfg = tiny_descriptor_config()  # batch_size 1: one image for 2 replicas
    with pytest.raises(EbmZooError, match=r"data.batch_size=1 .* divisible by the 2 replicas"):
        training.Run(cfg, str(tmp_path / "run"), strategy=two_cpu_strategy(), verbose=0)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_a_run_saved_before_a_new_config_key_resumes_when_the_key_holds_its_default(tmp_path):
    """Configs gain keys over time (e.g. `model.sampler`, `model.sampler_options`). A run saved
    without them is the same run when the new keys hold what the constructor used for them, and a
    different run when they do not."""
    cfg = tiny_descriptor_config()
    cfg.train.steps = 1
    wd = tmp_path / "run"
    training.train(cfg, str(wd), verbose=0)
    saved = json.loads((wd / "config.json").read_text())
    saved["model"].pop("sampler", None)
    saved["model"].pop("sampler_options", None)
    (wd / "config.json").write_text(json.dumps(saved))
    cfg.model.sampler = "langevin"  # the constructor's default
    cfg.model.sampler_options = {"step_size": None}  # None = the default
    cfg.train.steps = 2
    run = training.Run(cfg, str(wd), verbose=0)
    assert run.start_step == 1
    run.close()
    assert json.loads((wd / "config.json").read_text())["model"]["sampler"] == "langevin"  # now recorded
    (wd / "config.json").write_text(json.dumps(saved))
    cfg.model.sampler = "mala"  # another sampler is another run
    with pytest.raises(EbmZooError, match=r"model.sampler: '<absent>' in the run, 'mala' now"):
        training.Run(cfg, str(wd), verbose=0)


def test_max_to_keep_sets_how_many_checkpoints_survive(tmp_path):
    from ebm_zoo.presets import files

    for keep, expected in ((None, [2, 3, 4]), (5, [1, 2, 3, 4])):
        cfg = tiny_descriptor_config()
        cfg.train.update(dict(steps=4, log_every=1, checkpoint_every=1))
        if keep is not None:
            cfg.train.max_to_keep = keep
        wd = tmp_path / f"keep{keep}"
        training.train(cfg, str(wd), verbose=0)
        assert files.checkpoint_steps(wd) == expected
        # timing.json lists the budget at every checkpoint of the run, not only the last one.
        history = json.loads((wd / "timing.json").read_text())["history"]
        assert [h["step"] for h in history] == [1, 2, 3, 4]
        cpu = [h["train_cpu_seconds"] for h in history]
        assert cpu == sorted(cpu) and cpu[0] > 0
    cfg.train.max_to_keep = 0
    with pytest.raises(EbmZooError, match=r"train.max_to_keep must be an int >= 1, got 0"):
        training.train(cfg, str(tmp_path / "bad"), verbose=0)
    # A re-run may change it (the same run continues).
    cfg.train.update(dict(max_to_keep=2, steps=5))
    training.train(cfg, str(tmp_path / "keep5"), verbose=0)
    assert files.checkpoint_steps(tmp_path / "keep5") == [4, 5]


def test_each_model_fit_call_reuses_the_traced_train_step(tmp_path):
    """Issue 12's "idle wall time at the start of each model.fit call": a run split into several
    fit calls (a resumed run off the log grid, a tail) traces train_step once, not per call."""
    cfg = tiny_descriptor_config()
    cfg.train.update(dict(steps=5, log_every=2, checkpoint_every=2))
    run = training.Run(cfg, str(tmp_path / "run"), verbose=0)
    assert run._segments() == [(0, 2, 2), (4, 1, 1)]  # two fit calls
    traces = []
    step = run.model.train_step

    def counting_step(data):
        traces.append(1)  # Python side effect: runs only while tracing
        return step(data)

    run.model.train_step = counting_step
    run.fit()
    assert int(run.model.optimizer.iterations.numpy()) == 5
    assert len(traces) == 1, f"train_step traced {len(traces)} times over two fit calls"
    run.model.fit(run.dataset(skip_batches=5), epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    assert len(traces) == 1
