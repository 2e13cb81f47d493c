r"""Suite "langevin": the short-run 32×32×3 net; and the energy-net machinery of every ConvNet suite.

An energy-net case pits an ebm_zoo model's own compiled sampler (or `train_step`) against the
same network and update in PyTorch, with weights copied from TF. All ConvNet samplers benched
here are one update rule,

    kick = x + δ·s·z,   y ← x;  J times:  y ← clip(shrink · (kick + τ·∂f/∂x(y))),   x ← y

with τ = δ²/2 and shrink = 1 / (1 + τ/σ²) (1 without a Gaussian reference term):
- short-run (Nijkamp et al. 2019): J = 1, no reference, s = noise_scale, clip to [−1, 1];
- multi-grid official: J = 1, no reference, s = 0, clip to [0, 255];
- GGCN / wGCN split solver: J implicit iterations, reference σ, no clip.

Variants (row names):
- ``ebm_zoo_fp32``: the model's method (`run_langevin`, `run_sampler`, `flow`, `train_step`) in
  one `tf.function` (a `tf.while_loop` of T steps);
- ``ebm_zoo_bf16``: the same model built under `keras.mixed_precision` "mixed_bfloat16"
  (only where the CPU has AVX512_BF16 / AMX-BF16);
- ``torch_fp32``: the PyTorch twin (NCHW), `torch.autograd.grad` per step, weights frozen while
  sampling (only ∂f/∂x is computed, as TF's graph prunes the weight gradient);
- ``torch_cl_fp32``: the twin and the chains in channels-last memory format;
- ``torch_compile_fp32``: `torch.compile(net)` (inductor) inside the same loop;
- ``torch_bf16``: the twin under `torch.autocast("cpu", torch.bfloat16)` (channels-last);
- ``torchebm_fp32``: TorchEBM's `LangevinDynamics` (sampler) and `ContrastiveDivergence`
  (training) on the twin wrapped as a `torchebm.core.BaseModel` with E(x) = −f(x) (+ ‖x‖²/2σ²).

The twin reproduces TF's 'same' padding exactly (TF pads the odd pixel of an odd total padding
after: an explicit `F.pad` before an unpadded conv, an extra copy a PyTorch user writing
symmetric padding would not pay, but their function would be shifted by one pixel).

FLOPs per sampler step (for the fraction of the matmul rate): forward + input gradient of f,
2 passes × 2 FLOP per multiply-add × MACs(f) × batch × J; elementwise work is not counted.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ebm_zoo.bench import short_error

# TensorFlow and PyTorch are imported inside the functions that use them: the PyTorch worker
# process must not load TensorFlow (and its thread pools), and vice versa.

#: Variants of an energy-net case, by framework.
TF_VARIANTS = ("ebm_zoo_fp32", "ebm_zoo_bf16")
TORCH_VARIANTS = ("torch_fp32", "torch_cl_fp32", "torch_compile_fp32", "torch_bf16", "torchebm_fp32")


def short_run_model(batch: int, steps: int) -> dict:
    """The short-run model of `configs/short_run_digits.py` (its net: 32 3×3 s1 → 64 4×4 s2 →
    128 4×4 s2, swish, Dense top; δ = √2, noise 0.005, clip to [−1, 1], Adam 1e-4) at 32×32×3,
    without replay buffer, with `batch` chains of `steps` steps."""
    from ebm_zoo.configs import short_run_digits

    model = short_run_digits.get_config().model.to_dict()
    model.update(
        image_size=32,
        channels=3,
        synth_size=32,
        num_chains=batch,
        num_steps=steps,
        sample_steps=steps,
        replay_capacity=0,
    )
    return model


def cases(quick: bool) -> list[dict]:
    batch, steps = (4, 2) if quick else (64, 60)
    model = short_run_model(batch, steps)
    base = dict(suite="langevin", net="shortrun32x3", kind="short_run", model=model, batch=batch, steps=steps)
    return [
        dict(base, case="shortrun32x3/sampler", task="sampler"),
        dict(base, case="shortrun32x3/train", task="train"),
    ]


def variants(case: dict) -> dict:
    return {"tf": list(TF_VARIANTS), "torch": list(TORCH_VARIANTS)}


# ------------------------------------------------------------------------------------------
# Net description shared by both sides: a list of ops (JSON) + arrays (npz), TF → torch.
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'same' padding along one axis: (output size, pad before, pad after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def describe_keras_net(net, image_size: int, channels: int) -> tuple[list[dict], dict]:
    """(ops, arrays) of an `EnergyConvNet` or a multi-grid `keras.Sequential` energy net.

    Conv kernels are stored OIHW; a Dense top that reads TF's (H, W, C) flattening gets its
    weight permuted to PyTorch's (C, H, W) order.
    """
    import keras

    from ebm_zoo.nets.convnets import EnergyConvNet
    from ebm_zoo.nets.multigrid_nets import BatchStatNorm

    ops, arrays = [], {}
    size, c = image_size, channels

    def conv(layer, padding):
        nonlocal size, c
        k, b = (np.asarray(v.numpy(), np.float32) for v in layer.weights)
        kernel, stride = int(k.shape[0]), int(layer.strides[0])
        if padding == "same":
            out, lo, hi = same_padding(size, kernel, stride)
        else:
            out, lo, hi = (size - kernel) // stride + 1, 0, 0
        name = f"op{len(ops)}"
        arrays[name + "/w"] = np.ascontiguousarray(k.transpose(3, 2, 0, 1))
        arrays[name + "/b"] = b
        ops.append(dict(op="conv", name=name, stride=stride, pad=[lo, hi]))
        size, c = out, int(k.shape[-1])

    def dense(layer):
        k, b = (np.asarray(v.numpy(), np.float32) for v in layer.weights)
        name = f"op{len(ops)}"
        w = k[:, 0].reshape(size, size, c).transpose(2, 0, 1).reshape(1, -1)
        arrays[name + "/w"] = np.ascontiguousarray(w)
        arrays[name + "/b"] = b
        ops.append(dict(op="dense", name=name))

    if isinstance(net, EnergyConvNet):
        act = dict(op="act", fn=net.activation, slope=0.2)
        for layer in net.convs:
            conv(layer, net.padding)
            ops.append(act)
        if net.top == "sum":
            conv(net.head, "valid")
            ops.append(dict(op="sum"))
        else:
            dense(net.head)
        return ops, arrays
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            conv(layer, layer.padding)
        elif isinstance(layer, BatchStatNorm):
            name = f"op{len(ops)}"
            arrays[name + "/gamma"] = np.asarray(layer.gamma.numpy(), np.float32)
            arrays[name + "/beta"] = np.asarray(layer.beta.numpy(), np.float32)
            ops.append(dict(op="batchstat", name=name, eps=layer.epsilon))
        elif isinstance(layer, keras.layers.LeakyReLU):
            ops.append(dict(op="act", fn="leaky_relu", slope=float(layer.negative_slope)))
        elif isinstance(layer, keras.layers.Flatten):
            continue
        elif isinstance(layer, keras.layers.Dense):
            dense(layer)
        else:
            raise ValueError(f"describe_keras_net: no PyTorch twin for layer {type(layer).__name__}")
    return ops, arrays


def forward_macs(ops: list[dict], arrays: dict, image_size: int) -> int:
    """Multiply-adds of one forward pass of one image, from an ops description."""
    size, macs = image_size, 0
    for op in ops:
        if op["op"] == "conv":
            w = arrays[op["name"] + "/w"]
            o, i, k, _ = w.shape
            size = (size + sum(op["pad"]) - k) // op["stride"] + 1
            macs += size * size * o * i * k * k
        elif op["op"] == "dense":
            macs += arrays[op["name"] + "/w"].size
    return macs


def make_torch_net(ops: list[dict], arrays: dict):
    """The PyTorch twin (NCHW input → f(x) [N]) of a `describe_keras_net` description."""
    import torch
    import torch.nn.functional as F

    acts = {
        "relu": F.relu,
        "elu": F.elu,
        "swish": F.silu,
        "softplus": F.softplus,
    }

    class TorchEnergyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ops = ops
            self.mods = torch.nn.ModuleDict()
            self.norm = torch.nn.ParameterDict()
            for op in ops:
                if op["op"] == "conv":
                    w = torch.from_numpy(arrays[op["name"] + "/w"].copy())
                    lo, hi = op["pad"]
                    m = torch.nn.Conv2d(
                        w.shape[1], w.shape[0], w.shape[2], op["stride"], padding=lo if lo == hi else 0
                    )
                    with torch.no_grad():
                        m.weight.copy_(w)
                        m.bias.copy_(torch.from_numpy(arrays[op["name"] + "/b"].copy()))
                    self.mods[op["name"]] = m
                elif op["op"] == "dense":
                    w = torch.from_numpy(arrays[op["name"] + "/w"].copy())
                    m = torch.nn.Linear(w.shape[1], 1)
                    with torch.no_grad():
                        m.weight.copy_(w)
                        m.bias.copy_(torch.from_numpy(arrays[op["name"] + "/b"].copy()))
                    self.mods[op["name"]] = m
                elif op["op"] == "batchstat":
                    for k in ("gamma", "beta"):
                        self.norm[f"{op['name']}_{k}"] = torch.nn.Parameter(
                            torch.from_numpy(arrays[f"{op['name']}/{k}"].copy())
                        )

        def forward(self, x):
            h = x
            for op in self.ops:
                kind = op["op"]
                if kind == "conv":
                    lo, hi = op["pad"]
                    if lo != hi:
                        h = F.pad(h, (lo, hi, lo, hi))
                    h = self.mods[op["name"]](h)
                elif kind == "act":
                    if op["fn"] == "leaky_relu":
                        h = F.leaky_relu(h, op["slope"])
                    else:
                        h = acts[op["fn"]](h)
                elif kind == "batchstat":  # batch statistics in every call, as BatchStatNorm
                    g, b = self.norm[f"{op['name']}_gamma"], self.norm[f"{op['name']}_beta"]
                    h = F.batch_norm(h, None, None, g, b, training=True, eps=op["eps"])
                elif kind == "dense":
                    h = self.mods[op["name"]](h.flatten(1))[:, 0]
                elif kind == "sum":
                    h = h.sum(dim=(1, 2, 3))
            return h.float()

    return TorchEnergyNet()


def describe_generator(generator, latent_shape) -> tuple[list[dict], dict]:
    """(ops, arrays) of a GGCN generator (`ebm_zoo.nets.generators.build_generator` with a
    [s, s, c] code, transposed-conv up-sampling, no normalisation, LeakyReLU 0.2, tanh output).
    Conv kernels are stored OIHW, transposed-conv kernels IOHW (PyTorch's layouts).

    Raises ValueError for any other generator (then its training iteration has no twin)."""
    import keras

    if len(latent_shape) != 3:
        raise ValueError("a vector latent code (Dense projection) has no PyTorch twin here")
    ops, arrays = [], {}
    for layer in generator.layers:
        name = f"g{len(ops)}"
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Conv2DTranspose):
            k, b = (np.asarray(v.numpy(), np.float32) for v in layer.weights)  # [kh, kw, out, in]
            if int(k.shape[0]) != 4 or int(layer.strides[0]) != 2 or layer.padding != "same":
                raise ValueError(f"transposed conv {layer.name}: only 4×4, stride 2, 'same' has a twin")
            arrays[name + "/w"] = np.ascontiguousarray(k.transpose(3, 2, 0, 1))
            arrays[name + "/b"] = b
            ops.append(dict(op="convT", name=name, stride=2, pad=1))
        elif isinstance(layer, keras.layers.Conv2D):
            k, b = (np.asarray(v.numpy(), np.float32) for v in layer.weights)
            kernel = int(k.shape[0])
            if layer.padding != "same" or int(layer.strides[0]) != 1 or kernel % 2 != 1:
                raise ValueError(f"conv {layer.name}: only odd kernels, stride 1, 'same' have a twin")
            arrays[name + "/w"] = np.ascontiguousarray(k.transpose(3, 2, 0, 1))
            arrays[name + "/b"] = b
            ops.append(dict(op="conv", name=name, stride=1, pad=[kernel // 2, kernel // 2]))
        elif isinstance(layer, keras.layers.LeakyReLU):
            ops.append(dict(op="act", fn="leaky_relu", slope=float(layer.negative_slope)))
        elif isinstance(layer, keras.layers.Activation) and layer.name == "tanh":
            ops.append(dict(op="tanh"))
        else:
            raise ValueError(f"generator layer {layer.name} ({type(layer).__name__}) has no PyTorch twin")
    return ops, arrays


def make_torch_generator(ops: list[dict], arrays: dict):
    """The PyTorch twin (NCHW code → NCHW image) of a `describe_generator` description."""
    import torch
    import torch.nn.functional as F

    class TorchGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ops = ops
            self.mods = torch.nn.ModuleDict()
            for op in ops:
                if op["op"] not in ("conv", "convT"):
                    continue
                w = torch.from_numpy(arrays[op["name"] + "/w"].copy())
                if op["op"] == "convT":
                    m = torch.nn.ConvTranspose2d(w.shape[0], w.shape[1], w.shape[2], op["stride"], op["pad"])
                else:
                    m = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], 1, op["pad"][0])
                with torch.no_grad():
                    m.weight.copy_(w)
                    m.bias.copy_(torch.from_numpy(arrays[op["name"] + "/b"].copy()))
                self.mods[op["name"]] = m

        def forward(self, h):
            x = h
            for op in self.ops:
                if op["op"] in ("conv", "convT"):
                    x = self.mods[op["name"]](x)
                elif op["op"] == "act":
                    x = F.leaky_relu(x, op["slope"])
                else:
                    x = torch.tanh(x)
            return x.float()

    return TorchGenerator()


# ------------------------------------------------------------------------------------------
# The PyTorch side.
def torch_update(net, x, steps: int, upd: dict, generator, autocast: bool = False):
    """T steps of the update rule of the module docstring with `torch.autograd.grad`."""
    import contextlib

    import torch

    tau, noise_std, shrink, clip, J = upd["tau"], upd["noise_std"], upd["shrink"], upd["clip"], upd["J"]
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
    for _ in range(steps):
        kick = x
        if noise_std:
            kick = x + noise_std * torch.randn_like(x, generator=generator)
        y = x
        for _ in range(J):
            y = y.detach().requires_grad_(True)
            with ctx():
                f = net(y)
            (g,) = torch.autograd.grad(f.sum(), y)
            with torch.no_grad():
                y = kick + tau * g
                if shrink != 1.0:
                    y = shrink * y
                if clip is not None:
                    y = y.clamp_(clip[0], clip[1])
        x = y.detach()
    return x


def _torchebm_model(net, inv_var: float):
    from torchebm.core import BaseModel

    class TwinEnergy(BaseModel):
        """E(x) = −f(x) (+ ‖x‖²/(2σ²)) of the twin, for TorchEBM."""

        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            e = -self.net(x)
            if inv_var:
                e = e + 0.5 * inv_var * x.flatten(1).square().sum(1)
            return e

    return TwinEnergy()


def torch_setup(case: dict, variants, spec: dict, arrays: dict, inputs: dict) -> dict:
    """{variant: (fn, check)} for the PyTorch variants of an energy-net case, or skip reasons.

    spec: {"ops", "update", "train"} from `tf_setup`; inputs: x_check, x0, images (NHWC).
    """
    import torch

    out, skipped = {}, {}
    upd = spec["update"]
    to_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    x_check = to_nchw(inputs["x_check"])
    x0, images = to_nchw(inputs["x0"]), to_nchw(inputs["images"])
    no_noise = dict(upd, noise_std=0.0)

    def check_of(net, cl, autocast=False):
        xc = x_check.contiguous(memory_format=torch.channels_last) if cl else x_check
        xg = xc.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            f = net(xg)
        (g,) = torch.autograd.grad(f.sum(), xg)
        net.requires_grad_(False)
        step = torch_update(net, xc, 1, no_noise, None, autocast)
        net.requires_grad_(True)
        nhwc = lambda t: t.detach().float().permute(0, 2, 3, 1).contiguous().numpy()  # noqa: E731
        return {"f": f.detach().float().numpy(), "grad": nhwc(g), "step": nhwc(step)}

    for v in variants:
        try:
            if v == "torchebm_fp32":
                if case["task"] == "train" and spec["train"].get("generator"):
                    skipped[v] = "TorchEBM has no cooperative (generator + energy) training"
                    continue
                out[v] = _torchebm_variant(case, spec, arrays, x_check, x0, images, upd)
                continue
            cl = "_cl" in v or v == "torch_bf16"
            autocast = v == "torch_bf16"
            net = make_torch_net(spec["ops"], arrays)
            if cl:
                net = net.to(memory_format=torch.channels_last)
            check = check_of(net, cl, autocast)
            run_net = torch.compile(net) if "compile" in v else net
            generator = None
            if case["task"] == "train" and spec["train"].get("generator"):
                generator = make_torch_generator(spec["train"]["generator"], arrays)
                h_check = to_nchw(inputs["h_check"])
                if cl:
                    generator = generator.to(memory_format=torch.channels_last)
                    h_check = h_check.contiguous(memory_format=torch.channels_last)
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    check["gen"] = generator(h_check).float().permute(0, 2, 3, 1).contiguous().numpy()
            fmt = torch.channels_last if cl else torch.contiguous_format
            xs, data = x0.contiguous(memory_format=fmt), images.contiguous(memory_format=fmt)
            gen = torch.Generator().manual_seed(0)
            if case["task"] == "sampler":
                net.requires_grad_(False)

                def fn(run_net=run_net, xs=xs, gen=gen, autocast=autocast):
                    return torch_update(run_net, xs, case["steps"], upd, gen, autocast)

            elif generator is not None:
                run_gen = torch.compile(generator) if "compile" in v else generator
                fn = _torch_ggcn_train_fn(
                    case, spec, net, run_net, generator, run_gen, data, upd, gen, autocast, fmt
                )
            else:
                fn = _torch_train_fn(case, spec, net, run_net, xs, data, upd, gen, autocast)
            out[v] = (fn, check)
        except Exception as e:  # noqa: BLE001 — a variant that cannot run is reported, not fatal
            skipped[v] = short_error(e)
    return {"variants": out, "skipped": skipped}


def _torch_train_fn(case, spec, net, run_net, xs, data, upd, gen, autocast):
    """One training iteration of the twin: chains (noise or data start) → T steps → loss → Adam."""
    import torch

    tr = spec["train"]
    opt = torch.optim.Adam(net.parameters(), lr=tr["lr"], betas=tuple(tr["betas"]), eps=tr["eps"])
    lo, hi = tr["init_range"] if tr["init"] == "uniform" else (None, None)

    def fn():
        if tr["init"] == "uniform":
            x0 = torch.rand_like(xs, generator=gen) * (hi - lo) + lo
        else:
            x0 = data
        net.requires_grad_(False)
        synth = torch_update(run_net, x0, case["steps"], upd, gen, autocast)
        net.requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = run_net(synth).mean() - run_net(data).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    return fn


def _torch_ggcn_train_fn(case, spec, net, run_net, generator, run_gen, data, upd, gen, autocast, fmt):
    """One GGCN iteration of the twins (`GGCN.train_step`): h ~ N(0, I) → x₀ = G(h) → K flow
    steps → x̃; an Adam step on f (mean f(x̃) − mean f(X)), then one on G (mean ‖x̃ − G(h)‖² / 2s²)."""
    import torch

    tr = spec["train"]
    betas, eps = tuple(tr["betas"]), tr["eps"]
    opt_f = torch.optim.Adam(net.parameters(), lr=tr["lr"], betas=betas, eps=eps)
    opt_g = torch.optim.Adam(generator.parameters(), lr=tr["gen_lr"], betas=betas, eps=eps)
    s, c = tr["latent_shape"][0], tr["latent_shape"][2]
    batch = data.shape[0]
    amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)  # noqa: E731

    def fn():
        h = torch.randn(batch, c, s, s, generator=gen).contiguous(memory_format=fmt)
        with torch.no_grad(), amp():
            x0 = run_gen(h).contiguous(memory_format=fmt)
        net.requires_grad_(False)
        synth = torch_update(run_net, x0, case["steps"], upd, gen, autocast)
        net.requires_grad_(True)
        with amp():
            loss = run_net(synth).mean() - run_net(data).mean()
        opt_f.zero_grad(set_to_none=True)
        loss.backward()
        opt_f.step()
        with amp():
            x_gen = run_gen(h)
        gen_loss = (synth - x_gen).square().flatten(1).sum(1).mean() / (2.0 * tr["gen_sigma"] ** 2)
        opt_g.zero_grad(set_to_none=True)
        gen_loss.backward()
        opt_g.step()
        return float(loss)

    return fn


def _torchebm_variant(case, spec, arrays, x_check, x0, images, upd):
    """TorchEBM's LangevinDynamics / ContrastiveDivergence on the twin (plain NCHW)."""
    import torch
    from torchebm.losses import ContrastiveDivergence
    from torchebm.samplers import LangevinDynamics

    if upd["J"] != 1:
        # TorchEBM has no implicit (JKO) step: J explicit steps per step do the same gradient work.
        steps = case["steps"] * upd["J"]
    else:
        steps = case["steps"]
    net = make_torch_net(spec["ops"], arrays)
    model = _torchebm_model(net, upd["inv_var"])
    # TorchEBM: x ← x − η∇E + sqrt(2η)·noise_scale·z; η = τ gives δ·noise_scale·z. It requires
    # noise_scale > 0: a noise-free sampler (multi-grid) gets 1e-20 (one randn per step).
    noise = max(upd["noise_std"] / math.sqrt(2 * upd["tau"]), 1e-20)
    sampler = LangevinDynamics(model, step_size=upd["tau"], noise_scale=noise, clamp=upd["clip"])
    xg = x_check.clone().requires_grad_(True)
    f = net(xg)
    (g,) = torch.autograd.grad(f.sum(), xg)
    step_sampler = LangevinDynamics(model, step_size=upd["tau"], noise_scale=1e-20, clamp=upd["clip"])
    step = step_sampler.sample(x=x_check.clone(), n_steps=1)
    if upd["inv_var"]:  # TorchEBM's explicit step differs from the split solver by design
        step = None
    nhwc = lambda t: t.detach().permute(0, 2, 3, 1).contiguous().numpy()  # noqa: E731
    check = {"f": f.detach().numpy(), "grad": nhwc(g)}
    if step is not None and upd["J"] == 1:
        check["step"] = nhwc(step)
    gen = torch.Generator().manual_seed(0)
    if case["task"] == "sampler":

        def fn():
            return sampler.sample(x=x0, n_steps=steps, generator=gen)

        return fn, check
    tr = spec["train"]
    cd = ContrastiveDivergence(
        model=model, sampler=sampler, k_steps=steps, persistent=False, energy_reg_weight=0.0
    )
    opt = torch.optim.Adam(net.parameters(), lr=tr["lr"], betas=tuple(tr["betas"]), eps=tr["eps"])

    def train():
        loss, _ = cd(images, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    return train, check


# ------------------------------------------------------------------------------------------
# The TF side.
def _build(model_cfg: dict, bf16: bool):
    import keras

    from ebm_zoo.models import build_model

    keras.utils.set_random_seed(0)  # the same initial weights in every run (checks reproduce)
    before = keras.mixed_precision.global_policy().name
    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(dict(model_cfg))
        model.compile()
        model.build_all()
    finally:
        keras.mixed_precision.set_global_policy(before)
    return model


def _kind(case: dict) -> dict:
    """Per-family hooks: the Keras energy net, f(x), the sampler, the update and training spec."""
    kind, m = case["kind"], case["model"]
    if kind == "short_run":
        tau = 0.5 * m["step_size"] ** 2
        return dict(
            net=lambda model: model.net,
            score=lambda model, x: model.net(x),
            sampler=lambda model, x, seed, steps, noise=None: (
                model.run_langevin(x, seed, steps, noise_scale=noise).samples
            ),
            update=dict(
                tau=tau,
                noise_std=m["step_size"] * m["noise_scale"],
                shrink=1.0,
                clip=[-1.0, 1.0],
                J=1,
                inv_var=0.0,
            ),
            train=dict(
                init="uniform",
                init_range=[-1.0, 1.0],
                lr=m["learning_rate"],
                betas=[m["momentum"], 0.999],
                eps=1e-8,
            ),
            x_range=(-1.0, 1.0),
        )
    if kind == "multigrid":
        tau = 0.5 * m["step_size"] ** 2
        return dict(
            net=lambda model: model.nets[0],
            score=lambda model, x: model.grid_score(0, x),
            sampler=lambda model, x, seed, steps, noise=None: (
                model.run_sampler(0, x, seed, num_steps=steps).samples
            ),
            update=dict(tau=tau, noise_std=0.0, shrink=1.0, clip=[0.0, 255.0], J=1, inv_var=0.0),
            train=dict(
                init="data", lr=m["learning_rate"], betas=[m["beta_1"], m["beta_2"]], eps=m["epsilon"]
            ),
            x_range=(0.0, 255.0),
        )
    if kind == "ggcn":
        tau = 0.5 * m["step_size"] ** 2
        inv_var = 1.0 / m["ref_sigma"] ** 2

        def sampler(model, x, seed, steps, noise=None):
            kw = {} if noise is None else {"noise_scale": noise}
            return model.flow(x, seed, num_steps=steps, **kw).samples

        return dict(
            net=lambda model: model.score_net,
            score=lambda model, x: model.score(x),
            sampler=sampler,
            update=dict(
                tau=tau,
                noise_std=m["step_size"] * m["noise_scale"],
                shrink=1.0 / (1.0 + tau * inv_var),
                clip=None,
                J=m["implicit_iters"],
                inv_var=inv_var,
            ),
            train=None,  # set by tf_setup from the built model (`_ggcn_train_spec`)
            x_range=(-1.0, 1.0),
        )
    raise ValueError(f"unknown energy-net kind {kind!r}")


def _ggcn_train_spec(model) -> tuple[dict, dict]:
    """The training spec of a GGCN iteration's twin (both Adams, s_g, the code shape, the
    generator's ops) and the generator's arrays; ValueError if the generator has no twin."""
    gen_ops, gen_arrays = describe_generator(model.generator, model.latent_shape)
    eps = {float(model.optimizer.epsilon), float(model.gen_optimizer.epsilon)}
    if len(eps) != 1:
        raise ValueError("the two Adams differ in epsilon")
    spec = dict(
        init="generator",
        lr=model.energy_lr,
        gen_lr=model.gen_lr,
        betas=[float(model.beta_1), float(model.beta_2)],
        eps=eps.pop(),
        gen_sigma=model.gen_sigma,
        latent_shape=list(model.latent_shape),
        generator=gen_ops,
    )
    if model.latent_steps:
        raise ValueError("latent revision (latent_steps > 0) has no twin")
    return spec, gen_arrays


def tf_setup(case: dict, variants, workdir: str, cpu_flags: dict) -> dict:
    """Builds the ebm_zoo variants, writes the net description, weights and inputs for the
    PyTorch worker into `workdir`, and returns {"variants": {v: (fn, check)}, "skipped": {...},
    "step_flops": float}."""
    import json

    import tensorflow as tf

    from ebm_zoo.bench import has_bf16

    hooks = _kind(case)
    b, steps, size, ch = case["batch"], case["steps"], case["model"]["image_size"], case["model"]["channels"]
    lo, hi = hooks["x_range"]
    rng = np.random.default_rng(0)
    x_check = rng.uniform(lo, hi, (min(b, 8), size, size, ch)).astype(np.float32)
    x0 = rng.uniform(lo, hi, (b, size, size, ch)).astype(np.float32)
    images = rng.random((b, size, size, ch)).astype(np.float32)
    out, skipped = {}, {}
    fp32 = _build(case["model"], bf16=False)
    ops, arrays = describe_keras_net(hooks["net"](fp32), size, ch)
    spec = {"ops": ops, "update": hooks["update"], "train": hooks["train"]}
    extra_inputs = {}
    h_check = None
    if case["kind"] == "ggcn" and case["task"] == "train":
        try:
            spec["train"], gen_arrays = _ggcn_train_spec(fp32)
            arrays.update(gen_arrays)
            h_check = rng.standard_normal((x_check.shape[0], *fp32.latent_shape)).astype(np.float32)
            extra_inputs["h_check"] = h_check
        except ValueError:
            pass  # this generator has no twin: the PyTorch rows say so
    with open(os.path.join(workdir, "net.json"), "w") as f:
        json.dump(spec, f)
    np.savez(os.path.join(workdir, "net.npz"), **arrays)
    data = fp32.to_internal(images).numpy()  # training data on the internal scale of the model
    np.savez(os.path.join(workdir, "inputs.npz"), x_check=x_check, x0=x0, images=data, **extra_inputs)
    seed = tf.constant([1, 2])
    for v in variants:
        try:
            if v == "ebm_zoo_bf16" and not has_bf16(cpu_flags):
                skipped[v] = "the CPU has neither AVX512_BF16 nor AMX-BF16"
                continue
            model = fp32 if v == "ebm_zoo_fp32" else _build(case["model"], bf16=True)
            if model is not fp32:
                hooks["net"](model).set_weights(hooks["net"](fp32).get_weights())
                if h_check is not None:
                    model.generator.set_weights(fp32.generator.get_weights())
            xc = tf.constant(x_check)

            @tf.function
            def score_and_grad(x, model=model):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    f = tf.cast(hooks["score"](model, x), tf.float32)
                    total = tf.reduce_sum(f)
                return f, tape.gradient(total, x)

            f, g = score_and_grad(xc)
            step = tf.function(lambda x, model=model: hooks["sampler"](model, x, seed, 1, 0.0))(xc)
            check = {"f": f.numpy(), "grad": g.numpy(), "step": tf.cast(step, tf.float32).numpy()}
            if h_check is not None:
                check["gen"] = tf.cast(model.generator(tf.constant(h_check)), tf.float32).numpy()
            if case["task"] == "sampler":
                run = tf.function(lambda x, model=model: hooks["sampler"](model, x, seed, steps))
                xs = tf.constant(x0)

                def fn(run=run, xs=xs):
                    return run(xs).numpy()

            else:
                train = tf.function(model.train_step)
                data = tf.constant(images)

                def fn(train=train, data=data):
                    return train(data)["loss"].numpy()

            out[v] = (fn, check)
        except Exception as e:  # noqa: BLE001 — reported as a skipped row
            skipped[v] = short_error(e)
    flops = 4.0 * b * hooks["update"]["J"] * forward_macs(ops, arrays, size)
    return {"variants": out, "skipped": skipped, "step_flops": flops}


def setup(framework: str, case: dict, variants, workdir: str, cpu_flags: dict) -> dict:
    """Worker entry point (see ebm_zoo.bench.worker)."""
    if framework == "tf":
        return tf_setup(case, variants, workdir, cpu_flags)
    import json

    with open(os.path.join(workdir, "net.json")) as f:
        spec = json.load(f)
    arrays = dict(np.load(os.path.join(workdir, "net.npz")))
    inputs = dict(np.load(os.path.join(workdir, "inputs.npz")))
    if case["task"] == "train" and spec["train"] is None:
        return {
            "variants": {},
            "skipped": {v: "no PyTorch twin of this training iteration" for v in variants},
        }
    from ebm_zoo.bench import has_bf16

    skipped = {}
    if not has_bf16(cpu_flags):
        skipped = {v: "the CPU has neither AVX512_BF16 nor AMX-BF16" for v in variants if "bf16" in v}
    res = torch_setup(case, [v for v in variants if v not in skipped], spec, arrays, inputs)
    res["skipped"].update(skipped)
    return res
