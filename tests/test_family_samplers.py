"""`sampler="langevin"|"mala"|"hmc"` in every MCMC family (docs/sampling.md, "Samplers in the
families"): training with MALA reports acceptance, `sample(..., sampler=...)` overrides, the
acceptance follows the step size, the default path is unchanged, bad settings fail once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import config as config_lib
from ebm_zoo.models import build_model
from ebm_zoo.models.descriptor import Descriptor
from ebm_zoo.models.ggcn import GGCN
from ebm_zoo.models.multigrid import MultiGrid
from ebm_zoo.models.short_run import ShortRun
from ebm_zoo.models.wgcn import WGCN
from ebm_zoo.utils.checks import EbmZooError
from tests.helpers import assert_weights_close, two_cpu_strategy

REFERENCE = Path(__file__).parent / "data" / "family_sampler_reference.npz"

OBJECT = dict(image_size=8, channels=1, mode="object", layers=[[4, 3, 2]], num_chains=4, num_steps=3)
FAMILIES = {
    "descriptor": (Descriptor, dict(OBJECT, chain_init="noise")),
    "short_run": (ShortRun, dict(OBJECT, noise_scale=0.01)),
    "wgcn": (WGCN, dict(OBJECT, chain_init="noise")),
    "ggcn": (
        GGCN,
        dict(
            image_size=8,
            channels=1,
            latent_shape=[2, 2, 4],
            gen_filters=8,
            gen_min_filters=8,
            score_layers=[[8, 3, 2]],
            num_steps=3,
        ),
    ),
    "multigrid": (
        MultiGrid,
        dict(image_size=8, channels=1, grids=[1, 2, 8], num_steps=3, width=0.05, norm="layer"),
    ),
}
#: The family's own sampler name for "unchanged" (multi-grid's default is the official update).
DEFAULT = {"multigrid": "official"}


def make(family: str, **kw):
    cls, args = FAMILIES[family]
    m = cls(**{**args, **kw})
    m.compile()
    m.build_all()
    return m


def images(n=4, seed=0):
    return tf.random.stateless_uniform([n, 8, 8, 1], [seed, 5])


def fit_one(m) -> dict:
    ds = tf.data.Dataset.from_tensors(images()).repeat()
    hist = m.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    return {k: float(v[-1]) for k, v in hist.history.items()}


def mala_acceptance(m, step_sizes, num_steps: int = 5) -> list[float]:
    """Mean acceptance of `num_steps` MALA steps (per-chain test) at each step size, run by the
    family's own chain entry point with sampler_options={"step_size": ...}, from 8 states of low
    energy (20 noise-free steps of the family's own update from random images, or near-black
    images for the multi-grid model; from random images themselves a near-uniform huge-step
    proposal is as likely as the start)."""
    x0 = m.to_internal(images(8, seed=3))
    seed = tf.constant([4, 2])
    # An untrained short-run net's exp(−f/s²) is nearly flat on the pixel box, so a huge
    # *reflected* proposal is as good as any state (measured: acceptance 0.45); with walls that
    # reject, a huge step (> the box width) leaves the box and is refused.
    extra = {"boundary": "reject"} if isinstance(m, ShortRun) else {}
    width = m.internal_range[1] - m.internal_range[0]
    if isinstance(m, GGCN):
        descend = lambda x: m.flow(x, seed, num_steps=20, noise_scale=0.0, sampler="langevin").samples  # noqa: E731
        run = lambda x, o: m.flow(x, seed, num_steps=num_steps, sampler="mala", sampler_options=o)  # noqa: E731
    elif isinstance(m, MultiGrid):  # the target's mode is near black (reference term, σ = 1 on [0, 255])
        k = len(m.nets) - 1
        x0 = 0.02 * x0
        descend = lambda x: x  # noqa: E731
        run = lambda x, o: m.run_sampler(k, x, seed, num_steps=num_steps, sampler="mala", sampler_options=o)  # noqa: E731
    else:
        descend = lambda x: m.run_langevin(x, seed, num_steps=20, noise_scale=0.0, sampler="langevin").samples  # noqa: E731
        run = lambda x, o: m.run_langevin(x, seed, num_steps=num_steps, sampler="mala", sampler_options=o)  # noqa: E731

    @tf.function
    def rates():
        x = descend(x0)
        return [
            run(x, {"step_size": float(d), **(extra if d > width else {})}).accept_rate for d in step_sizes
        ]

    out = rates()
    assert all(r.shape == [8] for r in out)
    return [float(tf.reduce_mean(r)) for r in out]


#: Families of the per-family tests; the multi-grid model's tests take 30-150 s each on the
#: loaded 2-core machine (tracing its per-grid chains), so they are marked slow.
PARAMS = [pytest.param(f, marks=pytest.mark.slow) if f == "multigrid" else f for f in FAMILIES]


@pytest.fixture(scope="module", params=PARAMS)
def mala_model(request):
    """(family, a tiny model trained one step with sampler="mala", that step's logs)."""
    m = make(request.param, sampler="mala")
    return request.param, m, fit_one(m)


# ------------------------------------------------------------------------------------------------
def test_one_training_step_with_mala_reports_acceptance(mala_model):
    family, m, logs = mala_model
    assert 0.0 <= logs["accept_rate"] <= 1.0
    assert np.isfinite(logs["sampler_energy"])
    if family.startswith("multigrid"):
        grid_rates = [logs[f"accept_rate_{s}"] for s in m.net_grids]
        assert all(0.0 <= r <= 1.0 for r in grid_rates)
        assert logs["accept_rate"] == pytest.approx(np.mean(grid_rates), rel=1e-5)
    # the config keeps the sampler: rebuilt from its config, the model trains with MALA again
    again = type(m).from_config(m.get_config())
    assert again.sampler == "mala" and "accept_rate" in [t.name for t in again.metrics]


def test_langevin_training_logs_no_acceptance():
    logs = fit_one(make("descriptor"))
    assert "accept_rate" not in logs and "sampler_grad_norm" in logs


def test_sample_with_hmc_has_the_shape_and_differs_from_langevin(mala_model):
    family, m, _ = mala_model
    lang = m.sample(3, seed=1, num_steps=4, sampler=DEFAULT.get(family, "langevin"))
    hmc = m.sample(3, seed=1, num_steps=4, sampler="hmc", sampler_options={"num_leapfrog_steps": 2})
    assert hmc.shape == lang.shape == (3, 8, 8, 1)
    h = hmc.numpy()
    assert np.isfinite(h).all() and h.min() >= 0.0 and h.max() <= 1.0
    assert np.abs(h - lang.numpy()).max() > 1e-4


def test_mala_acceptance_is_low_at_a_huge_step_and_near_one_at_a_tiny_step(mala_model):
    _, m, _ = mala_model
    lo, hi = m.internal_range
    width = hi - lo
    tiny, huge = mala_acceptance(m, [1e-5 * width, 10.0 * width])
    assert tiny > 0.9, tiny
    assert huge < 0.1, huge


@pytest.mark.parametrize("family", PARAMS)
def test_default_sampler_is_unchanged_and_equals_explicit_langevin(family):
    m = make(family)
    assert m.sampler == DEFAULT.get(family, "langevin") and m.sampler_options == {}
    default = m.sample(2, seed=3, num_steps=3).numpy()
    explicit = m.sample(2, seed=3, num_steps=3, sampler=DEFAULT.get(family, "langevin")).numpy()
    np.testing.assert_array_equal(default, explicit)
    # a config saved before `sampler` existed (no sampler keys) still loads, to the same model
    cfg = m.get_config()
    cfg.pop("sampler_options")
    if not family.startswith("multigrid"):
        cfg.pop("sampler")
    old = type(m).from_config(cfg)
    assert old.sampler == m.sampler and old.sampler_options == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset", ["short_run_digits", "wgcn_lfw", "ggcn_lfw", "multigrid_lfw", "descriptor_brick"]
)
def test_shipped_preset_samples_are_unchanged_by_samplers(preset):
    """Saved with the code before `sampler=` existed (commit 96d80fe, TF 2.21 CPU kernels): sample(2, seed=7) with no override, and with the preset's sampler named explicitly."""
    import ebm_zoo

    m = ebm_zoo.load(preset)
    steps = 3 if preset == "descriptor_brick" else None  # its default is 1000 steps at 64×64
    saved = np.load(REFERENCE)[preset]
    default = m.sample(2, seed=7, num_steps=steps).numpy()
    np.testing.assert_array_equal(m.sample(2, seed=7, num_steps=steps, sampler=m.sampler).numpy(), default)
    # Bit-identical on the machine that saved them; another CPU's kernels (AVX2 vs AVX-512) may
    # reorder float sums, so the saved values are compared to 1e-3 of the [0, 1] pixel range. A
    # changed noise stream or step rule moves pixels by ~0.1, far outside it.
    np.testing.assert_allclose(default, saved, rtol=0, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cd", "pcd"])
def test_multigrid_baselines_train_with_mala(mode):
    """The CD / persistent-CD baselines (modes of the multi-grid class) run MALA chains too."""
    m = make("multigrid", grids=[1, 8], mode=mode, pcd_chains=4, sampler="mala")
    logs = fit_one(m)
    assert 0.0 <= logs["accept_rate"] <= 1.0 and logs["accept_rate"] == logs["accept_rate_8"]


# ------------------------------------------------------------------------------------------------
# Bad names and settings: one EbmZooError naming the value.
@pytest.mark.parametrize("family", ["descriptor", "ggcn", "multigrid"])
@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(sampler="nuts"), "nuts"),
        (dict(sampler=3), "sampler"),
        (dict(sampler="hmc", sampler_options={"num_leapfrog_steps": 0}), "num_leapfrog_steps"),
        (dict(sampler="mala", sampler_options={"bogus": 1}), "bogus"),
        (dict(sampler="mala", sampler_options={"num_leapfrog_steps": 3}), "num_leapfrog_steps"),
        (dict(sampler="mala", sampler_options={"target_accept": 1.5}), "target_accept"),
        (dict(sampler="mala", sampler_options={"adapt_steps": 5}), "target_accept"),
        (dict(sampler="hmc", sampler_options={"step_size": -1.0}), "step_size"),
        (dict(sampler="mala", sampler_options="fast"), "dict"),
        (dict(sampler_options={"target_accept": 0.5}), "takes no"),
    ],
)
def test_bad_sampler_overrides_fail_with_one_clear_error(family, overrides, match):
    m = make(family)
    with pytest.raises(EbmZooError, match=match):
        m.sample(2, seed=0, num_steps=1, **overrides)


@pytest.mark.parametrize(
    "family, kwargs, match",
    [
        ("descriptor", dict(sampler="mala", noise_scale=0.0), "noise_scale"),
        ("descriptor", dict(sampler="gibbs"), "gibbs"),
        ("wgcn", dict(sampler="hmc", sampler_options={"num_leapfrog_steps": 0}), "num_leapfrog_steps"),
        ("multigrid", dict(sampler="mala", norm="batch"), "norm='batch'"),
        ("multigrid", dict(sampler="official", sampler_options={"step_size": 1.0}), "takes no"),
        ("ggcn", dict(sampler="mala", sampler_options={"boundary": "wrap"}), "wrap"),
    ],
)
def test_bad_sampler_configs_fail_at_construction(family, kwargs, match):
    with pytest.raises(EbmZooError, match=match):
        make(family, **kwargs)


def test_flow_only_settings_are_refused_with_mala_on_ggcn():
    m = make("ggcn")
    with pytest.raises(EbmZooError, match="solver='fixed_point'.*sampler='langevin'"):
        m.sample(2, seed=0, sampler="mala", solver="fixed_point")
    with pytest.raises(EbmZooError, match="implicit_iters"):
        m.sample(2, seed=0, sampler="hmc", implicit_iters=3)


def test_batch_norm_multigrid_refuses_a_mala_override():
    m = make("multigrid", norm="batch")
    with pytest.raises(EbmZooError, match="norm='batch'"):
        m.sample(2, seed=0, sampler="mala")


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["short_run_digits", "ggcn_cpu", "wgcn_cpu", "descriptor_texture", "multigrid_layer_cpu"]
)
def test_configs_select_the_sampler_from_the_command_line(name):
    cfg = config_lib.get_config(name)
    assert cfg.model.sampler in ("langevin", "official")
    config_lib.apply_overrides(
        cfg,
        {
            "model.sampler": "hmc",
            "model.sampler_options.num_leapfrog_steps": "2",
            "model.sampler_options.target_accept": "0.6",
        },
    )
    m = build_model(cfg.model)
    assert m.sampler == "hmc" and m.sampler_options == {"num_leapfrog_steps": 2, "target_accept": 0.6}
    assert m.get_config()["sampler_options"] == {"num_leapfrog_steps": 2, "target_accept": 0.6}


@pytest.mark.slow
def test_mala_training_step_on_two_replicas_equals_one():
    """The descriptor trained 2 steps with MALA: one replica = two replicas (noise and
    accept-test uniforms drawn for the global batch)."""
    x = images(4, seed=8)
    ds = tf.data.Dataset.from_tensors(x).repeat()
    ref = make("descriptor", sampler="mala")
    w0 = ref.get_weights()

    def run(strategy):
        with strategy.scope():
            m = make("descriptor", sampler="mala")
            m.set_weights(w0)
        m.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        return m

    one, two = run(tf.distribute.get_strategy()), run(two_cpu_strategy())
    assert_weights_close(one, two, rtol=1e-4, atol=1e-5)
