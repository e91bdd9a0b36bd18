"""Compile the fused kernel for a GPU without having one: `python -m repro.kernel_check [--arch 90]`.

Triton ships its own ptxas, so the full GPU compilation (Triton IR -> PTX -> cubin) runs on any machine. This
catches what the CPU interpreter cannot (shapes or ops the GPU backend rejects) and prints each variant's
registers per thread and stack (spilled registers) from the cubin, the first thing to watch when tuning.

Must run in a process where Triton was imported without TRITON_INTERPRET (this module unsets it first).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

INT_POINTERS = {"rows_ptr", "labels_ptr", "idx1_ptr", "idx2_ptr", "back_ptr", "interior_ptr"}


def ladder_variants() -> dict[str, dict[str, int | bool]]:
    """The kernel specialisations the ladder (and its extra rungs) compiles, keyed by the first rung needing each."""
    from .engine_fused import CODES, unsupported_reason
    from .ladder import extra_rungs, load_rungs, plan

    rungs = load_rungs()
    variants: dict[tuple, str] = {}
    for p in plan(rungs, "cumulative", [r.name for r in rungs + extra_rungs()], extra_rungs()):
        c = p.config
        if unsupported_reason(c):
            continue
        key = (CODES[c.hidden_activation], CODES[c.output], CODES[c.optimizer], c.dropout > 0)
        variants.setdefault(key, p.label)
    return {label: dict(zip(("ACT", "OUT", "OPT", "HAS_KEEP"), key)) for key, label in variants.items()}


def compile_variant(constexprs: dict, arch: int, num_warps: int) -> dict[str, int]:
    """Compile one specialisation for sm_<arch>; return its registers, stack bytes and Triton's shared memory."""
    import triton
    from triton.backends.compiler import GPUTarget

    from .fused_kernel import train_pass_kernel as fn

    signature = {}
    for name in fn.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in INT_POINTERS:
            signature[name] = "*i32"
        elif name.endswith("_ptr"):
            signature[name] = "*fp32"
        else:
            signature[name] = "i32" if name == "n_steps" else "fp32"
    src = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    from .engine_fused import FP_FUSION

    options = {"num_warps": num_warps, "enable_fp_fusion": FP_FUSION}
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        usage = subprocess.run([str(cuobjdump), "--dump-resource-usage", str(cubin)], capture_output=True,
                               text=True, check=True).stdout
    m = re.search(r"Function train_pass_kernel:\s*REG:(\d+) STACK:(\d+)", usage)
    return {"registers": int(m.group(1)), "stack_bytes": int(m.group(2)), "shared_bytes": kernel.metadata.shared}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: H100/H200)")
    args = parser.parse_args(argv)
    from .engine_fused import NUM_WARPS

    for label, constexprs in ladder_variants().items():
        use = compile_variant(constexprs, args.arch, NUM_WARPS)
        print(f"{label:<12} {constexprs}  sm_{args.arch}, {NUM_WARPS} warps: {use['registers']} registers/thread, "
              f"{use['stack_bytes']} B stack/thread, {use['shared_bytes']} B shared")
    return 0


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    sys.exit(main())
