"""The CPU code paths a test can run under on this machine, chosen from the CPU's flags.

torch, oneDNN, MKL, OpenBLAS and numpy each pick their kernels by the CPU at import, from the environment:
a child process started with OTHER_PATH's variables takes the kernels a plainer CPU would take (on an
AVX-512 CPU, the AVX2 ones an AMD EPYC or an older Intel runs; on an AVX2 CPU, the baseline ones). A path the
CPU lacks is never selected (that would be an illegal instruction). MKL is limited with
MKL_ENABLE_INSTRUCTIONS, the dispatch an AVX2-only CPU gets, not MKL_CBWR, a reproducibility mode with kernels
of its own that no CPU runs by default.
"""

from __future__ import annotations

import os

from repro.hardware import cpu_flags

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR"}
BASELINE = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
            "OPENBLAS_CORETYPE": "Sandybridge", "NPY_DISABLE_CPU_FEATURES": "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR"}
# what each path's torch reports (torch.backends.cpu.get_cpu_capability())
CAPABILITY = {"avx2": "AVX2", "baseline": "DEFAULT"}
PATH_VARIABLE = "REPRO_TEST_CPU_PATH"  # set in the child: the name of the path it runs


def other_path() -> tuple[str, dict[str, str]] | None:
    """(name, environment) of the plainer path this CPU can run, or None where there is none (no AVX2)."""
    flags = cpu_flags()
    if "avx512f" in flags and "avx2" in flags:
        return "avx2", AVX2
    if "avx2" in flags:
        return "baseline", BASELINE
    return None


def child_environment(name: str, variables: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*AVX2, *BASELINE)}
    return {**env, **variables, PATH_VARIABLE: name}
