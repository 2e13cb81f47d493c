"""Test setup: quiet TensorFlow, two logical CPU devices for distribution tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EBM_ZOO_OFFLINE", "1")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:  # already initialised (e.g. by a plugin); distribution tests will skip
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer tests (still run in CI)")
