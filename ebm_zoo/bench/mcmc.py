r"""Suite "mcmc": steps per second of Langevin, MALA and HMC on one ConvNet energy, ours vs TFP.

The energy is the descriptor's E(x) = −f(x) + ‖x‖²/2 with an `EnergyConvNet` object net at
32×32×3 (dense top), batch 64 (each image its own chain). Every variant runs T steps inside one
`tf.function`:

- ``langevin``     `get_sampler("langevin")` (today's `ebm_zoo.sampling.langevin` loop);
- ``mala``         `get_sampler("mala")`: our while_loop with carried E and ∇E;
- ``mala_tfp``     `tfp.mcmc.MetropolisAdjustedLangevinAlgorithm` through `tfp.mcmc.sample_chain`
                   (`num_burnin_steps` = T − 1 and one result: T steps, no state history kept;
                   `num_steps_between_results` would be ignored for a single result);
- ``mala_adapt`` / ``mala_tfp_adapt``  the same with step-size adaptation on every step (ours:
                   per-chain Robbins-Monro; TFP: `SimpleStepSizeAdaptation`, per-chain step sizes);
- ``hmc`` / ``hmc_tfp``  L = 5 leapfrog steps (`HamiltonianMonteCarlo`).

Variants are timed *interleaved* (repeat r of every variant before repeat r + 1 of any), so
load from other processes on a shared host hits them alike; ratios use the medians. One HMC
step costs L gradient evaluations, so rows also give gradient evaluations per second.
"""

from __future__ import annotations

import os
import time

from ebm_zoo.bench import median

SIZES = {
    "full": dict(batch=64, steps=20, repeats=7),
    "quick": dict(batch=8, steps=3, repeats=2),
}
NET = dict(layers=[[64, 5, 2], [128, 3, 2], [256, 3, 2]], top="dense", activation="leaky_relu")
STEP = 0.02  # δ (our parameterisation); TFP's MALA step_size is δ² (Euler–Maruyama variance)
LEAPFROG = 5


def make_variants(batch: int, steps: int):
    """{name: (zero-arg callable running T steps and blocking, gradient evaluations per step)}."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from ebm_zoo.nets.convnets import EnergyConvNet
    from ebm_zoo.sampling import get_sampler

    net = EnergyConvNet(**NET)

    def energy(x):
        return -net(x) + 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    x0 = tf.random.stateless_normal([batch, 32, 32, 3], [0, 1])
    energy(x0)
    seed = tf.constant([1, 2])

    def ours(name, **settings):
        s = get_sampler(name, step_size=STEP, **settings)
        return tf.function(
            lambda: tf.reduce_mean(s.run(energy, x0, num_steps=steps, seed=seed, trace=False).accept_rate)
        )

    def tfp_chain(kernel):
        def run():
            _, accepted = tfp.mcmc.sample_chain(
                num_results=1,
                num_burnin_steps=steps - 1,
                current_state=x0,
                kernel=kernel,
                trace_fn=lambda _, kr: (
                    kr.is_accepted if hasattr(kr, "is_accepted") else kr.inner_results.is_accepted
                ),
                seed=seed,
            )
            return tf.reduce_mean(tf.cast(accepted, tf.float32))

        return tf.function(run)

    def log_prob(x):
        return -energy(x)

    mala_tfp = tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(log_prob, step_size=STEP**2)
    # TFP's MALA keeps its step size out of its kernel results, so SimpleStepSizeAdaptation cannot
    # drive it; HMC with one leapfrog step is the same chain (MALA with δ = ε) and can be adapted.
    hmc1_tfp = tfp.mcmc.HamiltonianMonteCarlo(
        log_prob, step_size=tf.fill([batch, 1, 1, 1], STEP), num_leapfrog_steps=1
    )
    hmc_tfp = tfp.mcmc.HamiltonianMonteCarlo(log_prob, step_size=STEP, num_leapfrog_steps=LEAPFROG)
    adapt_tfp = tfp.mcmc.SimpleStepSizeAdaptation(
        hmc1_tfp,
        num_adaptation_steps=steps,
        target_accept_prob=0.57,
        reduce_fn=lambda x, **_: x,
    )
    fns = {
        "langevin": (ours("langevin"), 1),
        "mala": (ours("mala"), 1),
        "mala_tfp": (tfp_chain(mala_tfp), 1),
        "mala_adapt": (ours("mala", target_accept=0.57, adapt_steps=steps), 1),
        "mala_tfp_adapt": (tfp_chain(adapt_tfp), 1),
        "hmc": (ours("hmc", num_leapfrog_steps=LEAPFROG), LEAPFROG),
        "hmc_tfp": (tfp_chain(hmc_tfp), LEAPFROG),
    }
    return {k: ((lambda f=f: f().numpy()), g) for k, (f, g) in fns.items()}


def run(quick: bool, matmul_gflops: float) -> list[dict]:
    del matmul_gflops
    size = SIZES["quick" if quick else "full"]
    variants = make_variants(size["batch"], size["steps"])
    for fn, _ in variants.values():  # warm-up: trace and first run
        fn()
    times = {k: [] for k in variants}
    cpu = {k: 0.0 for k in variants}
    for _ in range(size["repeats"]):
        for k, (fn, _) in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k] += time.process_time() - c0
    load = round(os.getloadavg()[0], 1)
    rows = []
    base = median(times["langevin"])
    for k, (_, grads) in variants.items():
        t = median(times[k])
        rows.append(
            {
                "name": f"mcmc32x3/{k}",
                "batch": size["batch"],
                "steps": size["steps"],
                "median_s": t,
                "steps_per_s": size["steps"] / t,
                "grad_evals_per_s": size["steps"] * grads / t,
                "cpu_s": cpu[k] / size["repeats"],
                "vs_langevin": base / t,
                "load1": load,
            }
        )
    for ours, theirs in (("mala", "mala_tfp"), ("mala_adapt", "mala_tfp_adapt"), ("hmc", "hmc_tfp")):
        r = median(times[theirs]) / median(times[ours])
        rows.append(
            {"name": f"mcmc32x3/{ours}_vs_tfp", "ratio": r, "of": f"{ours}/{theirs} speed", "load1": load}
        )
    return rows


# ------------------------------------------------------------------------------------------
# The harness interface (ebm_zoo.bench.runner / worker): `tools/bench.py --suites=mcmc`.
#: Row name → sampler of `make_variants`. "ebm_zoo_fp32" (the reference row of every case) is
#: Langevin, so each row's ratio "vs" is its speed relative to Langevin on the same net; the
#: TFP rows are the competitors of the ratio summary.
ROWS = {
    "ebm_zoo_fp32": "langevin",
    "ebm_zoo_mala": "mala",
    "ebm_zoo_mala_adapt": "mala_adapt",
    "ebm_zoo_hmc": "hmc",
    "tfp_mala": "mala_tfp",
    "tfp_mala_adapt": "mala_tfp_adapt",
    "tfp_hmc": "hmc_tfp",
}


def cases(quick: bool) -> list[dict]:
    size = SIZES["quick" if quick else "full"]
    return [
        dict(
            suite="mcmc",
            case="mcmc32x3/sampler",
            task="sampler",
            net="descriptor32x3",
            model=dict(NET, leapfrog=LEAPFROG, step_size=STEP),
            batch=size["batch"],
            steps=size["steps"],
        )
    ]


def variants(case: dict) -> dict:
    return {"tf": list(ROWS), "torch": []}


def setup(framework: str, case: dict, variants, workdir: str, cpu_flags: dict) -> dict:
    """Worker entry point: T steps of each sampler per call (HMC: T·L gradient evaluations)."""
    del workdir, cpu_flags
    if framework != "tf":
        return {"variants": {}, "skipped": {v: "TensorFlow only" for v in variants}}
    fns = make_variants(case["batch"], case["steps"])
    chosen = {v: (fns[ROWS[v]][0], None) for v in variants if v in ROWS}
    return {
        "variants": chosen,
        "skipped": {v: "unknown variant" for v in variants if v not in ROWS},
        "grad_evals_per_step": {v: fns[ROWS[v]][1] for v in chosen},
    }
