"""Short-run MCMC baseline: no reference term, uniform init, replay buffer under distribution."""

import numpy as np
import tensorflow as tf

from ebm_zoo import config as config_lib
from ebm_zoo.models import build_model
from ebm_zoo.models.short_run import ShortRun
from tests.helpers import assert_weights_close, two_cpu_strategy


def _cfg():
    cfg = config_lib.get_config("short_run")
    cfg.model.update(
        dict(
            image_size=8,
            synth_size=8,
            layers=[[4, 3, 1], [8, 3, 2]],
            num_chains=8,
            num_steps=3,
            replay_capacity=32,
        )
    )
    return cfg


def test_energy_has_no_reference_term_and_init_is_uniform():
    m = build_model(_cfg().model)
    m.build_all()
    x = tf.random.stateless_uniform([3, 8, 8, 1], [1, 1], -1, 1)
    np.testing.assert_allclose(m._energy(x).numpy(), -m.net(x).numpy(), rtol=1e-6)
    x0 = m.chain_start(4000, tf.constant([2, 2]), size=8).numpy()
    assert x0.min() >= -1 and x0.max() <= 1 and abs(x0.mean()) < 0.01 and abs(x0.var() - 1 / 3) < 0.01
    assert ShortRun.from_config(m.get_config()).get_config() == m.get_config()


def test_replay_buffer_training_matches_on_two_replicas():
    cfg = _cfg()
    batch = tf.random.stateless_uniform([8, 8, 8, 1], [3, 3])
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    ref = build_model(cfg.model)
    ref.build_all()
    w0 = ref.get_weights()

    def run(strategy):
        with strategy.scope():
            m = build_model(cfg.model)
            m.compile()
            m.build_all()
            m.set_weights(w0)
        m.fit(ds, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
        return m

    one, two = run(tf.distribute.get_strategy()), run(two_cpu_strategy())
    assert_weights_close(one, two, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one.chains.states.numpy(), two.chains.states.numpy(), rtol=1e-4, atol=1e-4)
    assert one.chains.filled.numpy().sum() > 0


def test_preset_export_drops_the_replay_buffer_and_keeps_every_other_weight(tmp_path, monkeypatch):
    """The buffer is training-only state: the exported preset has capacity 0, the same energy and
    the same samples from noise, and a weights file smaller by about the buffer's bytes."""
    from pathlib import Path

    import ebm_zoo
    from ebm_zoo import presets, training

    monkeypatch.setenv("EBM_ZOO_HOME", str(tmp_path / "home"))
    cfg = _cfg()
    cfg.model.update(replay_capacity=512)
    cfg.data.update(image_size=8, batch_size=8)
    cfg.train.update(steps=2, log_every=1, checkpoint_every=2, num_samples=4)
    workdir = tmp_path / "run"
    training.train(cfg, str(workdir), verbose=0)
    run_model = presets.load_workdir(workdir)
    assert run_model.replay_capacity == 512 and run_model.chains.filled.numpy().sum() > 0

    slim = run_model.without_training_state()
    assert slim is not run_model and slim.replay_capacity == 0 and slim.chains is None
    assert run_model.without_training_state().replay_capacity == 0  # the run model is untouched
    assert run_model.replay_capacity == 512

    path = presets.export_workdir(workdir, "sr_tiny")
    model = ebm_zoo.load(str(path))
    assert model.replay_capacity == 0 and model.chains is None
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(model.energy(x), run_model.energy(x), rtol=1e-6)
    np.testing.assert_allclose(model.sample(4, seed=3), run_model.sample(4, seed=3), rtol=1e-5, atol=1e-6)
    buffer_bytes = 512 * 8 * 8 * 1 * 4
    full = Path(tmp_path / "full.weights.h5")
    run_model.save_weights(str(full))
    shipped = Path(path) / "model.weights.h5"
    assert full.stat().st_size - shipped.stat().st_size > 0.9 * buffer_bytes
    assert not any("replay" in v.path for v in model.variables)


def test_without_training_state_is_identity_without_a_buffer():
    cfg = _cfg()
    cfg.model.update(replay_capacity=0)
    m = build_model(cfg.model)
    m.build_all()
    assert m.without_training_state() is m
