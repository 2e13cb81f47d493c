"""Every `python tools/...` command shown in the README runs against the real flags.

Each command is parsed by its tool with $EBM_ZOO_CHECK_FLAGS_ONLY set: flags, enums, aliases and
(for train.py) the config name and every --config.<key>=<value> override are validated, then the
tool exits without running. The cheap commands also run for real (tiny steps), including the
README's train -> inpaint -> sample path, so a README command cannot drift from the flags.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ebm_zoo.utils import cli

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    """Commands in ```bash blocks and in inline `code` that call tools/*.py."""
    found = []
    for block in re.findall(r"```bash\n(.*?)\n```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                part = part.strip()
                if part.startswith("python tools/"):
                    found.append(part)
    for inline in re.findall(r"`(python tools/[^`]+)`", README):
        if not re.search(r"=[A-Z]+\b", inline):  # placeholders like --preset=NAME
            found.append(inline.strip())
    return list(dict.fromkeys(found))


COMMANDS = readme_commands()


def _run(command: str, cwd, check_only: bool, extra=()):
    argv = shlex.split(command)
    assert argv[0] == "python"
    env = dict(os.environ, EBM_ZOO_OFFLINE="1", PYTHONPATH=str(REPO), EBM_ZOO_HOME=str(Path(cwd) / "home"))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if check_only:
        env[cli.CHECK_FLAGS_ENV] = "1"
    return subprocess.run(
        [sys.executable, str(REPO / argv[1]), *argv[2:], *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_readme_shows_the_tools():
    tools = {c.split()[1] for c in COMMANDS}
    for tool in ["tools/train.py", "tools/export.py", "tools/eval.py", "tools/sample.py", "tools/inpaint.py"]:
        assert tool in tools, COMMANDS
    assert "python tools/inpaint.py --workdir=runs/multigrid_cpu --mask=center" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses_with_the_real_flags(command, tmp_path):
    out = _run(command, tmp_path, check_only=True)
    assert out.returncode == 0 and out.stdout.strip() == "flags ok", (command, out.stderr[-2000:])
    assert os.listdir(tmp_path) == []  # checking wrote nothing


@pytest.mark.slow
def test_readme_train_inpaint_and_sample_commands_run(tmp_path):
    """The README's multigrid train command (2 steps, T = 3), then its inpaint command verbatim on
    that run, then its sample command verbatim."""
    train = "python tools/train.py --model=multigrid"
    assert any(c.startswith(train) for c in COMMANDS)
    out = _run(train, tmp_path, False, extra=["--train_steps=2", "--config.model.num_steps=3", "--verbose=0"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "runs" / "multigrid_cpu" / "model.weights.h5").is_file()

    inpaint = "python tools/inpaint.py --workdir=runs/multigrid_cpu --mask=center"
    out = _run(inpaint, tmp_path, False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == ""
    assert "| center |" in out.stdout and (tmp_path / "inpaint_center.png").is_file()

    sample = next(c for c in COMMANDS if c.startswith("python tools/sample.py"))
    out = _run(sample, tmp_path, False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "samples.png").is_file()
