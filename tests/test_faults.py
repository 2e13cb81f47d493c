"""Faults: SIGKILL during the final weights write, two runs on one workdir, leftovers of killed
runs, re-running a run with another config, step counts off the log grid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ebm_zoo
from ebm_zoo import training
from ebm_zoo.utils import atomic
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import tiny_descriptor_config

REPO = Path(__file__).resolve().parent.parent
TINY = [
    "--model=descriptor",
    "--config.model.image_size=16",
    "--config.model.synth_size=16",
    "--config.model.layers=[[8,3,2],[8,3,1]]",
    "--config.model.num_chains=4",
    "--config.model.num_steps=3",
    "--config.data.image_size=16",
    "--config.train.log_every=2",
    "--config.train.checkpoint_every=2",
    "--config.train.num_samples=4",
    "--verbose=0",
]


def _cmd(*args):
    return [sys.executable, str(REPO / "tools" / "train.py"), *args]


def _env(**extra):
    env = dict(os.environ, EBM_ZOO_OFFLINE="1", PYTHONPATH=str(REPO), **extra)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def _train(*args, cwd):
    return subprocess.run(_cmd(*args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)


def _temps(d: Path) -> list[str]:
    return sorted(p for p in os.listdir(d) if p.startswith(atomic.TEMP_PREFIX))


@pytest.mark.slow
def test_sigkill_during_the_final_weights_write_keeps_a_loadable_run(tmp_path):
    wd = tmp_path / "run"
    first = _train(f"--workdir={wd}", "--train_steps=2", *TINY, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    weights_at_2 = (wd / "model.weights.h5").read_bytes()
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype(np.float32)  # gray brick
    energy_at_2 = np.asarray(ebm_zoo.load(str(wd)).energy(x))

    # Continue to step 4; the writer pauses inside the final write (temp file written, not yet
    # renamed) and is SIGKILLed there -- deterministically, at the worst moment.
    proc = subprocess.Popen(
        _cmd(f"--workdir={wd}", "--train_steps=4", *TINY),
        cwd=tmp_path,
        env=_env(**{atomic.PAUSE_ENV: "model.weights.h5"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 600
    while not any(p.endswith(".paused") for p in os.listdir(wd)):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the training run never reached its final weights write"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    temps = _temps(wd)
    assert any(t.endswith(".model.weights.h5") for t in temps), temps  # the torn write stayed aside
    assert (wd / "model.weights.h5").read_bytes() == weights_at_2  # the published file is intact
    np.testing.assert_array_equal(np.asarray(ebm_zoo.load(str(wd)).energy(x)), energy_at_2)

    # The next run cleans the leftovers, resumes from the step-4 checkpoint and finishes.
    third = _train(f"--workdir={wd}", "--train_steps=4", *TINY, cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "Removed leftovers of an interrupted run" in third.stdout
    assert _temps(wd) == []
    assert json.loads((wd / "metrics.json").read_text())["step"] == 4
    energy_at_4 = np.asarray(ebm_zoo.load(str(wd)).energy(x))
    assert not np.allclose(energy_at_4, energy_at_2)


def test_second_training_process_on_one_workdir_gets_a_clear_message(tmp_path):
    wd = tmp_path / "run"
    wd.mkdir()
    lock = training.WorkdirLock(str(wd))
    lock.acquire()
    try:
        out = _train(f"--workdir={wd}", "--train_steps=2", *TINY, cwd=tmp_path)
    finally:
        lock.release()
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Another training run is using" in lines[0], out.stderr
    assert f"pid {os.getpid()}" in lines[0] and "another --workdir" in lines[0]
    assert sorted(os.listdir(wd)) == ["train.lock"]  # it wrote nothing


def test_second_run_object_in_one_process_is_refused_until_the_first_finishes(tmp_path):
    cfg = tiny_descriptor_config()
    cfg.train.steps = 2
    first = training.Run(cfg, str(tmp_path / "run"), verbose=0)
    with pytest.raises(EbmZooError, match="An earlier Run in this process still holds it"):
        training.Run(cfg, str(tmp_path / "run"), verbose=0)
    first.fit()  # releases the lock
    again = training.Run(cfg, str(tmp_path / "run"), verbose=0)
    assert again.start_step == 2
    again.close()


def test_rerun_with_another_config_is_refused_and_keeps_config_json(tmp_path):
    cfg = tiny_descriptor_config()
    cfg.train.steps = 2
    wd = tmp_path / "run"
    training.train(cfg, str(wd), verbose=0)
    before = (wd / "config.json").read_text()
    other = tiny_descriptor_config()
    other.data.name = "digits"
    with pytest.raises(EbmZooError) as err:
        training.train(other, str(wd), verbose=0)
    msg = str(err.value)
    assert "data.name: 'textures/brick' in the run, 'digits' now" in msg and "new --workdir" in msg
    assert (wd / "config.json").read_text() == before
    # More steps (and other logging settings) continue the same run.
    longer = tiny_descriptor_config()
    longer.train.update(dict(steps=4, log_every=1))
    run = training.Run(longer, str(wd), verbose=0)
    assert run.start_step == 2
    run.close()
    assert json.loads((wd / "config.json").read_text())["train"]["steps"] == 4


@pytest.mark.slow
def test_step_count_off_the_log_grid_runs_logs_and_checkpoints_at_its_end(tmp_path):
    """steps=3, log_every=2: the run happens (no refusal), logs and checkpoints at step 3, and
    follows the same trajectory as a run that logs every step; extending it to 5 resumes off
    the grid and still matches, and a stale ckpt-N_temp of a killed save is removed."""
    odd = tiny_descriptor_config()
    odd.train.update(dict(steps=3, log_every=2, checkpoint_every=2))
    wd = tmp_path / "odd"
    run = training.Run(odd, str(wd), verbose=0)
    assert run._segments() == [(0, 2, 1), (2, 1, 1)]
    assert run.fit()["step"] == 3
    ckpts = os.listdir(wd / "checkpoints")
    assert any(c.startswith("ckpt-2.") for c in ckpts) and any(c.startswith("ckpt-3.") for c in ckpts)
    assert (wd / "samples" / "step_000003.png").is_file()

    every = tiny_descriptor_config()
    every.train.update(dict(steps=3, log_every=1, checkpoint_every=1))
    straight = training.Run(every, str(tmp_path / "every"), verbose=0)
    straight.fit()
    for a, b in zip(run.model.get_weights(), straight.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    (wd / "checkpoints" / "ckpt-9_temp").mkdir()
    (wd / "checkpoints" / "ckpt-9_temp" / "part-00000").write_text("torn")
    five = tiny_descriptor_config()
    five.train.update(dict(steps=5, log_every=2, checkpoint_every=2))
    resumed = training.Run(five, str(wd), verbose=0)
    assert not (wd / "checkpoints" / "ckpt-9_temp").exists()
    assert resumed.start_step == 3 and resumed._segments() == [(3, 1, 1), (4, 1, 1)]
    resumed.fit()
    every5 = tiny_descriptor_config()
    every5.train.update(dict(steps=5, log_every=1, checkpoint_every=1))
    straight5 = training.Run(every5, str(tmp_path / "every5"), verbose=0)
    straight5.fit()
    for a, b in zip(resumed.model.get_weights(), straight5.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sigkill_mid_run_resumes_on_the_same_trajectory(tmp_path):
    """kill -9 right after the step-4 checkpoint (paused in its sample-grid write): the re-run
    cleans up, resumes at step 4 and ends where an uninterrupted run ends."""
    # The uninterrupted reference run goes on concurrently (independent workdir).
    straight = subprocess.Popen(
        _cmd(f"--workdir={tmp_path / 'straight'}", "--train_steps=6", *TINY),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wd = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(f"--workdir={wd}", "--train_steps=6", *TINY),
        cwd=tmp_path,
        env=_env(**{atomic.PAUSE_ENV: "step_000004.png"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 600
    while not (wd / "samples").is_dir() or not any(p.endswith(".paused") for p in os.listdir(wd / "samples")):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the run never reached step 4"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (wd / "model.weights.h5").exists()
    assert any(c.startswith("ckpt-4.") for c in os.listdir(wd / "checkpoints"))
    with pytest.raises(EbmZooError, match="has not finished|model config"):
        ebm_zoo.load(str(wd))
    resumed = _train(f"--workdir={wd}", "--train_steps=6", *TINY, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, err = straight.communicate(timeout=900)
    assert straight.returncode == 0, err[-3000:]
    assert json.loads((wd / "metrics.json").read_text())["step"] == 6
    assert _temps(wd / "samples") == [] and _temps(wd) == []
    a, b = ebm_zoo.load(str(tmp_path / "straight")), ebm_zoo.load(str(wd))
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
