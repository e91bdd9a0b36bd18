"""What CPU this is: its model name and the vector extensions the native engine's builds care about.

Records and bench files name the device with `describe_cpu()`, so figures measured on two CPUs can be told
apart (a 2-core AMD EPYC with AVX2 and a 2-core Intel Xeon with AVX-512 run the same study at different speeds;
the native engine's records are the same bits on both).
"""

from __future__ import annotations

import platform
import re
from functools import cache
from pathlib import Path

import torch

# the extensions that decide what the native kernel can be built for, in the order they are named
VECTOR_EXTENSIONS = (("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512"))


@cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor only
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_flags() -> frozenset[str]:
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def cpu_has(flag: str) -> bool:
    return flag in cpu_flags()


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or platform.machine()


def vector_extensions() -> list[str]:
    flags = cpu_flags()
    return [name for flag, name in VECTOR_EXTENSIONS if flag in flags]


def describe_cpu(threads: int) -> str:
    """e.g. 'cpu (Intel(R) Xeon(R) Processor; x86_64 AVX2 FMA AVX-512; 2 threads)'."""
    ext = " ".join([platform.machine(), *vector_extensions()])
    return f"cpu ({cpu_model()}; {ext}; {threads} thread{'s' if threads != 1 else ''})"


def cpu_clock_ghz() -> float | None:
    """The clock /proc/cpuinfo reports (in a virtual machine usually the nominal one), or None."""
    mhz = _cpuinfo().get("cpu MHz")
    try:
        return float(mhz) / 1000 if mhz else None
    except ValueError:
        return None


def device_slug(device: torch.device) -> str:
    """The device's name in file names (bench/<slug>.json): `cpu`, or the GPU's model."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
