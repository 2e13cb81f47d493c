"""wGCN: the Descriptor with the implicit (JKO) particle flow."""

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo.models import build_model
from ebm_zoo.models.descriptor import Descriptor
from ebm_zoo.models.wgcn import WGCN
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import two_cpu_strategy

TINY = dict(image_size=8, channels=1, layers=[[6, 3, 2], [5, 3, 1]], num_chains=4, num_steps=4)


def _model(cls=WGCN, **kw):
    m = cls(**{**TINY, **kw})
    m.compile()
    m.build_all()
    return m


def _images(n=4, seed=0):
    return tf.random.stateless_uniform([n, 8, 8, 1], [seed, 9])


def test_tau_sets_step_size_and_round_trips():
    m = WGCN(**TINY, tau=0.08)
    assert m.step_size == pytest.approx(0.4) and m.tau == pytest.approx(0.08)
    m2 = WGCN.from_config(m.get_config())
    assert m2.step_size == pytest.approx(0.4) and m2.implicit_iters == m.implicit_iters


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tau=0.0), "tau"),
        (dict(tau=-1.0), "tau"),
        (dict(implicit_iters=0), "implicit_iters"),
        (dict(tau=0.08, step_size=0.3), "only one"),
        (dict(solver="newton"), "solver"),
        (dict(step_size=0.0), "step_size"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(EbmZooError, match=match):
        WGCN(**{**TINY, **kwargs})


def test_fixed_point_with_one_iteration_is_the_descriptor_langevin():
    desc = _model(Descriptor, step_size=0.5)
    w = _model(step_size=0.5, implicit_iters=1, solver="fixed_point")
    w.set_weights(desc.get_weights())
    np.testing.assert_allclose(w.sample(3, seed=4).numpy(), desc.sample(3, seed=4).numpy(), atol=1e-5)
    w3 = _model(step_size=0.5, implicit_iters=3, solver="split")
    w3.set_weights(desc.get_weights())
    assert not np.allclose(w3.sample(3, seed=4).numpy(), desc.sample(3, seed=4).numpy(), atol=1e-3)


def test_train_step_logs_the_energy_trace():
    m = _model(chain_init="noise", trace_points=3)
    logs = m.train_step(_images())
    assert {"flow_e00", "flow_e02", "flow_e04", "flow_rises", "loss"} <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    _, trace = m.langevin(_images(2), num_steps=4, trace=True)
    assert trace.shape == (5,)


def test_two_replicas_match_one_replica():
    two_strategy = two_cpu_strategy()
    cfg = dict(family="wgcn", **TINY, chain_init="persistent", optimizer="sgd", learning_rate=0.01)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        ref = build_model(cfg)
        ref.compile()
        ref.build_all()
    weights = ref.get_weights()
    ds = tf.data.Dataset.from_tensor_slices(_images(8)).batch(4)

    def run(strategy):
        with strategy.scope():
            m = build_model(cfg)
            m.compile()
            m.build_all()
            m.set_weights(weights)
        m.fit(ds, epochs=1, verbose=0, shuffle=False)
        return m

    one = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = run(two_strategy)
    assert max(np.abs(a - b).max() for a, b in zip(one.get_weights(), weights)) > 1e-5
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
