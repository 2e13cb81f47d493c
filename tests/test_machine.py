"""ebm_zoo.utils.machine: the CPU description every timing figure carries."""

import os

from ebm_zoo.utils import machine


def test_cpu_name_is_proc_cpuinfo_model_name(tmp_path, monkeypatch):
    fake = tmp_path / "cpuinfo"
    fake.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n"
    )
    real_open = open

    def fake_open(path, *a, **k):
        return real_open(fake if path == "/proc/cpuinfo" else path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    assert machine.cpu_name() == "Test CPU 9000"  # the first processor's, not the last
    monkeypatch.setattr(machine.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("no lscpu")))
    desc = machine.cpu_description()
    assert desc["model_name"] == "Test CPU 9000" and desc["cores"] == os.cpu_count()
    assert desc["flags"]["avx512_bf16"] and desc["flags"]["avx2"] and not desc["flags"]["amx_bf16"]
    assert machine.cpu_flags() == {"fpu", "avx2", "avx512f", "avx512_bf16"}  # the first processor's


def test_summary_without_proc_falls_back_to_the_platform(monkeypatch):
    def no_proc(path, *a, **k):
        raise OSError(f"no {path}")

    monkeypatch.setattr("builtins.open", no_proc)
    s = machine.summary()
    assert s["cpu"] and s["loadavg"] is None and s["cpus"] == os.cpu_count()
    assert machine.cpu_flags() == set()
