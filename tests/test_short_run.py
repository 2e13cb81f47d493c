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
