"""The README's two commands stay true: CI runs the README's test command verbatim."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _top_commands():
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    top = text.split("\n---\n", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", top, flags=re.S)


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    commands = _top_commands()
    assert len(commands) == 2, commands
    train, test = commands
    assert "tools/train.py" in train and "pytest" in test
    ci = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()
    assert test.strip() in ci


def test_readme_train_command_names_a_real_config_and_shipped_data():
    from ebm_zoo import config as config_lib
    from ebm_zoo.data import list_datasets

    model = re.search(r"--model=(\w+)", _top_commands()[0]).group(1)
    cfg = config_lib.get_config(model)
    assert cfg.data.name in list_datasets()  # offline, ships with an installed package
