"""Generated doc figures stay in step with the repository (tools/experiments/preset_table.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools/experiments/preset_table.py"


def _tool(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def test_preset_table_and_readme_weights_total_are_up_to_date():
    r = _tool("--check")
    assert r.returncode == 0, r.stderr[-1000:] + r.stdout[-500:]


def test_check_catches_a_stale_table_and_the_tool_rewrites_only_between_markers(tmp_path):
    doc, readme = tmp_path / "zoo.md", tmp_path / "README.md"
    doc.write_text("a\n<!-- preset_table:begin -->\n| old |\n<!-- preset_table:end -->\nb\n")
    readme.write_text("weights <!-- weights_mib:begin -->99 MiB<!-- weights_mib:end -->; more\n")
    r = _tool("--check", f"--doc={doc}", f"--readme={readme}")
    assert r.returncode != 0 and "Out of date" in r.stderr and "Traceback" not in r.stderr
    assert _tool(f"--doc={doc}", f"--readme={readme}").returncode == 0
    text = doc.read_text()
    assert text.startswith("a\n") and text.endswith("b\n") and "| old |" not in text
    assert "| `descriptor_brick` | descriptor |" in text and "Shipped weights in total:" in text
    total = sum(p.stat().st_size for p in (REPO / "ebm_zoo/presets/weights").rglob("model.weights.h5"))
    assert f"{total / 2**20:.1f} MiB" in readme.read_text() and readme.read_text().endswith("; more\n")
    assert _tool("--check", f"--doc={doc}", f"--readme={readme}").returncode == 0
    doc.write_text("no markers\n")
    r = _tool(f"--doc={doc}", f"--readme={readme}")
    assert r.returncode != 0 and "preset_table:begin" in r.stderr
