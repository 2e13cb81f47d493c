"""The machine a figure was measured on: CPU model, cores, SIMD flags and load (Linux /proc, lscpu).

Every timing figure of the project names its machine with these helpers, so reports written on
different CPUs (the CI machines vary: AVX2 only, AVX-512 with BF16, AMX) can be told apart.
"""

from __future__ import annotations

import os
import platform
import subprocess

#: The /proc/cpuinfo flags that change TensorFlow / PyTorch speed on x86 (bf16 paths, AMX tiles).
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8")


def _cpuinfo() -> tuple[str | None, set[str]]:
    """(the first 'model name', the first 'flags' set) of /proc/cpuinfo; (None, set()) without it."""
    name, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name is None:
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, flags


def cpu_name() -> str:
    """The CPU model ('model name' of /proc/cpuinfo), else the platform's machine type."""
    return _cpuinfo()[0] or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags ('flags' of /proc/cpuinfo, as lscpu lists them); empty off Linux."""
    return set(_cpuinfo()[1])


def loadavg() -> list[str] | None:
    """The 1/5/15-minute load averages as printed by /proc/loadavg, or None off Linux."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return None


def cpu_description() -> dict:
    """{"model_name", "cores", "flags": {flag: bool for RELEVANT_FLAGS}}; lscpu's model name wins
    over /proc/cpuinfo's when both exist."""
    model, flags = cpu_name(), _cpuinfo()[1]
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"model_name": model, "cores": os.cpu_count(), "flags": {f: f in flags for f in RELEVANT_FLAGS}}


def summary() -> dict:
    """{"cpu": model name, "cpus": core count, "loadavg": [1, 5, 15 min]}: what a timing figure
    stores about its machine."""
    return {"cpu": cpu_name(), "cpus": os.cpu_count(), "loadavg": loadavg()}
