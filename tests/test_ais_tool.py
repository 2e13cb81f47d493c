"""tools/experiments/ais_mnist.py: a consistent JSON on a tiny setting, and one-line errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "experiments" / "ais_mnist.py"


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, EBM_ZOO_OFFLINE="1", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tool must quiet TF by itself
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or str(ROOT),
        timeout=600,
    )


def test_ais_tool_json_is_consistent(tmp_path):
    out = tmp_path / "ais.json"
    proc = _run(
        "--preset=short_run_digits",
        "--num_temps=2,3",
        "--num_chains=3",
        "--num_test=12",
        "--seed=5",
        f"--out={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    d = rep["num_dims"]
    assert d == 16 * 16 and rep["num_test_images"] == 12 and rep["dataset"] == "digits"
    assert rep["reference"]["kind"] == "UniformReference" and rep["temperature"] == 1.0
    assert rep["settings"] == {
        "sampler": "mala",
        "step_size": 0.02,
        "schedule": "linear",
        "num_chains": 3,
        "seed": 5,
        "steps_per_temp": 1,
    }
    assert [r["num_temps"] for r in rep["runs"]] == [2, 3]
    for r in rep["runs"]:
        # bits/dim from log Z and the mean test energy by the closed formula (bins of 1/256).
        bpd = (rep["test_energy_mean"] + r["log_z"] - d * math.log(1 / 256)) / (d * math.log(2))
        assert r["bits_per_dim"] == pytest.approx(bpd, rel=1e-9)
        assert r["bits_per_dim_se_from_log_z"] == pytest.approx(r["log_z_se"] / (d * math.log(2)))
        assert 1.0 - 1e-9 <= r["weights_ess"] <= 3.0 + 1e-9 and r["log_z_se"] >= 0.0
        assert 0.0 <= r["accept_rate"] <= 1.0 and r["cpu_s"] > 0.0 and len(r["loadavg_after"]) == 3
    # The mean test energy is the model's on the first 12 test images of its dataset.
    import ebm_zoo
    from ebm_zoo.data import load_dataset

    model = ebm_zoo.load("short_run_digits")
    ds = load_dataset(
        "digits", image_size=16, split="test", batch_size=12, shuffle=False, repeat=False, limit=12
    )
    x = next(iter(ds)).numpy()
    assert rep["test_energy_mean"] == pytest.approx(float(np.mean(model.energy(x).numpy())), rel=1e-5)
    assert rep["machine"]["num_cpus"] >= 1 and rep["machine"]["cpu_model"]
    assert rep["command"].startswith("python tools/experiments/ais_mnist.py --preset=short_run_digits")
    assert "Traceback" not in proc.stderr and "Wrote" in proc.stdout


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["--preset=short_run_digits", "--num_temps=0"],
            "error: `--num_temps` must be >= 1, got 0 (a positive whole number).",
        ),
        (
            ["--preset=short_run_digits", "--num_temps=10,ten"],
            "error: --num_temps must list integers >= 1, got 'ten'; e.g. --num_temps=100,400.",
        ),
        (
            ["--preset=short_run_digits", "--temperature=hot"],
            "error: --temperature must be a number > 0 or 'model', got 'hot'.",
        ),
        (
            ["--num_temps=10"],
            "error: --preset is required (a preset name such as descriptor_mnist, or a directory).",
        ),
    ],
)
def test_ais_tool_bad_value_is_one_line(args, line, tmp_path):
    proc = _run(*args, f"--out={tmp_path / 'x.json'}", cwd=str(tmp_path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [line]
    assert os.listdir(tmp_path) == []  # nothing written


@pytest.mark.parametrize(
    "arg, line",
    [
        ("--sampler=nuts", "error: flag --sampler=nuts: value should be one of <mala|hmc> (see --help)"),
        (
            "--num_chains=x",
            "error: flag --num_chains=x: invalid literal for int() with base 10: 'x' (see --help)",
        ),
    ],
)
def test_ais_tool_bad_flag_is_one_line(arg, line, tmp_path):
    proc = _run("--preset=short_run_digits", arg, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [line]
    assert os.listdir(tmp_path) == []
