"""tools/diagnose.py on a shipped preset, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "EBM_ZOO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "diagnose.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=600,
    )


@pytest.mark.slow
def test_diagnose_writes_report_and_figure(tmp_path):
    out = tmp_path / "srd"
    proc = _run(
        "--handle=short_run_digits",
        "--sampler=hmc",
        "--num_leapfrog_steps=2",
        "--num_chains=3",
        "--num_steps=24",
        "--burn_in=8",
        "--num_segments=2",
        f"--out={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "srd.json").read_text())
    assert report["handle"] == "short_run_digits" and report["sampler"]["name"] == "hmc"
    assert report["num_chains"] == 3 and report["energy"]["draws"] == 16
    assert len(report["energy"]["ess_per_chain"]) == 3 and len(report["acceptance"]["per_chain"]) == 3
    assert 0.0 <= report["acceptance"]["mean"] <= 1.0
    assert report["sampler"]["bounds"] == [0.0, 1.0] and report["sampler"]["adapt_steps"] == 8
    img = np.asarray(Image.open(tmp_path / "srd.png"))
    assert img.shape[0] > 600 and img.std() > 10  # panels and a strip were drawn
    assert "split-Rhat" in proc.stdout


def _error_lines(proc) -> list[str]:
    """stderr lines of ours (TensorFlow's C++ start-up logging goes to stderr too)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]


@pytest.mark.slow
def test_diagnose_errors_are_one_line():
    proc = _run("--handle=short_run_digits", "--temperature=hot")
    assert proc.returncode == 1
    assert _error_lines(proc) == ["error: --temperature must be a number > 0 or 'model', got 'hot'."]
    proc = _run("--handle=short_run_digits", "--num_chains=1")
    assert proc.returncode == 1
    assert _error_lines(proc) == ["error: `--num_chains` must be >= 2, got 1."]
