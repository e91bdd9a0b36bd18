"""Compile the fused kernel for a GPU without having one: `python -m repro.engines.kernel_check [--arch 90]`.

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

INT_POINTERS = {"rows_ptr", "labels_ptr", "idx1_ptr", "idx2_ptr", "back_ptr", "interior_ptr", "imeta_ptr"}


def compile_kernel(arch: int, num_warps: int) -> dict[str, int]:
    """Compile the kernel for sm_<arch>; return its registers, stack bytes and Triton's shared memory.
    (Every setting is a runtime value, so one compilation serves every configuration.)"""
    import triton
    from triton.backends.compiler import GPUTarget

    from repro.engines.fused_kernel import train_pass_kernel as fn

    signature = {}
    for name in fn.arg_names:
        if name in INT_POINTERS:
            signature[name] = "*i32"
        elif name.endswith("_ptr"):
            signature[name] = "*fp32"
        else:
            signature[name] = "i32" if name == "n_steps" else "fp32"
    src = triton.compiler.ASTSource(fn=fn, signature=signature)
    from repro.engines.fused import FP_FUSION

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
    from repro.engines.fused import NUM_WARPS

    use = compile_kernel(args.arch, NUM_WARPS)
    print(f"train_pass_kernel: sm_{args.arch}, {NUM_WARPS} warps: {use['registers']} registers/thread, "
          f"{use['stack_bytes']} B stack/thread, {use['shared_bytes']} B shared")
    return 0


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    sys.exit(main())
