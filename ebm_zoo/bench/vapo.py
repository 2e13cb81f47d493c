"""VAPO sampling benchmark: NFE and seconds per 100 samples per ODE solver, and the in-graph
dopri5 solve vs a scipy `solve_ivp(method="RK45")` loop calling the same network — eagerly, the
way the official code samples with its PyTorch net, and as a compiled `tf.function` per call.

Model: the `vapo_cpu` config (8×8 digits). Weights, first found: `$EBM_ZOO_VAPO_WEIGHTS` (a
`model.weights.h5` from `tools/train.py --model=vapo`), `runs/vapo_cpu/model.weights.h5`, the
shipped `vapo_digits` preset; else the initial potential with a randomised output layer (so the
field is not the trivial dx/dt = x). Rows say which ("weights").
Quality per row: multi-scale SWD (×1e3) of the samples against the digits test split, so Euler
can be compared with dopri5 at matched quality.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from ebm_zoo.bench import median, time_fn


def _model():
    from ebm_zoo import config
    from ebm_zoo.models import build_model

    cfg = config.get_config("vapo_cpu")
    model = build_model(cfg.model)
    path = os.environ.get("EBM_ZOO_VAPO_WEIGHTS", os.path.join("runs", "vapo_cpu", "model.weights.h5"))
    if os.path.exists(path):
        model.load_weights(path)
        return model, f"trained ({path})"
    try:
        import ebm_zoo

        return ebm_zoo.load("vapo_digits"), "preset vapo_digits"
    except Exception:  # noqa: BLE001 — a missing/unreadable preset falls back to random weights
        pass
    rng = np.random.default_rng(0)
    for w in model.ema_net.conv_out.weights:
        w.assign(0.1 * rng.standard_normal(w.shape).astype(np.float32))
    return model, "random"


def _swd(samples: np.ndarray, reference: np.ndarray) -> float:
    from ebm_zoo.metrics import evaluate_samples

    return float(evaluate_samples(samples, reference, metrics=["swd"])["swd"])


def run(quick: bool, matmul_gflops: float) -> list[dict]:
    del matmul_gflops  # sampling is dominated by small convolutions, not large matmuls
    from scipy.integrate import solve_ivp

    from ebm_zoo.data import load_array

    model, weights = _model()
    n = 20 if quick else 100
    repeats = 1 if quick else 3
    reference = load_array("digits", 8, "test")
    rows = []
    settings = [
        ("dopri5", {}),
        ("tfp_dopri5", {}),
        ("euler", {"num_steps": 10}),
        ("euler", {"num_steps": 50}),
    ]
    if not quick:
        settings += [("euler", {"num_steps": 100}), ("rk4", {"num_steps": 10})]
    ingraph_s = None
    for solver, kw in settings:
        imgs, nfe = model.sample_with_nfe(n, seed=0, solver=solver, **kw)  # also compiles
        t = median(time_fn(lambda s=solver, k=kw: model.sample_with_nfe(n, 0, solver=s, **k), repeats, 0))
        name = solver + (f"_{kw['num_steps']}" if kw else "")
        if solver == "dopri5":
            ingraph_s = t
        rows.append(
            dict(
                name=f"sample_{name}",
                weights=weights,
                n=n,
                nfe=nfe,
                median_s=t,
                s_per_100=t * 100 / n,
                swd=_swd(np.asarray(imgs), reference),
            )
        )

    # The official code's way: scipy RK45 on the flattened batch (one step size for the whole
    # batch), the network called from Python once per evaluation.
    shape = [n, *model.image_shape]
    x0 = tf.random.stateless_normal(shape, [0, 0]).numpy().ravel().astype(np.float64)
    counter = {"nfe": 0}
    eager_velocity = lambda t, x: model._velocity(model.ema_net, t, x)  # noqa: E731

    for label, velocity in (("eager", eager_velocity), ("compiled", model.velocity)):

        def field(t, x, velocity=velocity):
            counter["nfe"] += 1
            xt = tf.constant(x.reshape(shape), tf.float32)
            return velocity(tf.constant(t, tf.float32), xt).numpy().ravel().astype(np.float64)

        def scipy_solve(field=field):
            counter["nfe"] = 0
            return solve_ivp(
                field, (model.t_start, model.t_end), x0, method="RK45", rtol=model.rtol, atol=model.atol
            )

        scipy_solve()  # warm-up (traces the compiled velocity once)
        t_scipy = median(time_fn(scipy_solve, repeats, 0))
        sol = scipy_solve()
        imgs = np.clip((sol.y[:, -1].reshape(shape) + 1) / 2, 0, 1).astype(np.float32)
        rows.append(
            dict(
                name=f"sample_scipy_rk45_{label}",
                weights=weights,
                n=n,
                nfe=counter["nfe"],
                median_s=t_scipy,
                s_per_100=t_scipy * 100 / n,
                swd=_swd(imgs, reference),
                ratio_vs_ingraph_dopri5=t_scipy / ingraph_s,
            )
        )
    return rows


# ------------------------------------------------------------------------------------------------
# The learning / OOD experiment of docs/vapo.md (not a timing suite):
#     python -m ebm_zoo.bench.vapo --workdir=runs/vapo_cpu --out=docs/images
def load_trained(workdir: str):
    """The VAPO model of a `tools/train.py` workdir (config.json + model.weights.h5)."""
    from ebm_zoo import config
    from ebm_zoo.models import build_model

    with open(os.path.join(workdir, "config.json")) as f:
        cfg = config.from_json(f.read())
    model = build_model(cfg.model)
    model.load_weights(os.path.join(workdir, "model.weights.h5"))
    return model, cfg


def evaluate_run(
    workdir: str, out_dir: str, num_samples: int = 500, seed: int = 0, prefix: str = "vapo_cpu"
) -> dict:
    """Sample quality (trained vs untrained potential vs held-out data), OOD AUROC, figures."""
    import json

    from sklearn.metrics import roc_auc_score

    from ebm_zoo.data import load_array
    from ebm_zoo.metrics import evaluate_samples
    from ebm_zoo.models import build_model
    from ebm_zoo.utils.images import save_grid

    model, cfg = load_trained(workdir)
    size, name = int(cfg.data.image_size), cfg.data.name
    test = load_array(name, size, "test")
    train = load_array(name, size, "train", limit=len(test))
    metrics = ["swd", "fd_small", "kid_small"]
    report = {"config": cfg.config_name if "config_name" in cfg else None}
    t0 = time.perf_counter()
    samples, nfe = model.sample_with_nfe(num_samples, seed=seed)
    report["sample_seconds"] = time.perf_counter() - t0
    report["sample_nfe"] = nfe
    untrained = build_model(cfg.model)
    base_samples = np.asarray(untrained.sample(num_samples, seed=seed))
    for key, imgs in (("trained", np.asarray(samples)), ("untrained", base_samples), ("data_train", train)):
        report[key] = {k: float(v) for k, v in evaluate_samples(imgs, test, metrics, seed).items()}
    os.makedirs(out_dir, exist_ok=True)
    save_grid(np.asarray(samples)[:64], os.path.join(out_dir, f"{prefix}_samples.png"))
    save_grid(base_samples[:64], os.path.join(out_dir, f"{prefix}_untrained_samples.png"))
    inter = np.asarray(model.interpolate(6, seed=seed, num_points=8))
    save_grid(
        inter.reshape(-1, *inter.shape[2:]), os.path.join(out_dir, f"{prefix}_interpolation.png"), ncol=8
    )
    mask = np.zeros([1, size, size, 1], np.float32)
    mask[:, size // 2 :] = 1.0  # generate the bottom half
    filled = np.asarray(model.inpaint(test[:8], mask, seed=seed))
    save_grid(
        np.concatenate([test[:8], test[:8] * (1 - mask), filled]),
        os.path.join(out_dir, f"{prefix}_inpaint.png"),
        ncol=8,
    )

    # OOD: held-out digits (in) vs texture crops and uniform noise (out).
    rng = np.random.default_rng(seed)
    ood_sets = {
        "grass": load_array("textures/grass", size, "test", limit=len(test)),
        "lfw_faces": load_array("lfw_faces", size, "all", limit=len(test)),
        "uniform_noise": rng.random(test.shape).astype(np.float32),
    }
    report["ood_auroc"] = {}
    for method in ("nll", "potential"):
        s_in = np.asarray(model.ood_score(test, method=method))
        for ood_name, ood in ood_sets.items():
            s_out = np.asarray(model.ood_score(ood, method=method))
            labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
            auroc = float(roc_auc_score(labels, np.r_[s_in, s_out]))
            report["ood_auroc"][f"{method}/{ood_name}"] = auroc
        report[f"mean_{method}_in"] = float(s_in.mean())
    with open(os.path.join(out_dir, f"{prefix}_eval.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=evaluate_run.__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--num_samples", type=int, default=500)
    parser.add_argument("--prefix", default="vapo_cpu", help="file name prefix of the figures")
    args = parser.parse_args()
    print(json.dumps(evaluate_run(args.workdir, args.out, args.num_samples, prefix=args.prefix), indent=2))
