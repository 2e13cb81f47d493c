"""Bad flags and bad values for every tool: ONE line `error: ...` on stderr, a non-zero exit
status, no traceback (unless --verbose / --debug), and nothing written or deleted.

Most cases fail in flag parsing or in the tools' TF-free flag checks (~0.5 s each); a few run a
shipped preset for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = ["train", "sample", "export", "eval", "inpaint", "bench", "train_feature_extractor"]


def run_tool(tool, *args, cwd=None, env=None, timeout=600):
    full_env = dict(os.environ, EBM_ZOO_OFFLINE="1", PYTHONPATH=str(REPO))
    full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tool must quiet TF by itself
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / f"{tool}.py"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(out, fragment, code=None):
    err = out.stderr.strip()
    assert out.returncode != 0, (out.stdout, out.stderr)
    if code is not None:
        assert out.returncode == code, (out.returncode, err)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]


@pytest.fixture
def afile(tmp_path):
    f = tmp_path / "afile"
    f.write_text("not a directory")
    return f


@pytest.fixture
def env_home(tmp_path):
    return {"EBM_ZOO_HOME": str(tmp_path / "home")}


# --------------------------------------------------------------------------------------------
# Flag parsing (exit status 2).
FLAG_CASES = [
    ("sample", ["--num_samples=x"], "invalid literal for int()"),
    ("sample", ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    ("sample", ["--seed=1.5"], "flag --seed=1.5"),
    ("train", ["--strategy=bogus"], "value should be one of <default|mirrored|multiworker>"),
    ("train", ["--train_steps=0"], "flag --train_steps=0"),
    ("train", ["--train_steps=-3"], "flag --train_steps=-3"),
    ("train", ["--train_steps=2.5"], "flag --train_steps=2.5"),
    ("train", ["--config.model.step_size"], "has no value"),
    ("train", ["--num_cpu_devices=-1"], "flag --num_cpu_devices=-1"),
    ("train", ["--verbose=7"], "flag --verbose=7"),
    ("train", ["--model"], "Missing value for flag --model"),
    ("eval", ["--num_samples=abc"], "invalid literal for int()"),
    ("eval", ["--record=maybe"], "flag --record=maybe"),
    ("export", ["--overwrite=perhaps"], "flag --overwrite=perhaps"),
    ("inpaint", ["--box_fraction=big"], "flag --box_fraction=big"),
    ("inpaint", ["--num_images"], "Missing value for flag --num_images"),
]


@pytest.mark.parametrize(
    "tool, args, fragment", FLAG_CASES, ids=[f"{t}:{' '.join(a)}" for t, a, _ in FLAG_CASES]
)
def test_bad_flag_is_one_line(tool, args, fragment, tmp_path):
    out = run_tool(tool, *args, cwd=tmp_path)
    assert_one_line_error(out, fragment, code=2)
    assert os.listdir(tmp_path) == []  # nothing written


# --------------------------------------------------------------------------------------------
# Bad values caught by the tools' checks (exit status 1), before TensorFlow is imported.
def value_cases(afile):
    return [
        ("sample", ["--handle=descriptor_brick", "--num_samples=0"], "`--num_samples` must be >= 1, got 0"),
        ("sample", ["--preset=descriptor_brick", "--num_samples=-1"], "`--num_samples` must be >= 1, got -1"),
        ("sample", ["--handle=descriptor_brick", "--seed=-1"], "`--seed` must lie in [0, 2**62)"),
        ("sample", ["--handle=descriptor_brick", "--num_steps=-5"], "`--num_steps` must be >= 0"),
        ("sample", [], "Give --handle"),
        ("sample", ["--handle=a", "--savedmodel=b"], "not both"),
        (
            "sample",
            ["--handle=descriptor_brick", f"--out={afile}/x.png"],
            "is an existing file, not a directory",
        ),
        ("eval", ["--preset=descriptor_brick", "--num_samples=0"], "`--num_samples` must be >= 1, got 0"),
        ("eval", ["--preset=descriptor_brick", "--num_samples=-1"], "`--num_samples` must be >= 1, got -1"),
        ("eval", ["--preset=descriptor_brick", "--batch_size=0"], "`--batch_size` must be >= 1"),
        ("eval", ["--preset=descriptor_brick", "--num_reference=0"], "`--num_reference` must be >= 1"),
        ("eval", [], "exactly one of --preset, --workdir or --savedmodel"),
        ("eval", ["--preset=a", "--workdir=b"], "exactly one of"),
        ("eval", ["--preset=descriptor_brick", f"--out={afile}"], "is an existing file"),
        ("train", [f"--workdir={afile}"], "is an existing file, not a directory"),
        ("train", [f"--workdir={afile}/run"], "is a file, not a directory"),
        ("train", ["--config.model.image_size=-16"], "must be a positive int"),
        ("train", ["--config.data.batch_size=0"], "must be a positive int"),
        (
            "train",
            ["--model=ggcn", "--config.model.lr=1e-3"],
            "--config.model.energy_lr, --config.model.gen_lr",
        ),
        ("train", ["--config.model.nope=1"], "valid keys"),
        ("train", ["--model=no_such_model"], "valid names: descriptor"),
        ("train", ["--dataset="], "--dataset is empty"),
        ("export", ["--workdir=runs/x", "--preset=../../x"], "never a path"),
        ("export", ["--workdir=runs/x", "--preset=/abs/x"], "never a path"),
        ("export", ["--workdir=runs/x", "--preset=a/b"], "never a path"),
        ("export", ["--workdir=runs/x", f"--out={afile}/1"], "is a file, not a directory"),
        ("export", ["--workdir=runs/x", f"--out={afile}"], "is a file, not a directory"),
        ("export", ["--handle=descriptor_brick"], "Nothing to do"),
        ("export", ["--handle=descriptor_brick", "--preset=x"], "--preset needs --workdir"),
        ("export", ["--workdir=a", "--handle=b", "--out=c"], "exactly one of --workdir"),
        ("inpaint", ["--model=a", "--workdir=b"], "exactly one of --model"),
        ("inpaint", [], "exactly one of --model"),
        ("inpaint", ["--workdir=runs/x", "--mask=centre"], "Unknown --masks kind 'centre'"),
        ("inpaint", ["--model=x", "--num_images=0"], "`--num_images` must be >= 1"),
        ("inpaint", ["--model=x", "--box_fraction=0"], "`--box_fraction` must be > 0"),
        ("inpaint", ["--model=x", "--drop_rate=1.5"], "`--drop_rate` must be <= 1"),
        ("inpaint", ["--model=x", f"--out={afile}/o.png"], "is an existing file, not a directory"),
    ]


VALUE_IDS = [f"{t}:{' '.join(a)[:40]}" for t, a, _ in value_cases(Path("F"))]


@pytest.mark.parametrize("index", range(len(VALUE_IDS)), ids=VALUE_IDS)
def test_bad_value_is_one_line(index, afile, tmp_path, env_home):
    tool, args, fragment = value_cases(afile)[index]
    before = sorted(os.listdir(tmp_path))
    out = run_tool(tool, *args, cwd=tmp_path, env=env_home)
    assert_one_line_error(out, fragment, code=1)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written (no runs/, samples/, home/)


def test_export_preset_path_does_not_touch_the_existing_folder(tmp_path, env_home):
    """The data-loss case of the probe: --preset=../../<dir> used to rename and delete <dir>."""
    home = Path(env_home["EBM_ZOO_HOME"])
    (home / "presets").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    for name in ["../../victim", str(victim)]:
        out = run_tool("export", "--workdir=whatever", f"--preset={name}", cwd=tmp_path, env=env_home)
        assert_one_line_error(out, "never a path", code=1)
        assert (victim / "keep.txt").read_text() == "precious"
        assert sorted(os.listdir(tmp_path)) == ["home", "victim"]


def test_mask_kinds_of_inpaint_tool_match_the_model():
    from ebm_zoo.models.multigrid.multigrid_model import MASK_KINDS

    text = (REPO / "tools" / "inpaint.py").read_text()
    assert "MASK_KINDS = " + repr(MASK_KINDS).replace("'", '"') in text


# --------------------------------------------------------------------------------------------
# --help, --verbose, quiet start, and a few real runs.
@pytest.mark.parametrize("tool", TOOLS)
def test_help_exits_zero_and_lists_the_debug_flag(tool):
    out = run_tool(tool, "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--debug" in out.stdout or "--debug" in out.stderr


def test_unknown_preset_is_one_line_and_verbose_shows_the_traceback(tmp_path):
    out = run_tool("sample", "--handle=descriptor_brik", "--num_samples=1", cwd=tmp_path)
    assert_one_line_error(out, "Did you mean 'descriptor_brick'", code=1)
    loud = run_tool("sample", "--handle=descriptor_brik", "--num_samples=1", "--verbose", cwd=tmp_path)
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "EbmZooError" in loud.stderr


def test_successful_run_prints_no_tensorflow_noise(tmp_path):
    out = run_tool("sample", "--preset=descriptor_brick", "--num_samples=1", "--out=s.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr  # no oneDNN / CUDA / absl lines
    assert out.stdout.startswith("Wrote") and (tmp_path / "s.png").is_file()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")] == []


def test_inpaint_on_a_model_without_inpaint_is_one_line(tmp_path):
    out = run_tool("inpaint", "--model=descriptor_brick", "--dataset=textures/brick", cwd=tmp_path)
    assert_one_line_error(out, "has no `inpaint`", code=1)


def test_bench_unknown_suite_is_one_line(tmp_path):
    out = run_tool("bench", "--suites=nope", cwd=tmp_path)
    assert_one_line_error(out, "Unknown suite(s) ['nope']", code=1)


@pytest.mark.slow
def test_export_refuses_to_replace_a_preset_without_overwrite(tmp_path, env_home):
    import json

    import ebm_zoo

    model = ebm_zoo.load("descriptor_brick")
    wd = tmp_path / "run"
    wd.mkdir()
    (wd / "model_config.json").write_text(
        json.dumps({"class_name": "Descriptor", "family": "descriptor", "config": model.get_config()})
    )
    model.save_weights(str(wd / "model.weights.h5"))
    (wd / "config.json").write_text(json.dumps({"data": {"name": "textures/brick"}}))
    first = run_tool("export", f"--workdir={wd}", "--preset=mine", cwd=tmp_path, env=env_home)
    assert first.returncode == 0, first.stderr
    dest = Path(env_home["EBM_ZOO_HOME"]) / "presets" / "mine"
    (dest / "note.txt").write_text("mine")
    again = run_tool("export", f"--workdir={wd}", "--preset=mine", cwd=tmp_path, env=env_home)
    assert_one_line_error(again, "--overwrite", code=1)
    assert (dest / "note.txt").read_text() == "mine"
    forced = run_tool("export", f"--workdir={wd}", "--preset=mine", "--overwrite", cwd=tmp_path, env=env_home)
    assert forced.returncode == 0, forced.stderr
    assert not (dest / "note.txt").exists() and (dest / "metadata.json").is_file()
