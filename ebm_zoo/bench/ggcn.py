"""Suite "ggcn": what amortisation buys at sampling time, and whether XLA pays for GGCN.

Rows (all on untrained models: sampling cost depends on the architecture, not the weights):

- ``ggcn_k0``:        seconds per 100 samples, GGCN fast path h → G(h) (K = 0);
- ``ggcn_kK``:        the same with the config's K wGCN refinement steps (J solver iterations each);
- ``ggcn_kK_xla``:    ``ggcn_kK`` compiled with `jit_compile=True`;
- ``descriptor_T``:   the generative ConvNet with the *same* energy net, T explicit Langevin steps
                      from noise (T = the descriptor's usual 30, quick: 10);
- ``wgcn_T``:         wGCN with the same net, T implicit steps (J iterations each);
- ``ggcn_train_step`` / ``ggcn_train_step_xla``: seconds per GGCN training iteration.

``ratio_vs_descriptor`` = seconds / seconds of ``descriptor_T`` (< 1: faster than the descriptor).
Image size and nets come from `configs/ggcn_cpu.py` (16×16 gray), batch 100 for sampling.
Each row also reports ``median_cpu_s``, the process CPU time per call (all threads): on a machine
shared with other jobs it varies far less than wall-clock time. The XLA / no-XLA train steps are
timed interleaved, so both see the same load.
"""

from __future__ import annotations

import time

from ebm_zoo.bench import median


def _time(fn, repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median wall seconds, median process CPU seconds) of `repeats` calls after `warmup`."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return median(wall), median(cpu)


def _models(num_steps_descriptor: int):
    from ebm_zoo.config import get_config
    from ebm_zoo.models import build_model

    cfg = get_config("ggcn_cpu")
    ggcn = build_model(cfg.model)
    ggcn.compile()
    ggcn.build_all()
    net = dict(
        image_size=ggcn.image_size,
        channels=ggcn.channels,
        mode="object",
        layers=ggcn.score_layers,
        activation=ggcn.score_activation,
        num_steps=num_steps_descriptor,
    )
    desc = build_model(dict(family="descriptor", **net))
    wgcn = build_model(dict(family="wgcn", **net, implicit_iters=ggcn.implicit_iters))
    for m in (desc, wgcn):
        m.compile()
        m.build_all()
    return cfg, ggcn, desc, wgcn


def _sampler(model, n: int, jit: bool = False, **overrides):
    import tensorflow as tf

    steps = overrides.pop("num_steps", -1)  # -1: the model's default (EnergyModel._sample contract)
    fn = tf.function(lambda s: model._sample(n, s, tf.constant(steps), model.max_num_steps), jit_compile=jit)
    seed = tf.constant([0, 1], tf.int32)
    return lambda: fn(seed).numpy()


def run(quick: bool, matmul_gflops: float) -> list[dict]:
    import tensorflow as tf

    n = 100
    repeats = 2 if quick else 5
    t_desc = 10 if quick else 30
    cfg, ggcn, desc, wgcn = _models(t_desc)
    k = ggcn.num_steps
    rows = []

    def add(name, fn, steps, **extra):
        secs, cpu = _time(fn, repeats)
        rows.append(
            dict(name=name, steps=steps, median_s=secs, median_cpu_s=cpu, s_per_100=secs * 100 / n, **extra)
        )

    add("descriptor_T", _sampler(desc, n), t_desc, J=1)
    add("wgcn_T", _sampler(wgcn, n), t_desc, J=wgcn.implicit_iters)
    add("ggcn_k0", _sampler(ggcn, n, num_steps=0), 0, J=0)
    add("ggcn_kK", _sampler(ggcn, n), k, J=ggcn.implicit_iters)
    add("ggcn_kK_xla", _sampler(ggcn, n, jit=True), k, J=ggcn.implicit_iters)
    base = rows[0]["median_s"]
    for r in rows:
        r["ratio_vs_descriptor"] = r["median_s"] / base

    batch = int(cfg.data.batch_size)
    images = tf.random.stateless_uniform([batch, ggcn.image_size, ggcn.image_size, ggcn.channels], [0, 3])
    steps = {jit: tf.function(ggcn.train_step, jit_compile=jit) for jit in (False, True)}
    for step in steps.values():  # compile both first
        step(images)["loss"].numpy()
    times = {False: ([], []), True: ([], [])}
    for _ in range(repeats * 2):
        for jit, step in steps.items():
            wall, cpu = _time(lambda step=step: step(images)["loss"].numpy(), repeats=1, warmup=0)
            times[jit][0].append(wall)
            times[jit][1].append(cpu)
    for jit in (False, True):
        rows.append(
            dict(
                name="ggcn_train_step_xla" if jit else "ggcn_train_step",
                steps=k,
                median_s=median(times[jit][0]),
                median_cpu_s=median(times[jit][1]),
                batch=batch,
            )
        )
    rows[-1]["ratio_vs_no_xla"] = rows[-1]["median_s"] / rows[-2]["median_s"]
    rows[-1]["cpu_ratio_vs_no_xla"] = rows[-1]["median_cpu_s"] / rows[-2]["median_cpu_s"]
    return rows
