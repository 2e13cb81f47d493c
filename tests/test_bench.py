"""The fair bench (tools/bench.py): interleaving, copied weights, ratios, the JSON schema.

No timing is asserted here: performance is measured by tools/bench.py, not in tests.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from ebm_zoo import bench
from ebm_zoo.bench import ggcn as bench_ggcn
from ebm_zoo.bench import langevin as bench_langevin
from ebm_zoo.bench import multigrid as bench_multigrid


# ------------------------------------------------------------------------------------------
# Interleaving.
def test_interleaved_order_alternates_direction_every_round():
    assert bench.interleaved_order(["a", "b"], 4) == ["a", "b", "b", "a", "a", "b", "b", "a"]
    order = bench.interleaved_order(["a", "b", "c"], 3)
    assert order == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]


def test_run_interleaved_calls_in_that_order_and_keeps_samples_per_variant():
    calls = []

    def fake_call(v):
        calls.append(v)
        return {"wall": {"a": 1.0, "b": 2.0}[v], "cpu": 0.5}

    res = bench.run_interleaved(fake_call, ["a", "b"], 3)
    assert calls == ["a", "b", "b", "a", "a", "b"] == res["order"]
    assert [s["wall"] for s in res["samples"]["b"]] == [2.0, 2.0, 2.0]
    assert all("load1" in s for s in res["samples"]["a"])
    # Round by round, b takes twice as long as a.
    assert bench.paired_ratio(res["samples"]["a"], res["samples"]["b"]) == pytest.approx(2.0)


# ------------------------------------------------------------------------------------------
# Ratios: always printed, whoever wins.
def _rows(ours_wall, others):
    samples = lambda w: [{"wall": w, "cpu": w, "load1": 1.0}] * 3  # noqa: E731
    rows = [
        bench.make_row(
            "ebm_zoo_fp32", samples(ours_wall), task="sampler", steps=10, step_flops=None, matmul_gflops=None
        )
    ]
    for v, w in others.items():
        rows.append(
            bench.make_row(v, samples(w), task="sampler", steps=10, step_flops=None, matmul_gflops=None)
        )
    return rows


@pytest.mark.parametrize("ours_wall,expected", [(1.0, 2.0), (4.0, 0.5)])
def test_ratio_against_best_competitor_is_printed_whoever_wins(ours_wall, expected):
    # Best competitor: torch_cl_fp32 at 2.0 s per call; bf16 rows are not fp32 competitors.
    rows = _rows(
        ours_wall, {"torch_fp32": 3.0, "torch_cl_fp32": 2.0, "torch_bf16": 0.1, "torchebm_fp32": 5.0}
    )
    summary = bench.ratio_summary(rows)
    assert summary["best_competitor"] == "torch_cl_fp32"
    assert summary["vs_best"] == pytest.approx(expected)
    assert summary["vs"]["torchebm_fp32"] == pytest.approx(5.0 / ours_wall)
    line = bench.format_ratio(summary)
    assert f"{expected:.3f}" in line and "torch_cl_fp32" in line
    assert ("ebm_zoo faster" in line) == (expected > 1)


def test_ratio_excludes_rows_whose_output_check_failed_and_says_when_none_is_left():
    rows = _rows(1.0, {"torch_fp32": 0.5})
    rows[1]["same_output"] = False
    summary = bench.ratio_summary(rows)
    assert summary["vs_best"] is None
    assert "n/a" in bench.format_ratio(summary)


def test_summary_takes_each_pytorch_column_from_the_faster_of_two_workers_and_names_it():
    """With --torch_env the PyTorch variants run in two workers; each column is the faster row,
    named with the short label of its worker's environment, and ours / TorchEBM uses that row."""
    from ebm_zoo.bench import runner

    env = {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "MALLOC_CONF": "a:1,b:2"}
    at = "@" + ",".join(f"{k}={v}" for k, v in env.items())
    walls = {"torch_fp32": 3.0, "torch_cl_fp32" + at: 2.0, "torch_bf16": 0.5, "torch_bf16" + at: 0.8}
    walls |= {"torchebm_fp32": 5.0, "torchebm_fp32" + at: 4.0}
    rows = _rows(1.0, walls)
    case = {"case": "net/sampler", "rows": rows, "ratio": bench.ratio_summary(rows)}
    report = {"matmul": {"median_gflops": 100.0}, "cases": [case], "extra_env": {"tf": {}, "torch": env}}
    line = runner.summary_table(report).splitlines()[-1]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3] == "5 steps/s (torch_cl_fp32@jemalloc)"  # 10 steps in 2.0 s
    assert cells[4] == "20 steps/s (torch_bf16)"  # the glibc row is faster here
    assert cells[5] == "2.5 steps/s (torchebm_fp32@jemalloc)"
    assert cells[6] == "2.000 (torch_cl_fp32@jemalloc)" and cells[7] == "4.000"
    assert runner.env_label({"OMP_WAIT_POLICY": "PASSIVE"}) == "OMP_WAIT_POLICY=PASSIVE"
    assert runner.env_label({"A": "x" * 50}) == "env2"


def test_compare_outputs_is_relative_to_the_reference_scale():
    ref = {"f": np.array([100.0, -50.0])}
    assert bench.compare_outputs(ref, {"f": np.array([100.0005, -50.0])})["max"] == pytest.approx(5e-6)
    assert bench.compare_outputs(ref, {"f": np.array([1.0])})["f"] == float("inf")
    # Large outputs: the 99th percentile ignores a few isolated elements (kink flips), not more.
    g = np.linspace(-1.0, 1.0, 1000)
    few, many = g.copy(), g.copy()
    few[:5] += 0.1
    many[:50] += 0.1
    assert bench.compare_outputs({"g": g}, {"g": few})["max"] < 1e-12
    assert bench.compare_outputs({"g": g}, {"g": few})["g_max"] == pytest.approx(0.1)
    assert bench.compare_outputs({"g": g}, {"g": many})["max"] == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------
# Copied weights: every twin computes the TF net's f and ∂f/∂x (to 1e-5 of the max).
def _net_cases():
    out = []
    for module in (bench_langevin, bench_multigrid, bench_ggcn):
        seen = set()
        for case in module.cases(quick=True):
            if case["net"] not in seen:
                seen.add(case["net"])
                out.append(pytest.param(case, id=case["net"]))
    return out


@pytest.mark.parametrize("case", _net_cases())
def test_torch_twin_equals_tf_net_with_copied_weights(case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the twin is not checked")
    hooks = bench_langevin._kind(case)
    model = bench_langevin._build(case["model"], bf16=False)
    size, ch = case["model"]["image_size"], case["model"]["channels"]
    ops, arrays = bench_langevin.describe_keras_net(hooks["net"](model), size, ch)
    twin = bench_langevin.make_torch_net(ops, arrays)
    lo, hi = hooks["x_range"]
    x = np.random.default_rng(1).uniform(lo, hi, (3, size, size, ch)).astype(np.float32)

    @tf.function
    def score_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            f = hooks["score"](model, x)
            total = tf.reduce_sum(f)
        return f, tape.gradient(total, x)

    f_tf, g_tf = (t.numpy() for t in score_and_grad(tf.constant(x)))
    x_pt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(True)
    f_pt = twin(x_pt)
    (g_pt,) = torch.autograd.grad(f_pt.sum(), x_pt)
    got = {"f": f_pt.detach().numpy(), "grad": g_pt.numpy().transpose(0, 2, 3, 1)}
    errs = bench.compare_outputs({"f": f_tf, "grad": g_tf}, got)
    assert errs["max"] <= bench.TOL_FP32, errs
    # The check can fail: a twin with its top layer's weights 1 % off is far off.
    arrays_bad = dict(arrays)
    last = [k for k in arrays if k.endswith("/w")][-1]
    arrays_bad[last] = arrays[last] * 1.01
    bad = bench_langevin.make_torch_net(ops, arrays_bad)(x_pt).detach().numpy()
    assert bench.compare_outputs({"f": f_tf}, {"f": bad})["max"] > 100 * bench.TOL_FP32


@pytest.mark.parametrize("net", ["ggcn28x1", "ggcn32x3"])
def test_torch_generator_twin_equals_the_ggcn_generator_and_its_iteration_trains_both_nets(net):
    """The GGCN training twin: G(h) equal to the Keras generator with copied weights (the
    transposed kernels' layout matters: flipped kernels are far off), and one twin iteration
    moves the weights of both nets."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the twin is not checked")
    case = next(c for c in bench_ggcn.cases(quick=True) if c["case"] == f"{net}/train")
    model = bench_langevin._build(case["model"], bf16=False)
    spec, gen_arrays = bench_langevin._ggcn_train_spec(model)
    twin = bench_langevin.make_torch_generator(spec["generator"], gen_arrays)
    h = np.random.default_rng(3).standard_normal((3, *model.latent_shape)).astype(np.float32)
    want = model.generator(tf.constant(h)).numpy()
    got = twin(torch.from_numpy(np.ascontiguousarray(h.transpose(0, 3, 1, 2)))).detach().numpy()
    assert got.shape == want.transpose(0, 3, 1, 2).shape
    assert bench.compare_outputs({"gen": want}, {"gen": got.transpose(0, 2, 3, 1)})["max"] <= bench.TOL_FP32
    flipped = dict(gen_arrays)
    key = next(op["name"] + "/w" for op in spec["generator"] if op["op"] == "convT")
    flipped[key] = np.ascontiguousarray(gen_arrays[key][:, :, ::-1, ::-1])
    bad = bench_langevin.make_torch_generator(spec["generator"], flipped)
    bad_out = bad(torch.from_numpy(np.ascontiguousarray(h.transpose(0, 3, 1, 2)))).detach().numpy()
    assert (
        bench.compare_outputs({"gen": want}, {"gen": bad_out.transpose(0, 2, 3, 1)})["max"]
        > 100 * bench.TOL_FP32
    )

    hooks = bench_langevin._kind(case)
    ops, arrays = bench_langevin.describe_keras_net(
        model.score_net, case["model"]["image_size"], case["model"]["channels"]
    )
    energy = bench_langevin.make_torch_net(ops, arrays)
    size, ch = case["model"]["image_size"], case["model"]["channels"]
    data = torch.rand(case["batch"], ch, size, size) * 2 - 1
    fn = bench_langevin._torch_ggcn_train_fn(
        case,
        {"train": spec},
        energy,
        energy,
        twin,
        twin,
        data,
        hooks["update"],
        torch.Generator().manual_seed(0),
        False,
        torch.contiguous_format,
    )
    before = [p.detach().clone() for p in [*energy.parameters(), *twin.parameters()]]
    assert np.isfinite(fn())
    after = [*energy.parameters(), *twin.parameters()]
    same = [i for i, (a, b) in enumerate(zip(before, after)) if torch.equal(a, b)]
    # Only the energy's top bias stays: it cancels in mean f(x̃) − mean f(X) (zero gradient).
    assert same == [len(list(energy.parameters())) - 1], (same, [tuple(p.shape) for p in after])


def test_torch_update_matches_the_model_step_without_noise():
    """One noise-free step of the twin's update equals `MultiGrid.run_sampler`'s."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the twin is not checked")
    case = bench_multigrid.cases(quick=True)[0]
    hooks = bench_langevin._kind(case)
    model = bench_langevin._build(case["model"], bf16=False)
    ops, arrays = bench_langevin.describe_keras_net(hooks["net"](model), 64, 3)
    twin = bench_langevin.make_torch_net(ops, arrays)
    x = np.random.default_rng(2).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    upd = dict(hooks["update"], tau=5e4)  # a step that moves pixels visibly
    model.step_size = float(np.sqrt(2 * 5e4))
    x_tf = hooks["sampler"](model, tf.constant(x), tf.constant([0, 0]), 1).numpy()
    x_pt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    twin.requires_grad_(False)
    out = bench_langevin.torch_update(twin, x_pt, 1, upd, None).numpy().transpose(0, 2, 3, 1)
    assert np.abs(x_tf - x).max() > 1.0  # the step did move the chains
    np.testing.assert_allclose(out, x_tf, atol=1e-5 * 255)


def test_forward_macs_and_same_padding():
    # TF 'same' padding of a stride-2 5×5 conv on 64 pixels: 3 pixels, 1 before and 2 after.
    assert bench_langevin.same_padding(64, 5, 2) == (32, 1, 2)
    ops = [{"op": "conv", "name": "c", "stride": 1, "pad": [1, 1]}, {"op": "dense", "name": "d"}]
    arrays = {"c/w": np.zeros((2, 1, 3, 3)), "d/w": np.zeros((1, 32))}
    # 4·4·2·1·9 conv MACs + 32 Dense MACs
    assert bench_langevin.forward_macs(ops, arrays, 4) == 288 + 32


# ------------------------------------------------------------------------------------------
# Machine description and the JSON schema.
def test_cpu_description_names_the_model_and_the_bf16_flags():
    cpu = bench.cpu_description()
    assert cpu["model_name"]
    assert set(bench.RELEVANT_FLAGS) == set(cpu["flags"])
    assert bench.has_bf16({"amx_bf16": True}) and not bench.has_bf16({"avx512f": True})


def test_validate_report_rejects_a_missing_key():
    report = {k: None for k in bench.REPORT_KEYS}
    report.update(machine={"cpu": {"model_name": "x", "flags": {}}}, cases=[{"case": "c"}])
    with pytest.raises(ValueError, match="misses"):
        bench.validate_report(report)


@pytest.mark.slow
def test_quick_run_writes_a_report_with_the_schema(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from ebm_zoo.bench import runner

    lines = []
    report = runner.run(
        ["langevin"],
        quick=True,
        rounds=2,
        only=["torch_fp32"],
        case_filter=["sampler"],
        log=lines.append,
        tf_env={"TF_ENABLE_ONEDNN_OPTS": "1"},  # a 2nd TF worker (here with TF's default value)
    )
    bench.validate_report(report)
    json.loads(json.dumps(report, default=float))
    (case,) = report["cases"]
    ab = "ebm_zoo_fp32@TF_ENABLE_ONEDNN_OPTS=1"
    assert case["order"] == ["ebm_zoo_fp32", ab, "torch_fp32", "torch_fp32", ab, "ebm_zoo_fp32"]
    rows = {r["variant"]: r for r in case["rows"]}
    for v in ("torch_fp32", ab):  # copied weights: the same f, ∂f/∂x and update
        assert rows[v]["same_output"] is True and rows[v]["check_err"] <= bench.TOL_FP32
    assert rows["ebm_zoo_fp32"]["rate"] > 0 and rows["ebm_zoo_fp32"]["cpu_s"] > 0
    assert 0 < rows["ebm_zoo_fp32"]["frac_of_matmul"]
    assert report["machine"]["cpu"]["flags"] and report["machine"]["versions"]["tensorflow"]
    threads = report["machine"]["threads"]
    assert threads["torch"]["num_threads"] >= 1 and "intra_op_parallelism_threads" in threads["tf"]
    assert any("ratio ebm_zoo_fp32 / best competitor (torch_fp32)" in line for line in lines)
    # The PyTorch worker runs with the tuned malloc, the TF workers (A/B one too) with glibc's.
    assert report["malloc"] == {"mode": "tuned", "env": bench.MALLOC_ENV, "workers": "torch"}
    assert threads["torch"]["malloc_env"] == bench.MALLOC_ENV
    assert threads["tf"]["malloc_env"] == {} and threads["tf@TF_ENABLE_ONEDNN_OPTS=1"]["malloc_env"] == {}
    assert all(r["minflt"] >= 0 for r in case["rows"])


_CHURN = """
import resource, numpy as np
def work():
    for mib in (3, 20, 7, 30, 12):  # blocks below glibc's 32 MiB mmap ceiling, freed in between
        a = np.empty(mib * 262144, np.float32); a.fill(1.0); del a
work()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    work()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5)
"""


def test_bench_malloc_env_stops_freed_memory_being_page_faulted_back_in():
    """What `--malloc=tuned` is for: with glibc's defaults an allocate/free churn of MiB-sized
    blocks page-faults on every round; with `bench.MALLOC_ENV` it reuses the heap (≈ 0 faults)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {}
    for mode, extra in (("default", {}), ("tuned", bench.MALLOC_ENV)):
        out = subprocess.run(
            [sys.executable, "-c", _CHURN], env={**env, **extra}, capture_output=True, text=True, check=True
        )
        faults[mode] = float(out.stdout.split()[-1])
    assert faults["tuned"] <= 10, faults
    assert faults["default"] >= 50, faults


_BIG_CHURN = _CHURN.replace("(3, 20, 7, 30, 12)", "(40, 64, 48)").replace("below", "above")


def test_bench_jemalloc_keeps_even_blocks_above_glibcs_mmap_ceiling():
    """What `--malloc=jemalloc` adds: blocks above 32 MiB (glibc maps and unmaps them on every
    allocation, tuned or not) are kept by jemalloc without decay (≈ 0 faults per round)."""
    import os
    import subprocess
    import sys

    path = bench.jemalloc_path()
    if path is None:
        pytest.skip(
            "libjemalloc2 is not installed (apt-get install libjemalloc2); --malloc=jemalloc refuses to run"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    faults = {}
    for mode in ("tuned", "jemalloc"):
        out = subprocess.run(
            [sys.executable, "-c", _BIG_CHURN],
            env={**env, **bench.malloc_env(mode)},
            capture_output=True,
            text=True,
            check=True,
        )
        faults[mode] = float(out.stdout.split()[-1])
    # ≥ one fault per 2 MiB huge page of the 152 MiB mapped per round under glibc (here 1,612).
    assert faults["tuned"] >= 76 and faults["jemalloc"] * 20 <= faults["tuned"], faults
    assert bench.malloc_env("jemalloc") == {"LD_PRELOAD": path, "MALLOC_CONF": bench.JEMALLOC_CONF}


def test_malloc_modes_and_a_missing_jemalloc_give_one_clear_error(monkeypatch):
    from ebm_zoo.utils.checks import EbmZooError

    assert bench.malloc_env("tuned") == bench.MALLOC_ENV and bench.malloc_env("default") == {}
    with pytest.raises(EbmZooError, match="tuned, jemalloc, default, got 'tcmalloc'"):
        bench.malloc_env("tcmalloc")
    monkeypatch.setattr(bench, "JEMALLOC_PATHS", ("/nonexistent/libjemalloc.so.2",))
    with pytest.raises(
        EbmZooError, match="no libjemalloc.so.2 in /nonexistent.*apt-get install libjemalloc2"
    ):
        bench.malloc_env("jemalloc")


def test_timed_call_counts_the_page_faults_of_the_call():
    def touch():  # 64 MiB: above glibc's largest mmap threshold (32 MiB), fresh pages every call
        np.ones(16 * 1024 * 1024, np.float32).sum()

    t = bench.timed_call(touch)
    assert t["wall"] > 0 and t["cpu"] >= 0
    assert t["minflt"] >= 32, t  # ≥ one fault per page: 16,384 of 4 KiB, or 32 huge pages of 2 MiB


def test_nets_output_float32_under_mixed_bfloat16_and_follow_a_plain_policy():
    """The ebm_zoo_bf16 rows need float32 scores; float64 gradient checks need float64 ones."""
    import keras

    from ebm_zoo.nets.convnets import EnergyConvNet
    from ebm_zoo.nets.multigrid_nets import make_energy_net

    before = keras.mixed_precision.global_policy().name
    try:
        for policy, want in (("mixed_bfloat16", tf.float32), ("float64", tf.float64)):
            keras.mixed_precision.set_global_policy(policy)
            x = tf.zeros([2, 8, 8, 3], want)
            f = EnergyConvNet(layers=[[4, 3, 2]], top="dense")(x)
            g = make_energy_net(8, 3, width=0.1)(x)
            assert f.dtype == want and g.dtype == want, (policy, f.dtype, g.dtype)
    finally:
        keras.mixed_precision.set_global_policy(before)


def test_bf16_rows_are_skipped_with_the_reason_on_a_cpu_without_bf16(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    case = bench_langevin.cases(quick=True)[0]
    no_bf16 = {f: False for f in bench.RELEVANT_FLAGS}
    tf_side = bench_langevin.setup("tf", case, ["ebm_zoo_fp32", "ebm_zoo_bf16"], str(tmp_path), no_bf16)
    pt_side = bench_langevin.setup("torch", case, ["torch_fp32", "torch_bf16"], str(tmp_path), no_bf16)
    assert set(tf_side["variants"]) == {"ebm_zoo_fp32"} and set(pt_side["variants"]) == {"torch_fp32"}
    for res, v in ((tf_side, "ebm_zoo_bf16"), (pt_side, "torch_bf16")):
        assert "AVX512_BF16" in res["skipped"][v]


def test_committed_bench_summary_in_the_readme_and_docs_is_regenerated_from_its_json(tmp_path):
    """The speed figures of README.md / docs/bench.md are `tools/bench.py --render=<json>` of the
    committed run (no hand-edited number); --check fails on a stale block."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    runs = sorted(repo.glob("docs/bench_20*.json"))
    current = [p for p in runs if p.name != "bench_quiet_2026-11-23.json"]
    assert current, "no committed bench run"
    source = current[-1].relative_to(repo)

    def tool(*args):
        return subprocess.run(
            [sys.executable, "tools/bench.py", *args], capture_output=True, text=True, timeout=120, cwd=repo
        )

    r = tool(f"--render={source}", "--check")
    assert r.returncode == 0, r.stderr[-800:]
    doc = tmp_path / "doc.md"
    doc.write_text("x\n<!-- bench_summary:begin -->\nold 99 steps/s\n<!-- bench_summary:end -->\ny\n")
    r = tool(f"--render={source}", "--check", f"--docs={doc}")
    assert r.returncode != 0 and "Out of date" in r.stderr and "Traceback" not in r.stderr
    assert tool(f"--render={source}", f"--docs={doc}").returncode == 0
    text = doc.read_text()
    report = json.loads((repo / source).read_text())
    ours = next(c for c in report["cases"] if c["case"] == "multigrid64x3/sampler")
    rate = next(r["rate"] for r in ours["rows"] if r["variant"] == "ebm_zoo_fp32")
    assert f"| multigrid64x3/sampler | {rate:.4g} steps/s |" in text and "old 99" not in text
    assert text.startswith("x\n") and text.endswith("y\n")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = tool(f"--render={bad}", f"--docs={doc}")
    assert r.returncode != 0 and "not a readable bench report" in r.stderr and "Traceback" not in r.stderr


def test_profile_op_table_counts_the_kernels_of_one_sampler_call(tmp_path):
    """--profile's op table (tf.profiler trace → rows per op type) on the quick short-run sampler
    (T = 2 steps, 3 swish conv layers): one normal draw per step, the fused SiLU backward pass
    once per layer and step, shares that add up to one."""
    from ebm_zoo.bench import profile as prof

    case = next(c for c in bench_langevin.cases(quick=True) if c["task"] == "sampler")
    flags = bench.cpu_description()["flags"]
    res = prof.profile_case(case, "ebm_zoo_fp32", 2, flags, str(tmp_path))
    rows = {r["op"]: r for r in res["rows"]}
    steps, layers = case["steps"], len(case["model"]["layers"])
    assert rows["StatelessRandomNormalV2"]["kernels_per_call"] == steps
    assert rows[prof.XLA_ROW]["kernels_per_call"] == steps * layers
    assert any("Conv2DBackpropInput" in op for op in rows)
    assert abs(sum(r["share"] for r in res["rows"]) - 1.0) < 1e-9
    assert res["kernel_ms_per_call"] > 0 and res["executor_ms_per_call"] >= 0
    text = prof.format_table(res, top=3)
    assert "| op type |" in text and "other op types" in text
    with pytest.raises(ValueError, match="no variant 'torch_fp32'"):
        prof.profile_case(case, "torch_fp32", 1, flags, str(tmp_path))


def test_torch_profile_counts_the_twins_convolutions_in_its_own_worker(tmp_path):
    """The PyTorch side of --profile: the quick short-run training iteration (T = 2 steps, 3 conv
    layers) traced in a PyTorch worker run with MALLOC_ENV. Each step and each of the two loss
    terms runs every conv layer forward once: layers · (T + 2) `aten::mkldnn_convolution` calls,
    and as many backward passes; the conv rows are counted by `conv_ms`; a TF variant name or a
    typo is refused with the valid names."""
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from ebm_zoo.bench import profile as prof
    from ebm_zoo.bench import runner

    case = next(c for c in bench_langevin.cases(quick=True) if c["task"] == "train")
    flags = bench.cpu_description()["flags"]
    tables, skipped = runner.profile_torch_case(
        case, ["torch_fp32"], 2, flags, str(tmp_path), env=dict(bench.MALLOC_ENV)
    )
    assert skipped == {} and [t["variant"] for t in tables] == ["torch_fp32"]
    rows = {r["op"]: r for r in tables[0]["rows"]}
    convs = case["steps"] + 2
    layers = len(case["model"]["layers"])
    assert rows["aten::mkldnn_convolution"]["kernels_per_call"] == layers * convs
    assert rows["aten::convolution_backward"]["kernels_per_call"] == layers * convs
    assert abs(sum(r["share"] for r in tables[0]["rows"]) - 1.0) < 1e-9
    conv = prof.conv_ms(tables[0]["rows"])
    expected = (
        rows["aten::mkldnn_convolution"]["ms_per_call"] + rows["aten::convolution_backward"]["ms_per_call"]
    )
    assert conv >= expected > 0 and conv <= tables[0]["kernel_ms_per_call"]
    assert "convolutions" in prof.format_table(tables[0])
    for bad in ("ebm_zoo_fp32", "torch_fp33"):
        with pytest.raises(ValueError, match="no PyTorch variant"):
            runner.profile_torch_case(case, [bad], 1, flags, str(tmp_path))


def test_profile_flag_names_the_valid_cases_on_a_typo():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [sys.executable, "tools/bench.py", "--profile=shortrun/train"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--profile='shortrun/train' is not a bench case" in r.stderr and "shortrun32x3/train" in r.stderr


def test_profile_flag_traces_tf_and_torch_variants_into_one_json(tmp_path):
    """docs/bench.md's cross-framework command at the quick size: one table per variant, the
    PyTorch one traced in a worker with the tuned malloc (recorded), convolutions counted."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("torch", reason="PyTorch is not installed")
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "p.json"
    r = subprocess.run(
        [
            sys.executable,
            "tools/bench.py",
            "--profile=shortrun32x3/sampler",
            "--quick",
            "--variants=ebm_zoo_fp32,torch_fp32",
            "--profile_calls=1",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [t["variant"] for t in report["tables"]] == ["ebm_zoo_fp32", "torch_fp32"]
    assert report["torch_worker_env"] == bench.MALLOC_ENV and report["skipped"] == {}
    assert r.stdout.count("convolutions") == 2 and "aten::mkldnn_convolution" in r.stdout


def test_fused_kernel_ab_table_in_docs_is_the_committed_runs():
    """docs/bench.md's A/B table of the fused kernels: every row recomputed from its JSON."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    doc = (repo / "docs/bench.md").read_text()
    sources = sorted(repo.glob("docs/bench_ab_*_fused_*.json"))
    assert len(sources) == 2
    for path in sources:
        report = json.loads(path.read_text())
        assert "--tf_env=EBM_ZOO_FUSED=0" in report["command"]
        for case in report["cases"]:
            rows = {r["variant"]: r for r in case["rows"]}
            for v in ("ebm_zoo_fp32", "ebm_zoo_bf16"):
                on, off = rows[v], rows[f"{v}@EBM_ZOO_FUSED=0"]
                line = (
                    f"| {case['case']} | {v} | {off['rate']:.4g} | {on['rate']:.4g} | {on['unit']} | "
                    f"**{on['rate'] / off['rate']:.2f}×** | {path.name} |"
                )
                assert line in doc, line


def test_the_command_line_carries_the_thread_settings_it_ran_with(monkeypatch):
    """A JSON's `command` must reproduce it: the thread variables set for the run come first."""
    for k in bench.THREAD_ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    argv = ["tools/bench.py", "--profile=ggcn28x1/sampler"]
    assert bench.command_line(argv, "/usr/bin/python3") == "python3 tools/bench.py --profile=ggcn28x1/sampler"
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("UNRELATED", "x")
    assert bench.command_line(argv, "/usr/bin/python3") == (
        "OMP_NUM_THREADS=1 TF_NUM_INTEROP_THREADS=1 python3 tools/bench.py --profile=ggcn28x1/sampler"
    )
    assert bench.machine_info()["thread_env"]["TF_NUM_INTEROP_THREADS"] == "1"


def test_env_flags_keep_commas_inside_values_and_refuse_a_missing_key():
    """--torch_env=LD_PRELOAD=…,MALLOC_CONF=a:1,b:2 (absl splits at every comma) → two variables."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    from ebm_zoo.utils.checks import EbmZooError

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_tool", repo / "tools/bench.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    items = ["LD_PRELOAD=/x/libjemalloc.so.2", "MALLOC_CONF=background_thread:true", "dirty_decay_ms:-1"]
    assert tool._env(items) == {
        "LD_PRELOAD": "/x/libjemalloc.so.2",
        "MALLOC_CONF": "background_thread:true,dirty_decay_ms:-1",
    }
    assert tool._env(["A=1=2"]) == {"A": "1=2"}
    with pytest.raises(EbmZooError, match="KEY=VALUE items, got 'dirty' first"):
        tool._env(["dirty", "A=1"])
    with pytest.raises(EbmZooError, match="has no KEY"):
        tool._env(["=1"])
    r = subprocess.run(
        [sys.executable, "tools/bench.py", "--torch_env=oops", "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert r.returncode != 0 and "KEY=VALUE" in r.stderr and "Traceback" not in r.stderr
