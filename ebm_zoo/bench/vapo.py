"""Suite "vapo": the VAPO U-Net at the MNIST size, and in-graph dopri5 vs the official scipy loop.

Cases:
- ``vapo28x1/sampler``: T fixed Euler steps of dx/dt = ∇ₓΦ(x, t) per call (`sample_with_nfe`,
  solver "euler"; one step = one U-Net forward + input gradient), batch 64, T = 20;
- ``vapo28x1/train``: one `VAPO.train_step`, batch 64.
  U-Net: 32 base channels, multipliers (1, 2, 2) (28 → 14 → 7), 1 residual block per level,
  attention at 7×7, no dropout (the `vapo_cpu` recipe at 28×28). No PyTorch twin of this U-Net
  exists in this bench: these cases have ebm_zoo fp32 vs bf16 rows, and the PyTorch rows say so.
- ``vapo8x1/dopri5_vs_scipy``: one full dopri5 solve (rtol = atol = 1e-3) of 100 samples under
  the `vapo_cpu` model, in-graph (``ebm_zoo_fp32``: ebm_zoo.sampling.ode inside one
  tf.function) against the official code's way, scipy `solve_ivp(method="RK45")` on the
  flattened batch calling the network from Python once per evaluation, the network eager
  (``scipy_rk45_eager``) or a compiled `tf.function` (``scipy_rk45_compiled``). Same model object,
  so the same weights; rows carry the number of network evaluations (NFE). Weights, first found:
  `$EBM_ZOO_VAPO_WEIGHTS`, `runs/vapo_cpu/model.weights.h5`, the `vapo_digits` preset, else the
  initial potential with a randomised output layer (the row says which).

Quick mode: batch 4, T = 2; the dopri5 case with 8 samples.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ebm_zoo.bench import has_bf16, short_error

UNET28 = dict(
    family="vapo",
    image_size=28,
    channels=1,
    seed=0,
    base_channels=32,
    channel_mults=[1, 2, 2],
    num_res_blocks=1,
    attn_resolutions=[7],
    dropout=0.0,
    time_embed_dim=128,
    max_groups=32,
    warmup_steps=100,
    ema_decay=0.995,
)


def cases(quick: bool) -> list[dict]:
    batch, steps = (4, 2) if quick else (64, 20)
    base = dict(suite="vapo", net="vapo28x1", model=UNET28, batch=batch, steps=steps)
    return [
        dict(base, case="vapo28x1/sampler", task="sampler"),
        dict(base, case="vapo28x1/train", task="train"),
        dict(
            suite="vapo",
            net="vapo8x1",
            model="vapo_cpu",
            case="vapo8x1/dopri5_vs_scipy",
            task="solve",
            batch=8 if quick else 100,
            steps=1,
        ),
    ]


def variants(case: dict) -> dict:
    if case["task"] == "solve":
        return {"tf": ["ebm_zoo_fp32", "scipy_rk45_compiled", "scipy_rk45_eager"], "torch": []}
    return {"tf": ["ebm_zoo_fp32", "ebm_zoo_bf16"], "torch": ["torch_fp32"]}


def _build(cfg: dict, bf16: bool):
    import keras

    from ebm_zoo.models import build_model

    before = keras.mixed_precision.global_policy().name
    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(dict(cfg))
        model.compile()
        model.build_all()
    finally:
        keras.mixed_precision.set_global_policy(before)
    return model


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


def _solve_setup(case: dict, variants) -> dict:
    import tensorflow as tf
    from scipy.integrate import solve_ivp

    model, weights = _model()
    n = case["batch"]
    shape = [n, *model.image_shape]
    x0 = tf.random.stateless_normal(shape, [0, 0]).numpy().ravel().astype(np.float64)
    nfe = {}
    out = {}

    def ingraph():
        images, nfe["ebm_zoo_fp32"] = model.sample_with_nfe(n, 0)
        return images.numpy()

    eager_velocity = lambda t, x: model._velocity(model.ema_net, t, x)  # noqa: E731
    for v in variants:
        if v == "ebm_zoo_fp32":
            out[v] = (ingraph, None)
            continue
        velocity = eager_velocity if v.endswith("eager") else model.velocity

        def field(t, x, v=v, velocity=velocity):
            nfe[v] = nfe.get(v, 0) + 1
            xt = tf.constant(x.reshape(shape), tf.float32)
            return velocity(tf.constant(t, tf.float32), xt).numpy().ravel().astype(np.float64)

        def solve(v=v, field=field):
            nfe[v] = 0
            return solve_ivp(
                field, (model.t_start, model.t_end), x0, method="RK45", rtol=model.rtol, atol=model.atol
            )

        out[v] = (solve, None)
    return {"variants": out, "skipped": {}, "weights": weights, "nfe": nfe}


def setup(framework: str, case: dict, variants, workdir: str, cpu_flags: dict) -> dict:
    """Worker entry point (see ebm_zoo.bench.worker)."""
    del workdir
    if framework != "tf":
        return {
            "variants": {},
            "skipped": {v: "no PyTorch twin of the VAPO U-Net in this bench" for v in variants},
        }
    if case["task"] == "solve":
        return _solve_setup(case, variants)
    import tensorflow as tf

    b, steps = case["batch"], case["steps"]
    fp32 = _build(case["model"], bf16=False)
    rng = np.random.default_rng(0)
    # The U-Net's output conv starts at zero (U = 0, velocity = x for any net): randomise it, so
    # that the start-of-case check compares a non-trivial function.
    for net in (fp32.net, fp32.ema_net):
        for w in net.conv_out.weights:
            w.assign(0.1 * rng.standard_normal(w.shape).astype(np.float32))
    images = tf.constant(rng.random((b, *fp32.image_shape)).astype(np.float32))
    x_check = tf.constant(rng.standard_normal((min(b, 8), *fp32.image_shape)).astype(np.float32))
    t_check = tf.constant(0.5)
    out, skipped = {}, {}
    for v in variants:
        try:
            if v == "ebm_zoo_bf16" and not has_bf16(cpu_flags):
                skipped[v] = "the CPU has neither AVX512_BF16 nor AMX-BF16"
                continue
            model = fp32 if v == "ebm_zoo_fp32" else _build(case["model"], bf16=True)
            if model is not fp32:
                model.set_weights(fp32.get_weights())
            check = {"velocity": tf.cast(model.velocity(t_check, x_check), tf.float32).numpy()}
            if case["task"] == "sampler":

                def fn(model=model):
                    return model.sample_with_nfe(b, 0, solver="euler", num_steps=steps)[0].numpy()

            else:
                train = tf.function(model.train_step)

                def fn(train=train):
                    return train(images)["loss"].numpy()

            out[v] = (fn, check)
        except Exception as e:  # noqa: BLE001 — reported as a skipped row
            skipped[v] = short_error(e)
    return {"variants": out, "skipped": skipped}


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
