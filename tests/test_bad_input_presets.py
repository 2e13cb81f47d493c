"""Crafted, corrupt and misplaced preset files and run directories: one EbmZooError each, and
nothing outside the preset root is ever written, renamed or deleted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import ebm_zoo
from ebm_zoo import presets
from ebm_zoo.presets import files
from ebm_zoo.utils import atomic
from ebm_zoo.utils.checks import EbmZooError

SHIPPED = Path(files.__file__).resolve().parent / "weights"


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("EBM_ZOO_HOME", str(h))
    return h


def _copy(name, tmp_path) -> Path:
    dest = tmp_path / name
    shutil.copytree(SHIPPED / name, dest)
    return dest


def _reseal(d: Path) -> None:
    """Recomputes metadata.json's sha256 sums, as an attacker crafting a preset would."""
    meta = json.loads((d / "metadata.json").read_text())
    meta["files"] = {n: files.sha256_file(d / n) for n in files.CHECKED_FILES}
    (d / "metadata.json").write_text(json.dumps(meta))


def _edit_config(d: Path, **args) -> None:
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"].update(args)
    (d / "config.json").write_text(json.dumps(cfg))


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def craft_image_size_mismatch(d):
    _edit_config(d, image_size=48)


def craft_image_size_consistent(d):  # ggcn: the generator's dense layer depends on the size
    _edit_config(d, image_size=32)
    meta = json.loads((d / "metadata.json").read_text())
    meta["image_size"] = 32
    (d / "metadata.json").write_text(json.dumps(meta))


def craft_negative_size(d):
    _edit_config(d, image_size=-16)
    meta = json.loads((d / "metadata.json").read_text())
    meta.pop("image_size")
    (d / "metadata.json").write_text(json.dumps(meta))


def craft_string_size(d):
    _edit_config(d, image_size="abc")
    meta = json.loads((d / "metadata.json").read_text())
    meta.pop("image_size")
    (d / "metadata.json").write_text(json.dumps(meta))


def craft_other_family_weights(d):
    shutil.copyfile(SHIPPED / "multigrid_lfw" / "model.weights.h5", d / "model.weights.h5")


def craft_truncated_weights(d):
    data = (d / "model.weights.h5").read_bytes()
    (d / "model.weights.h5").write_bytes(data[: len(data) // 2])


def craft_zero_byte_weights(d):
    (d / "model.weights.h5").write_bytes(b"")


def craft_text_weights(d):
    (d / "model.weights.h5").write_text("not hdf5")


def craft_deep_config(d):
    (d / "config.json").write_text(_deep(200_000))


def craft_deep_nested_argument(d):
    (d / "config.json").write_text('{"class_name": "Descriptor", "config": {"x": ' + _deep(200_000) + "}}")


def craft_config_array(d):
    (d / "config.json").write_text("[1, 2, 3]")


def craft_config_not_json(d):
    (d / "config.json").write_text("{not json")


def craft_config_not_utf8(d):
    (d / "config.json").write_bytes(b"\xff\xfe\x00garbage")


def craft_unknown_argument(d):
    _edit_config(d, no_such_argument=1)


def craft_lambda_argument(d):
    _edit_config(d, activation={"class_name": "__lambda__", "config": {"code": "print(1)"}})


def craft_foreign_class(d):
    cfg = json.loads((d / "config.json").read_text())
    cfg["class_name"] = "Sequential"
    cfg["module"] = "keras"
    (d / "config.json").write_text(json.dumps(cfg))


def craft_import_module(d):
    cfg = json.loads((d / "config.json").read_text())
    cfg["module"] = "os"
    (d / "config.json").write_text(json.dumps(cfg))


CRAFTED = {
    "image_size_mismatch": ("descriptor_brick", craft_image_size_mismatch, "do not belong together"),
    "image_size_consistent": ("ggcn_lfw", craft_image_size_consistent, "cannot be loaded into the GGCN"),
    "negative_size": ("descriptor_brick", craft_negative_size, "must be an int in [1, 4096]"),
    "string_size": ("descriptor_brick", craft_string_size, "must be an int in [1, 4096]"),
    "other_family_weights": ("descriptor_brick", craft_other_family_weights, "belongs to another model"),
    "truncated_weights": ("descriptor_brick", craft_truncated_weights, "truncated/corrupt"),
    "zero_byte_weights": ("descriptor_brick", craft_zero_byte_weights, "is empty (0 bytes"),
    "text_weights": ("descriptor_brick", craft_text_weights, "cannot be loaded"),
    "deep_config": ("descriptor_brick", craft_deep_config, "nested too deeply"),
    "deep_argument": ("descriptor_brick", craft_deep_nested_argument, "nested too deeply"),
    "config_array": ("descriptor_brick", craft_config_array, "must hold a JSON object"),
    "config_not_json": ("descriptor_brick", craft_config_not_json, "is not valid JSON"),
    "config_not_utf8": ("descriptor_brick", craft_config_not_utf8, "not UTF-8"),
    "unknown_argument": ("descriptor_brick", craft_unknown_argument, "cannot build Descriptor"),
    "lambda_argument": ("descriptor_brick", craft_lambda_argument, "serialized object or function"),
    "foreign_class": ("descriptor_brick", craft_foreign_class, "not a registered ebm_zoo model"),
    "import_module": ("descriptor_brick", craft_import_module, "refusing to import another module"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_preset_is_refused(case, tmp_path):
    name, craft, fragment = CRAFTED[case]
    d = _copy(name, tmp_path)
    craft(d)
    _reseal(d)
    with pytest.raises(EbmZooError) as err:
        ebm_zoo.load(str(d))
    assert fragment in str(err.value), str(err.value)


def test_tampered_file_without_reseal_fails_the_checksum(tmp_path):
    d = _copy("descriptor_brick", tmp_path)
    craft_truncated_weights(d)
    with pytest.raises(EbmZooError, match="sha256 mismatch"):
        ebm_zoo.load(str(d))


def test_deep_metadata_is_refused(tmp_path):
    d = _copy("descriptor_brick", tmp_path)
    (d / "metadata.json").write_text(_deep(200_000))
    with pytest.raises(EbmZooError, match="nested too deeply"):
        ebm_zoo.load(str(d))


def test_oversized_json_is_refused(tmp_path):
    d = _copy("descriptor_brick", tmp_path)
    (d / "metadata.json").write_text('{"x": "' + "a" * (files.MAX_JSON_BYTES + 10) + '"}')
    with pytest.raises(EbmZooError, match="more than any ebm_zoo JSON file"):
        ebm_zoo.load(str(d))


# --------------------------------------------------------------------------------------------
# Training workdirs.
def _fake_workdir(tmp_path, name="run") -> Path:
    """A finished run directory made from the shipped descriptor preset (no training needed)."""
    model = ebm_zoo.load("descriptor_brick")
    wd = tmp_path / name
    wd.mkdir()
    (wd / "model_config.json").write_text(
        json.dumps({"class_name": "Descriptor", "family": "descriptor", "config": model.get_config()})
    )
    model.save_weights(str(wd / "model.weights.h5"))
    (wd / "config.json").write_text(json.dumps({"data": {"name": "textures/brick"}, "config_name": "x"}))
    return wd


WORKDIR_CASES = {
    "zero_byte_weights": (lambda wd: (wd / "model.weights.h5").write_bytes(b""), "is empty (0 bytes"),
    "truncated_weights": (
        lambda wd: (wd / "model.weights.h5").write_bytes((wd / "model.weights.h5").read_bytes()[:1000]),
        "cannot be loaded",
    ),
    "missing_weights": (lambda wd: (wd / "model.weights.h5").unlink(), "has not finished"),
    "deep_model_config": (
        lambda wd: (wd / "model_config.json").write_text(_deep(200_000)),
        "nested too deeply",
    ),
    "model_config_array": (lambda wd: (wd / "model_config.json").write_text("[]"), "must hold a JSON object"),
    "deep_run_config": (lambda wd: (wd / "config.json").write_text(_deep(200_000)), "nested too deeply"),
}


@pytest.mark.parametrize("case", list(WORKDIR_CASES))
def test_broken_workdir_is_refused(case, tmp_path):
    wd = _fake_workdir(tmp_path)
    spoil, fragment = WORKDIR_CASES[case]
    spoil(wd)
    with pytest.raises(EbmZooError) as err:
        ebm_zoo.load(str(wd))
    assert fragment in str(err.value), str(err.value)


# --------------------------------------------------------------------------------------------
# Export: a preset name is a name; nothing outside $EBM_ZOO_HOME/presets is touched.
@pytest.mark.parametrize(
    "name",
    ["../../victim", "../victim", "/ABS/victim", "sub/dir", "..", ".", "", "~victim"],
    ids=["dotdot2", "dotdot1", "absolute", "subdir", "parent", "self", "empty", "tilde"],
)
def test_export_preset_name_that_is_a_path_touches_nothing(name, home, tmp_path):
    wd = _fake_workdir(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    name = name.replace("/ABS/victim", str(victim))
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(EbmZooError, match="never a path|must be a string|Give a preset name"):
        presets.export_workdir(wd, name)
    assert (victim / "keep.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == before


def test_export_existing_preset_needs_overwrite(home, tmp_path):
    wd = _fake_workdir(tmp_path)
    first = presets.export_workdir(wd, "mine")
    (first / "note.txt").write_text("user file")
    with pytest.raises(EbmZooError, match="--overwrite"):
        presets.export_workdir(wd, "mine")
    assert (first / "note.txt").read_text() == "user file"  # untouched
    again = presets.export_workdir(wd, "mine", overwrite=True)
    assert again == first and not (first / "note.txt").exists()
    assert ebm_zoo.load(str(again)).family == "descriptor"
    assert [p for p in os.listdir(first.parent) if p.startswith(atomic.TEMP_PREFIX)] == []


def test_export_into_a_file_path_is_refused(home, tmp_path):
    wd = _fake_workdir(tmp_path)
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(EbmZooError, match="is a file, not a directory"):
        presets.export_workdir(wd, out_dir=f / "preset")
    with pytest.raises(EbmZooError, match="is an existing file"):
        presets.export_workdir(wd, out_dir=f)


def test_save_preset_cleans_stale_temporaries_of_dead_writers(tmp_path):
    model = ebm_zoo.load("descriptor_brick")
    stale = tmp_path / f"{atomic.TEMP_PREFIX}999999999-dead.p"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    live = tmp_path / f"{atomic.TEMP_PREFIX}{os.getpid()}-live.q"
    live.mkdir()
    files.save_preset(model, tmp_path / "p", name="p")
    assert not stale.exists() and live.exists()
    assert ebm_zoo.load(str(tmp_path / "p")).family == "descriptor"


def test_atomic_file_keeps_the_old_version_when_the_writer_fails(tmp_path):
    path = tmp_path / "x.json"
    atomic.write_json(path, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic.file(path) as tmp:
            tmp.write_text('{"v": 2')  # half written
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_publish_dir_refuses_to_replace_without_overwrite(tmp_path):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "a").write_text("old")
    tmp = atomic.temp_dir(dest)
    (tmp / "a").write_text("new")
    with pytest.raises(EbmZooError, match="already exists"):
        atomic.publish_dir(tmp, dest)
    assert (dest / "a").read_text() == "old" and not tmp.exists()
    tmp = atomic.temp_dir(dest)
    (tmp / "a").write_text("new")
    atomic.publish_dir(tmp, dest, overwrite=True)
    assert (dest / "a").read_text() == "new" and os.listdir(tmp_path) == ["d"]
