"""Op tables of bench cases from `tf.profiler` traces (tools/bench.py --profile), and of their
PyTorch variants from `torch.profiler` (`torch_trace`, run in a PyTorch worker by
`ebm_zoo.bench.runner.profile_torch_case`).

A bench case's ebm_zoo variant (the same compiled function the bench times) is called
`calls` times under `tf.profiler.experimental` with host tracing at the op level; the
trace (an XSpace protobuf) is reduced to one row per TensorFlow op type:

- ``ms_per_call``: wall time of that op type's kernels per call, summed over the executor
  threads (inter-op parallel kernels both count; intra-op threads are inside the kernel time);
- ``share``: its fraction of all kernel time;
- ``kernels_per_call``: kernel launches per call.

Besides the kernels the table reports the executor's own time (``executor_ms_per_call``: time
in `ExecutorState::Process` not inside a kernel: scheduling, memory bookkeeping, while-loop
frames) and the wall time per call under the profiler (tracing slows it: timings come from the
bench, not from here), so per-op overhead shows up as a number.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import tempfile
import time

#: Executor bookkeeping events (not kernels).
_EXECUTOR = "ExecutorState::Process"
_KERNEL = re.compile(r"^(?P<name>[^:]+):(?P<type>[A-Za-z_][A-Za-z0-9_]*)$")


#: The event of one run of an XLA-compiled function (e.g. the fused SiLU backward pass).
_XLA_RUN = "CpuExecutable::ExecuteAsyncOnStream"
XLA_ROW = "XLA fused function"
#: One row for the calls of `torch.compile`'s generated (inductor) graphs, named by hash.
INDUCTOR_ROW = "inductor compiled graph"


def op_type(event_name: str) -> str | None:
    """'gradient_tape/Conv2DBackpropInput:_MklNativeConv2DBackpropInput' → the kernel's op type
    with oneDNN's prefix kept ('_MklNativeConv2DBackpropInput'); `XLA_ROW` for a run of an
    XLA-compiled function; None for other (bookkeeping) events."""
    if event_name == _XLA_RUN:
        return XLA_ROW
    if "::" in event_name:
        return None
    m = _KERNEL.match(event_name)
    return m.group("type") if m else None


def _intervals_inside(outer: list[tuple[int, int]], inner: list[tuple[int, int]]) -> int:
    """Total length of `inner` intervals that lie inside some `outer` interval (both sorted)."""
    total, j = 0, 0
    for start, end in inner:
        while j < len(outer) and outer[j][1] < start:
            j += 1
        if j < len(outer) and outer[j][0] <= start and end <= outer[j][1]:
            total += end - start
    return total


def op_table(xspace_path: str, calls: int) -> dict:
    """Reduces one host trace to the op table (see the module docstring)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as f:
        space.ParseFromString(f.read())
    host = [p for p in space.planes if p.name == "/host:CPU"]
    if not host:
        raise ValueError(f"{xspace_path}: no /host:CPU plane in the trace.")
    plane = host[0]
    ps = collections.Counter()
    launches = collections.Counter()
    executor_ps = kernel_in_executor_ps = 0
    for line in plane.lines:
        outer, inner = [], []
        for ev in line.events:
            name = plane.event_metadata[ev.metadata_id].name
            span = (ev.offset_ps, ev.offset_ps + ev.duration_ps)
            if name == _EXECUTOR:
                executor_ps += ev.duration_ps
                outer.append(span)
                continue
            kind = op_type(name)
            if kind is None:
                continue
            ps[kind] += ev.duration_ps
            launches[kind] += 1
            inner.append(span)
        kernel_in_executor_ps += _intervals_inside(sorted(outer), sorted(inner))
    total = sum(ps.values())
    if total == 0:
        raise ValueError(f"{xspace_path}: the trace holds no TensorFlow kernels (host_tracer_level < 2?).")
    rows = [
        {
            "op": kind,
            "ms_per_call": v / 1e9 / calls,
            "share": v / total,
            "kernels_per_call": launches[kind] / calls,
        }
        for kind, v in ps.most_common()
    ]
    return {
        "calls": calls,
        "kernel_ms_per_call": total / 1e9 / calls,
        "executor_ms_per_call": (executor_ps - kernel_in_executor_ps) / 1e9 / calls,
        "kernels_per_call": sum(launches.values()) / calls,
        "rows": rows,
    }


def trace(fn, calls: int, logdir: str | None = None) -> dict:
    """Calls the blocking `fn` once untimed, then `calls` times under the profiler; the op table."""
    import tensorflow as tf

    fn()
    logdir = logdir or tempfile.mkdtemp(prefix="ebm_zoo_profile_")
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3, python_tracer_level=0)
    tf.profiler.experimental.start(logdir, options=options)
    try:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - t0
    finally:
        tf.profiler.experimental.stop()
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        raise RuntimeError(f"tf.profiler wrote no trace under {logdir}.")
    table = op_table(paths[-1], calls)
    table["wall_ms_per_call"] = 1e3 * wall / calls  # under the profiler: slower than the bench's
    table["trace"] = paths[-1]
    return table


def conv_ms(rows: list[dict]) -> float:
    """Milliseconds per call of the rows whose op is a convolution (forward or backward; TF's
    `Conv2D*` / `_Mkl*Conv2D*` kernels, PyTorch's `aten::*convolution*` / `mkldnn` conv ops)."""
    return sum(r["ms_per_call"] for r in rows if "conv" in r["op"].lower())


def torch_trace(fn, calls: int) -> dict:
    """The op table of a PyTorch variant's `fn` under `torch.profiler` (one untraced call, then
    `calls` traced): per op name its *self* CPU time per call (time in the op, not in the ops it
    calls; intra-op threads are inside it, as in TF's kernel times), its share and its launches.
    A `torch.compile` variant's generated kernels are not profiled one by one: their time is the
    self time of the compiled region's record function ("Torch-Compiled Region", the compiled
    forward / backward functions)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as p:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - t0
    us = collections.Counter()
    launches = collections.Counter()
    for e in p.key_averages():
        if e.self_cpu_time_total > 0:
            key = INDUCTOR_ROW if e.key.startswith("## Call CompiledFxGraph") else e.key
            us[key] += e.self_cpu_time_total
            launches[key] += e.count
    total = sum(us.values())
    if total == 0:
        raise ValueError("torch.profiler recorded no op time.")
    rows = [
        {"op": k, "ms_per_call": v / 1e3 / calls, "share": v / total, "kernels_per_call": launches[k] / calls}
        for k, v in us.most_common()
    ]
    return {
        "calls": calls,
        "kernel_ms_per_call": total / 1e3 / calls,
        "executor_ms_per_call": 0.0,  # no executor: the Python loop between ops is not an op
        "kernels_per_call": sum(launches.values()) / calls,
        "rows": rows,
        "wall_ms_per_call": 1e3 * wall / calls,
    }


def profile_case(case: dict, variant: str, calls: int, cpu_flags: dict, workdir: str) -> dict:
    """The op table of one ebm_zoo variant of a bench case (built as the bench builds it)."""
    import importlib

    from ebm_zoo import bench

    module = importlib.import_module(bench.SUITES[case["suite"]])
    tf_variants = [v for v in module.variants(case)["tf"] if v.startswith("ebm_zoo")]
    if variant not in tf_variants:
        raise ValueError(
            f"case {case['case']!r} has no variant {variant!r} to profile; choose from {tf_variants} "
            "(only TensorFlow rows are traced)."
        )
    res = module.setup("tf", case, [variant], workdir, cpu_flags)
    if variant not in res["variants"]:
        reason = res.get("skipped", {}).get(variant, "not built")
        raise ValueError(f"case {case['case']!r} has no variant {variant!r} here: {reason}.")
    fn, _ = res["variants"][variant]
    table = trace(fn, calls, logdir=os.path.join(workdir, "trace_" + variant))
    return {"case": case["case"], "variant": variant, **table}


def format_table(result: dict, top: int = 15) -> str:
    """A Markdown table of the `top` op types (the rest summed) of one `profile_case` result."""
    lines = [
        f"**{result['case']} — {result['variant']}**: {result['kernel_ms_per_call']:.1f} ms of kernels, "
        f"{result['kernels_per_call']:.0f} kernel launches, {result['executor_ms_per_call']:.1f} ms of "
        f"executor time outside kernels, {result['wall_ms_per_call']:.1f} ms wall per call under the profiler "
        f"({result['calls']} calls traced); convolutions {conv_ms(result['rows']):.1f} ms.",
        "",
        "| op type | ms / call | share | kernels / call |",
        "|---|---|---|---|",
    ]
    rows = result["rows"]
    for r in rows[:top]:
        lines.append(
            f"| {r['op']} | {r['ms_per_call']:.2f} | {r['share']:.1%} | {r['kernels_per_call']:.0f} |"
        )
    rest = rows[top:]
    if rest:
        ms = sum(r["ms_per_call"] for r in rest)
        share = sum(r["share"] for r in rest)
        n = sum(r["kernels_per_call"] for r in rest)
        lines.append(f"| {len(rest)} other op types | {ms:.2f} | {share:.1%} | {n:.0f} |")
    return "\n".join(lines)
