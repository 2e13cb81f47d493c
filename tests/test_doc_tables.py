"""Generated doc figures stay in step with the repository (tools/experiments/preset_table.py)."""

from __future__ import annotations

import json
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
    assert "| `descriptor_brick` | descriptor |" in text and "Shipped preset files in total:" in text
    dirs = [d for d in (REPO / "ebm_zoo/presets/weights").iterdir() if d.is_dir()]
    total = sum(f.stat().st_size for d in dirs for f in d.iterdir() if f.is_file())  # every preset file
    assert f"{total / 2**20:.1f} MiB" in readme.read_text() and readme.read_text().endswith("; more\n")
    assert _tool("--check", f"--doc={doc}", f"--readme={readme}").returncode == 0
    doc.write_text("no markers\n")
    r = _tool(f"--doc={doc}", f"--readme={readme}")
    assert r.returncode != 0 and "preset_table:begin" in r.stderr


def test_ood_typicality_table_is_rendered_from_its_committed_json(tmp_path):
    """docs/benchmarks.md's typicality table is `tools/experiments/ood_typicality.py --render_only`
    of docs/benchmarks/ood_typicality.json; --check fails on a stale table."""
    tool = REPO / "tools/experiments/ood_typicality.py"

    def run(*args):
        return subprocess.run(
            [sys.executable, str(tool), *args], capture_output=True, text=True, timeout=120, cwd=REPO
        )

    r = run("--render_only", "--check")
    assert r.returncode == 0, r.stderr[-1000:]
    doc = tmp_path / "b.md"
    doc.write_text("a\n<!-- ood_typicality:begin -->\n| old |\n<!-- ood_typicality:end -->\nb\n")
    r = run("--render_only", "--check", f"--doc={doc}")
    assert r.returncode != 0 and "Out of date" in r.stderr and "Traceback" not in r.stderr
    assert run("--render_only", f"--doc={doc}").returncode == 0
    text = doc.read_text()
    assert text.startswith("a\n") and text.endswith("b\n") and "| old |" not in text
    data = json.loads((REPO / "docs/benchmarks/ood_typicality.json").read_text())
    for name, p in data["presets"].items():
        assert f"| `{name}` | {p['typicality']['noise']:.3f} (" in text
    assert run("--render_only", "--check", f"--doc={doc}").returncode == 0
    doc.write_text("no markers\n")
    r = run("--render_only", f"--doc={doc}")
    assert r.returncode != 0 and "ood_typicality:begin" in r.stderr and "Traceback" not in r.stderr
