"""MultiWorkerMirroredStrategy with two real worker processes (gRPC on localhost).

Each worker trains the same tiny model for 2 steps of global batch 8 (worker i takes its rows of
every global batch); the weights after training must equal those of a one-replica run in a
third process. This checks, across processes, what tests on two logical CPUs check in one:
global-batch noise sliced per replica, the cross-replica loss statistics and gradient clipping,
and the EMA merge.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, "tests", "multiworker_worker.py")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(tf_config: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    # Two intra-op threads in every process, whatever the machine's CPU count or affinity: the
    # one-process run then splits its batch reductions like the two workers do, so the weights
    # agree to rounding. (With one thread it sums the batch in another order, and Adam's first
    # step, ≈ lr·sign(g), turns rounding in near-zero gradient components into O(lr) steps.)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=REPO,
        TF_NUM_INTRAOP_THREADS="2",
        TF_NUM_INTEROP_THREADS="2",
    )
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _launch(tmp_path, args: list[str]) -> tuple:
    """Runs WORKER once without TF_CONFIG and as 2 workers of one cluster, concurrently;
    returns (the single process's npz, [the workers' npz]). "{role}" in args becomes "single"
    or "multi" (both workers get the same value)."""
    ref = tmp_path / "one.npz"
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    jobs = [(ref, None)] + [
        (out, {"cluster": cluster, "task": {"type": "worker", "index": i}}) for i, out in enumerate(outs)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, str(out), *(a.format(role="multi" if cfg else "single") for a in args)],
            env=_env(cfg),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for out, cfg in jobs
    ]
    for p in procs:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log[-3000:]
    return np.load(ref), [np.load(out) for out in outs]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vapo", "descriptor"])
def test_two_worker_processes_match_one_replica(family, tmp_path):
    one, workers = _launch(tmp_path, [family])
    assert int(one["replicas"]) == 1
    keys = sorted(k for k in one.files if k[0] == "w" and k[1:].isdigit())
    changed = [k for k in keys if not np.allclose(one[k], one["init" + k[1:]])]
    # (zero-initialised residual branches keep some VAPO weights still for the first steps)
    assert len(changed) >= len(keys) // 4, "training hardly moved the weights: a vacuous comparison"
    for got in workers:
        assert int(got["replicas"]) == 2
        for k in keys:
            np.testing.assert_array_equal(got["init" + k[1:]], one["init" + k[1:]])  # same start
            # the tolerances of the in-process 2-replica tests (ring all-reduce changes sum order)
            np.testing.assert_allclose(got[k], one[k], rtol=1e-4, atol=1e-5, err_msg=f"{family} {k}")


@pytest.mark.slow
def test_training_run_on_two_workers(tmp_path):
    """`training.train` with strategy="multiworker": same weights as one process, the chief
    writes the workdir (checkpoints, sample grids, weights), worker 1 only workdir/workers/1."""
    one, workers = _launch(tmp_path, ["run", str(tmp_path / "{role}")])
    chief, other = workers
    assert bool(chief["chief"]) and not bool(other["chief"])
    assert str(other["workdir"]).endswith(os.path.join("workers", "1"))
    keys = sorted(k for k in one.files if k[0] == "w" and k[1:].isdigit())
    for k in keys:
        np.testing.assert_allclose(chief[k], one[k], rtol=1e-4, atol=1e-5, err_msg=k)
        np.testing.assert_allclose(other[k], one[k], rtol=1e-4, atol=1e-5, err_msg=k)
    wd = tmp_path / "multi"  # the workers' shared workdir
    assert sorted(os.listdir(wd / "samples"))[:1] == ["step_000002.png"]
    assert (wd / "model.weights.h5").exists() and (wd / "checkpoints" / "checkpoint").exists()
    scratch = wd / "workers" / "1"
    assert (scratch / "checkpoints" / "checkpoint").exists() and not (scratch / "samples").exists()
