"""tools/experiments/equal_budget.py: rows read from tools/eval.py reports, budgets from the runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools/experiments/equal_budget.py"


def _run(tmp_path: Path, name: str, family: str, timing: dict) -> Path:
    run = tmp_path / "runs" / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": {"family": family}}))
    (run / "timing.json").write_text(json.dumps(timing))
    return run


def _reports(where: Path, fd: float, checkpoint: dict | None = None) -> None:
    where.mkdir(parents=True)
    rep = {
        "fd_mnist": fd,
        "kid_mnist": 1.5,
        "classifier_score": 6.5,
        "effective_classes": 9.1,
        "precision": 0.4,
        "recall": 0.5,
        "sampling_cpu_seconds_per_100": 2.0,
        "num_samples": 5000,
    }
    if checkpoint:
        rep["checkpoint"] = checkpoint
    (where / "report.json").write_text(json.dumps(rep))
    auroc = {"noise": 1.0, "constant": 0.99, "inverted": 0.7, "textures": 1.0, "faces": 0.98, "photos": 0.97}
    (where / "ood.json").write_text(json.dumps({"auroc": auroc}))


def _tool(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_rows_carry_each_runs_budget_and_the_doc_table_is_replaced(tmp_path):
    em = _run(
        tmp_path,
        "em",
        "energy_matching",
        {
            "step": 9800,
            "train_wall_seconds": 3600.0,
            "train_cpu_seconds": 3400.0,
            "complete": True,
        },
    )
    vapo = _run(
        tmp_path, "vapo", "vapo", {"step": 2500, "train_wall_seconds": 9000.0, "train_cpu_seconds": 9100.0}
    )
    reports = tmp_path / "reports"
    _reports(reports / "em", 120.0)
    _reports(
        reports / "vapo_ckpt1000",
        150.0,
        {"step": 1000, "train_cpu_seconds": 3350.5, "train_wall_seconds": 2000.0},
    )
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- equal_budget:begin -->\nold\n<!-- equal_budget:end -->\nend\n")
    out = tmp_path / "t.json"
    r = _tool(f"--rows={em},{vapo}@1000", f"--reports={reports}", f"--out_json={out}", f"--doc={doc}")
    assert r.returncode == 0, r.stderr[-1500:]
    rows = json.loads(out.read_text())["rows"]
    assert [x["row"] for x in rows] == ["em", "vapo@1000"]
    assert rows[0]["budget"]["train_cpu_seconds"] == 3400.0 and rows[0]["mnist"]["fd_mnist"] == 120.0
    assert rows[1]["budget"]["train_cpu_seconds"] == 3350.5 and rows[1]["budget"]["step"] == 1000
    assert rows[1]["family"] == "vapo" and rows[1]["ood_auroc"]["inverted"] == 0.7
    text = doc.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| `vapo@1000` (vapo, step 1000) | 3,350 (33 min) | 150 |" in text
    assert "| `em` (energy_matching, step 9800) | 3,400 (60 min) | 120 |" in text


def test_a_missing_or_foreign_report_names_the_command_that_writes_it(tmp_path):
    em = _run(
        tmp_path, "em", "energy_matching", {"step": 10, "train_wall_seconds": 1.0, "train_cpu_seconds": 1.0}
    )
    reports = tmp_path / "reports"
    r = _tool(f"--rows={em}@500", f"--reports={reports}", "--doc=")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"python tools/eval.py --workdir={em} --checkpoint=500 --protocol=mnist" in r.stderr
    _reports(reports / "em_ckpt500", 99.0, {"step": 400})
    r = _tool(f"--rows={em}@500", f"--reports={reports}", "--doc=")
    assert r.returncode != 0 and "not the report of checkpoint 500" in r.stderr
    for bad in (f"{em}@0", f"{em}@x", str(tmp_path / "nowhere")):
        r = _tool(f"--rows={bad}", f"--reports={reports}", "--doc=")
        assert r.returncode != 0 and "--rows entry" in r.stderr and "Traceback" not in r.stderr


def test_a_row_without_its_ood_report_keeps_its_figures_and_names_the_ood_command(tmp_path):
    em = _run(
        tmp_path, "em", "energy_matching", {"step": 10, "train_wall_seconds": 60.0, "train_cpu_seconds": 90.0}
    )
    reports = tmp_path / "reports"
    _reports(reports / "em", 77.0)
    (reports / "em" / "ood.json").unlink()
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- equal_budget:begin -->\n<!-- equal_budget:end -->\n")
    r = _tool(f"--rows={em}", f"--reports={reports}", f"--out_json={tmp_path / 't.json'}", f"--doc={doc}")
    assert r.returncode == 0, r.stderr[-1500:]
    text = doc.read_text()
    assert "| 77 |" in text and "| – / – / – / – / – / – |" in text
    assert f"OOD not measured for `em` (write it with `python tools/eval.py --workdir={em} " in text
    assert "--protocol=mnist_ood" in text
