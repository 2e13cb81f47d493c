"""The coordinator of a fair bench run: workers, start-of-case output checks, interleaved
timing, rows, ratios and the JSON report (see ebm_zoo.bench and docs/bench.md)."""

from __future__ import annotations

import datetime
import importlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from ebm_zoo import bench
from ebm_zoo.bench.worker import REPLY_PREFIX


class Worker:
    """A `python -m ebm_zoo.bench.worker <framework>` process spoken to in JSON lines."""

    def __init__(self, framework: str, logdir: str, env: dict | None = None, name: str | None = None):
        self.framework = framework
        self.name = name or framework
        safe = "".join(c if c.isalnum() else "_" for c in self.name)
        self.log_path = os.path.join(logdir, f"worker_{safe}.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ebm_zoo.bench.worker", framework],
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )

    def request(self, cmd: dict) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(REPLY_PREFIX):
                return json.loads(line[len(REPLY_PREFIX) :])
        with open(self.log_path) as f:
            tail = f.read()[-1500:]
        raise RuntimeError(f"{self.framework} worker exited (rc={self.proc.poll()}): {tail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request({"cmd": "quit"})
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def profile_torch_case(
    case: dict, variants, calls: int, cpu_flags: dict, workdir: str, env: dict | None = None
) -> tuple[list[dict], dict]:
    """Op tables of a case's PyTorch variants, each traced in a PyTorch bench worker (its own
    process, `env` added to its environment, as the bench runs them) on the twin of the net that
    the TensorFlow side writes into `workdir` (tools/bench.py --profile; the tables come from
    `ebm_zoo.bench.profile.torch_trace`). Returns (tables, {variant: why skipped})."""
    module = importlib.import_module(bench.SUITES[case["suite"]])
    known = module.variants(case).get("torch", [])
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise ValueError(
            f"case {case['case']!r} has no PyTorch variant {unknown[0]!r} to profile; choose from {known}."
        )
    if not os.path.exists(os.path.join(workdir, "net.json")):
        module.setup("tf", case, ["ebm_zoo_fp32"], workdir, cpu_flags)  # writes the twin's net
    worker = Worker("torch", workdir, env=env, name="torch_profile")
    try:
        res = worker.request(
            {
                "cmd": "setup",
                "case": case,
                "variants": list(variants),
                "workdir": workdir,
                "cpu_flags": cpu_flags,
            }
        )
        if "error" in res:
            raise RuntimeError(f"PyTorch worker setup failed: {res['error']}")
        tables, skipped = [], dict(res["skipped"])
        for v in variants:
            if v not in res["ready"]:
                skipped.setdefault(v, "not built")
                continue
            table = worker.request({"cmd": "profile", "variant": v, "calls": calls})
            if "error" in table:
                skipped[v] = table["error"]
                continue
            tables.append({"case": case["case"], "variant": v, **table})
        return tables, skipped
    finally:
        worker.close()


def _load_checks(path: str) -> dict:
    out: dict = {}
    with np.load(path) as z:
        for key in z.files:
            v, name = key.split("/", 1)
            out.setdefault(v, {})[name] = z[key]
    return out


def run_case(
    case: dict, workers: dict, *, rounds: int, matmul_gflops: float, cpu_flags: dict, only=None, log=print
) -> dict:
    """Sets up, checks and times one case; returns its JSON record (and prints it)."""
    module = importlib.import_module(bench.SUITES[case["suite"]])
    wanted = module.variants(case)
    if only:
        wanted = {fw: [v for v in vs if v in only or v == bench.OURS] for fw, vs in wanted.items()}
    workdir = tempfile.mkdtemp(prefix="ebm_zoo_bench_")
    # owner[row name] = (worker name, the variant's name in that worker). A worker "tf@ENV" /
    # "torch@ENV" runs the same variants under extra environment variables; its rows are
    # named "<variant>@ENV".
    owner, skipped, checks, first, extra, names = {}, {}, {}, {}, {}, []
    order = sorted(workers, key=lambda w: (w.split("@")[0] != "tf", "@" in w, w))  # TF first
    for w in order:  # TF first: it writes the net, weights and inputs for PyTorch
        fw, suffix = w.split("@")[0], w[len(w.split("@")[0]) :]
        vs = wanted.get(fw) or []
        if not vs:
            continue
        names += [v + suffix for v in vs]
        rep = workers[w].request(
            {
                "cmd": "setup",
                "case": case,
                "variants": vs,
                "workdir": workdir,
                "cpu_flags": cpu_flags,
                "tag": w,
            }
        )
        if "error" in rep:
            skipped.update({v + suffix: f"setup failed: {rep['error']}" for v in vs})
            log(rep.get("traceback", ""))
            continue
        skipped.update({v + suffix: why for v, why in rep["skipped"].items()})
        first.update({v + suffix: t for v, t in rep["first_call_s"].items()})
        owner.update({v + suffix: (w, v) for v in rep["ready"]})
        checks.update({v + suffix: c for v, c in _load_checks(rep["checks_file"]).items()})
        extra.update(
            {k: v for k, v in rep.items() if k not in ("ready", "skipped", "first_call_s", "checks_file")}
        )
    ready = [v for v in names if v in owner]

    # Same function: every variant against ebm_zoo fp32 on the same input and weights.
    ref = checks.get(bench.OURS, {})
    check_errs = {}
    for v in ready:
        common = {k: a for k, a in ref.items() if k in checks.get(v, {})}
        if v != bench.OURS and common:
            check_errs[v] = bench.compare_outputs(common, {k: checks[v][k] for k in common})

    timing = bench.run_interleaved(
        lambda v: workers[owner[v][0]].request({"cmd": "run", "variant": owner[v][1]}), ready, rounds
    )
    rows = []
    for v in ready:
        err = check_errs.get(v)
        row_extra = {"worker": owner[v][0], "first_call_s": first.get(v)}
        if err is not None:
            row_extra["check_err"] = err["max"]
            row_extra["same_output"] = bool(err["max"] <= bench.check_tolerance(v))
        if v != bench.OURS and bench.OURS in timing["samples"]:
            row_extra["paired_ratio_ours_faster"] = bench.paired_ratio(
                timing["samples"][bench.OURS], timing["samples"][v]
            )
        rows.append(
            bench.make_row(
                v,
                timing["samples"][v],
                task=case["task"],
                steps=case["steps"],
                step_flops=extra.get("step_flops"),
                matmul_gflops=matmul_gflops,
                extra=row_extra,
            )
        )
    for v, why in skipped.items():
        rows.append({"variant": v, "skipped": why})
    summary = bench.ratio_summary(rows)
    bf16 = {r["variant"]: r for r in rows if "rate" in r and "bf16" in r["variant"]}
    if "ebm_zoo_bf16" in bf16 and "torch_bf16" in bf16:
        summary["bf16_vs_torch_bf16"] = bf16["ebm_zoo_bf16"]["rate"] / bf16["torch_bf16"]["rate"]
    record = {
        **{k: case[k] for k in ("suite", "case", "task", "batch", "steps")},
        "net": case.get("net"),
        "config": case.get("model"),
        "order": timing["order"],
        "rows": rows,
        "ratio": summary,
        "checks": check_errs,
        "loadavg_end": list(os.getloadavg()),
        **extra,
    }
    log(
        f"\n== {case['case']}  (batch {case['batch']}, {case['steps']} steps per call, {rounds} rounds, "
        f"interleaved; load {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    for row in rows:
        log(bench.format_row(row))
    log(bench.format_ratio(summary))
    if "bf16_vs_torch_bf16" in summary:
        log(f"  ratio ebm_zoo_bf16 / torch_bf16: {summary['bf16_vs_torch_bf16']:.3f}")
    return record


def run(
    suites,
    *,
    quick: bool,
    rounds: int,
    only=None,
    case_filter=None,
    command=None,
    log=print,
    tf_env: dict | None = None,
    torch_env: dict | None = None,
    sampler_steps: int | None = None,
    malloc: str = "tuned",
) -> dict:
    """A whole bench run: machine, matmul rate, every case of every suite. Returns the report.

    tf_env / torch_env: extra environment variables for a *second* TF / PyTorch worker, whose
    rows are named "<variant>@KEY=VALUE" (A/B of thread or oneDNN settings inside one
    interleaved run; the default rows keep the libraries' defaults).
    sampler_steps: T per call of every sampler case instead of the suite's (cheaper A/Bs at the
    full batch; every variant still runs the same T).
    malloc: "tuned" runs the PyTorch workers with `bench.MALLOC_ENV` (glibc keeps freed memory
    instead of page-faulting it back in on every call); "jemalloc" with the system's jemalloc
    preloaded (`bench.malloc_env`); the TF workers keep glibc's defaults, which measured faster
    for TF. "default": every worker with the environment as it is.
    """
    base_env = bench.malloc_env(malloc)
    info = bench.machine_info()
    report = {
        "schema": bench.SCHEMA,
        "command": command or " ".join(sys.argv),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "rounds": rounds,
        "sampler_steps": sampler_steps,
        "malloc": {"mode": malloc, "env": base_env, "workers": "torch"},
        "machine": info,
        "cases": [],
    }
    cpu = info["cpu"]
    log(
        f"machine: {cpu['model_name']}, {cpu['cores']} cores, flags "
        f"{' '.join(f for f, on in cpu['flags'].items() if on)}; versions {info['versions']}; "
        f"load {info['loadavg_start']}"
    )
    logdir = tempfile.mkdtemp(prefix="ebm_zoo_bench_logs_")
    log(
        "malloc: "
        + (", ".join(f"{k}={v}" for k, v in base_env.items()) if base_env else "glibc defaults")
        + " (PyTorch workers; TF workers: glibc defaults)"
    )
    fw_env = {"tf": {}, "torch": base_env}
    workers = {fw: Worker(fw, logdir, env=fw_env[fw]) for fw in ("tf", "torch")}
    for fw, env in (("tf", tf_env), ("torch", torch_env)):
        if env:
            name = fw + "@" + ",".join(f"{k}={v}" for k, v in env.items())
            workers[name] = Worker(fw, logdir, env={**fw_env[fw], **env}, name=name)
    report["extra_env"] = {"tf": tf_env or {}, "torch": torch_env or {}}
    try:
        info["threads"] = {name: w.request({"cmd": "info"}) for name, w in workers.items()}
        log(
            "threads: "
            + "; ".join(
                f"{n}: "
                + ", ".join(
                    f"{k}={v}"
                    for k, v in t.items()
                    if k
                    in (
                        "intra_op_parallelism_threads",
                        "inter_op_parallelism_threads",
                        "num_threads",
                        "num_interop_threads",
                    )
                )
                for n, t in info["threads"].items()
            )
        )
        sizes = (256, 512) if quick else (512, 1024, 1536, 2048)
        report["matmul"] = workers["tf"].request({"cmd": "matmul", "sizes": list(sizes)})
        mm = report["matmul"]
        log(
            "matmul (TF fp32, same run): "
            + ", ".join(f"{n}²: {g:.1f}" for n, g in zip(mm["sizes"], mm["gflops"]))
            + f" GFLOP/s; median {mm['median_gflops']:.1f}"
        )
        for name in suites:
            module = importlib.import_module(bench.SUITES[name])
            for case in module.cases(quick):
                if case_filter and not any(s in case["case"] for s in case_filter):
                    continue
                if sampler_steps and case["task"] == "sampler":
                    case = dict(case, steps=int(sampler_steps))
                report["cases"].append(
                    run_case(
                        case,
                        workers,
                        rounds=rounds,
                        matmul_gflops=mm["median_gflops"],
                        cpu_flags=cpu["flags"],
                        only=only,
                        log=log,
                    )
                )
        # The roofline again at the end: the median over both measurements of every size.
        end = workers["tf"].request({"cmd": "matmul", "sizes": list(sizes)})
        report["matmul"] = {
            "sizes": mm["sizes"],
            "gflops_start": mm["gflops"],
            "gflops_end": end["gflops"],
            "median_gflops": bench.median(mm["gflops"] + end["gflops"]),
        }
    finally:
        for w in workers.values():
            w.close()
    finalize(report)
    log(summary_table(report))
    report["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report["loadavg_end"] = list(os.getloadavg())
    bench.validate_report(report)
    return report


def finalize(report: dict) -> None:
    """Recomputes every row's fraction of the matmul rate with the run's final median."""
    mm = report["matmul"]["median_gflops"]
    for case in report["cases"]:
        for row in case["rows"]:
            if "gflops" in row:
                row["frac_of_matmul"] = row["gflops"] / mm


def env_label(env: dict) -> str:
    """A short name for a second worker's extra environment, the suffix of its rows in summaries:
    the preloaded allocator ("jemalloc", "tcmalloc") or the KEY=VALUE list itself when short."""
    preload = str(env.get("LD_PRELOAD", ""))
    for lib in ("jemalloc", "tcmalloc"):
        if lib in preload:
            return lib
    text = ",".join(f"{k}={v}" for k, v in env.items())
    return text if len(text) <= 40 else "env2"


def _variant_labels(report: dict) -> dict:
    """{"@KEY=VALUE,...": "@label"} for the second workers of a run (see `env_label`)."""
    out = {}
    for env in (report.get("extra_env") or {}).values():
        if env:
            out["@" + ",".join(f"{k}={v}" for k, v in env.items())] = "@" + env_label(env)
    return out


def short_variant(name: str, labels: dict) -> str:
    """A row's variant name with its second worker's environment shortened (`env_label`)."""
    base, at, suffix = name.partition("@")
    return base + labels.get(at + suffix, at + suffix) if at else name


def summary_table(report: dict) -> str:
    """One line per case: ebm_zoo fp32 and bf16, best PyTorch fp32, PyTorch bf16, TorchEBM,
    the ratio against the best competitor (always), and load averages. With a second PyTorch
    worker (`--torch_env`), each PyTorch column is the faster of the variant's two rows and names
    it ("torch_cl_fp32@jemalloc")."""
    end_load = report.get("loadavg_end") or os.getloadavg()
    labels = _variant_labels(report)
    lines = [
        f"\nSummary (matmul median {report['matmul']['median_gflops']:.1f} GFLOP/s; "
        f"load at end {' '.join(f'{x:.2f}' for x in end_load)})",
        "| case | ebm_zoo fp32 | ebm_zoo bf16 | best torch fp32 | torch bf16 | TorchEBM | ours / best competitor "
        "| ours / TorchEBM | of matmul | load1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        by = {r["variant"]: r for r in case["rows"] if "rate" in r}

        def best(pred, by=by):
            names = [v for v in by if pred(v.partition("@")[0]) and by[v].get("same_output", True)]
            return max(names, key=lambda v: by[v]["rate"], default=None)

        def fmt(v, by=by, named=False):
            if v not in by:
                return "—"
            text = f"{by[v]['rate']:.4g} {by[v]['unit']}"
            return f"{text} ({short_variant(v, labels)})" if named else text

        best_t = best(lambda b: b.startswith("torch_") and "bf16" not in b)
        bf16_t = best(lambda b: b == "torch_bf16")
        ebm_t = best(lambda b: b == "torchebm_fp32")
        ratio = case["ratio"]
        vs_best = (
            "n/a"
            if ratio["vs_best"] is None
            else f"{ratio['vs_best']:.3f} ({short_variant(ratio['best_competitor'], labels)})"
        )
        ours = by.get(bench.OURS, {})
        vs_ebm = ours["rate"] / by[ebm_t]["rate"] if ebm_t and "rate" in ours else None
        frac = f"{ours['frac_of_matmul']:.2f}" if "frac_of_matmul" in ours else "—"
        loads = [r["load1"] for r in case["rows"] if "load1" in r]
        load = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—"
        two = len(labels) > 0
        lines.append(
            f"| {case['case']} | {fmt(bench.OURS)} | {fmt('ebm_zoo_bf16')} | "
            f"{fmt(best_t, named=True)} | {fmt(bf16_t, named=two)} | {fmt(ebm_t, named=two)} | "
            f"{vs_best} | {'n/a' if vs_ebm is None else f'{vs_ebm:.3f}'} | {frac} | {load} |"
        )
    return "\n".join(lines)


#: Where `tools/bench.py --render=JSON` writes a run's summary in a Markdown file.
SUMMARY_MARKERS = ("<!-- bench_summary:begin -->", "<!-- bench_summary:end -->")


def _malloc_text(report: dict) -> str:
    m = report.get("malloc")
    if not m:
        return "glibc malloc defaults (the run predates `--malloc`)"
    if m["mode"] == "default":
        return "glibc malloc defaults (`--malloc=default`)"
    if m["mode"] == "jemalloc":
        return (
            f"PyTorch workers with jemalloc ({m['env'].get('LD_PRELOAD')}, "
            f"MALLOC_CONF={m['env'].get('MALLOC_CONF')}; TF workers: glibc defaults)"
        )
    return (
        "PyTorch workers with glibc malloc "
        + ", ".join(f"{k}={v}" for k, v in m["env"].items())
        + " (TF workers: glibc defaults)"
    )


def _extra_env_text(report: dict) -> str:
    """ "; a second PyTorch worker (rows @jemalloc): LD_PRELOAD=…" for runs with --tf_env/--torch_env."""
    parts = []
    for fw, env in sorted((report.get("extra_env") or {}).items()):
        if env:
            kv = ", ".join(f"{k}={v}" for k, v in env.items())
            who = "TF" if fw == "tf" else "PyTorch"
            parts.append(f"; a second {who} worker (rows @{env_label(env)}) also with {kv}")
    return "".join(parts)


def summary_block(report: dict, source: str) -> str:
    """The summary table of a saved run with the machine and command it came from (Markdown)."""
    m = report.get("machine", {})
    cpu = m.get("cpu") or {}
    flags_ = ", ".join(k for k, v in sorted((cpu.get("flags") or {}).items()) if v) or "none listed"
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
    start = " ".join(f"{x:.2f}" for x in m.get("loadavg_start") or [])
    head = (
        f"From `{source}` (`{report.get('command', '?')}`, {report.get('started_utc', '?')} – "
        f"{report.get('finished_utc', '?')}): {cpu.get('model_name', '?')}, {cpu.get('cores', '?')} "
        f"cores, CPU flags {flags_}; {m.get('mem_gib', '?')} GiB; {versions}; load average at start "
        f"{start or '?'}; {_malloc_text(report)}{_extra_env_text(report)}. Regenerate this block with "
        f"`python tools/bench.py --render={source}`."
    )
    title, *table = summary_table(report).lstrip("\n").split("\n")
    return f"{head}\n\n{title}:\n\n" + "\n".join(table)
