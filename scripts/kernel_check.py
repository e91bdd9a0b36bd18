"""Compile the fused kernel for a GPU without having one: `python scripts/kernel_check.py [--arch 90]`.

Triton ships its own ptxas, so the full GPU compilation (Triton IR -> PTX -> cubin) runs on any machine. This
catches what the CPU interpreter cannot (shapes or ops the GPU backend rejects) and reports the binary's
resources from ptxas and the cubin: registers per thread, stack and spilled bytes, shared memory, and the
barriers (bar.sync) in the code, the first things to watch when tuning.

The binary is the one the JIT builds for a launch from repro/engines/fused/population.py: the same options, and
the specialization the JIT gives torch tensors (every pointer 16-byte aligned: torch's allocators align far more), which changes the
code (vector loads and stores, less stack). n_steps is never specialized (train_pass_kernel says so), so every
training-set size runs this binary.

Must run in a process where Triton was imported without TRITON_INTERPRET (this module unsets it first).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from repro.engines.fused import layout
from repro.engines.fused.population import FP_FUSION
from repro.engines.fused.population import NUM_WARPS as DEFAULT_NUM_WARPS

# Element types of the kernel's pointer arguments, as fused.FusedGroup passes them (fp32 unless listed);
# a test checks this against a real launch.
POINTER_TYPES = {"rows_ptr": "*i32", "keep_ptr": "*u8", "labels_ptr": "*i32", "idx1_ptr": "*i32",
                 "idx2_ptr": "*i32", "back_ptr": "*i32", "interior_ptr": "*i32", "imeta_ptr": "*i32"}
ALIGNED = 16  # bytes: the JIT marks a tensor argument whose address is a multiple of 16 (tt.divisibility)


def signature(fn) -> tuple[dict[str, str], dict[tuple[int, ...], list]]:
    """The kernel's argument types, and the alignment attributes the JIT gives torch tensors."""
    sig, attrs = {}, {}
    for i, name in enumerate(fn.arg_names):
        if name.endswith("_ptr"):
            sig[name] = POINTER_TYPES.get(name, "*fp32")
            attrs[(i,)] = [["tt.divisibility", ALIGNED]]
        elif name.startswith("ONLY_"):
            sig[name] = "constexpr"
        else:
            sig[name] = "i32"  # n_steps, the only scalar
    return sig, attrs


# Paths compiled alone for per-path figures (the barriers of one member's step): (architecture, optimizer).
PATHS = [("net1989", "sgd"), ("net1989", "adamw"), ("net1989", "sdlm"), ("fc40", "sgd"), ("fc40", "sdlm")]


def compile_kernel(arch: int, num_warps: int, aligned: bool = True, path: tuple[str, str] | None = None) -> dict:
    """Compile the kernel for sm_<arch>; return its resources (see `main`). aligned=False: without the JIT's
    alignment specialization (for comparison only: that binary never runs). path: (architecture, optimizer)
    compiled alone (train_pass_kernel's ONLY_ARCH, ONLY_OPT); None: the kernel that runs, every path."""
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget

    from repro.engines.fused.kernel import train_pass_kernel as fn

    sig, attrs = signature(fn)
    only = {"ONLY_ARCH": -1, "ONLY_OPT": -1}
    if path is not None:
        only = {"ONLY_ARCH": layout.code("architecture", path[0]), "ONLY_OPT": layout.code("optimizer", path[1])}
    src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=only, attrs=attrs if aligned else None)
    options = {"num_warps": num_warps, "enable_fp_fusion": FP_FUSION}
    log = io.StringIO()
    # ptxas -v's report (spills) is printed to stdout, when ptxas runs: so never from Triton's cache
    knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = True, True
    try:
        with contextlib.redirect_stdout(log):
            kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    finally:
        knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = False, False
    bin_dir = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        usage = subprocess.run([str(bin_dir / "cuobjdump"), "--dump-resource-usage", str(cubin)], capture_output=True,
                               text=True, check=True).stdout
        sass = subprocess.run([str(bin_dir / "cuobjdump"), "--dump-sass", str(cubin)], capture_output=True, text=True,
                              check=True).stdout
    m = re.search(r"Function train_pass_kernel:\s*REG:(\d+) STACK:(\d+)", usage)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log.getvalue())
    ptx = kernel.asm["ptx"]
    return {
        "arch": f"sm_{arch}", "num_warps": num_warps, "aligned": aligned, "path": "/".join(path) if path else "all",
        "registers": int(m.group(1)), "stack_bytes": int(m.group(2)),
        "spill_store_bytes": int(spills.group(1)) if spills else None,
        "spill_load_bytes": int(spills.group(2)) if spills else None,
        "shared_bytes": kernel.metadata.shared,
        "barriers_ptx": len(re.findall(r"\bbar\.sync\b|\bbarrier\.sync\b", ptx)),
        "barriers_sass": len(re.findall(r"\bBAR\.SYNC", sass)),
        "vector_loads_128": len(re.findall(r"\bld\.global(?:\.\w+)*\.v4\.b32\b", ptx)),
        "vector_stores_128": len(re.findall(r"\bst\.global(?:\.\w+)*\.v4\.b32\b", ptx)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: H100/H200)")
    parser.add_argument("--unaligned", action="store_true",
                        help="also compile without the JIT's 16-byte pointer alignment, for comparison")
    parser.add_argument("--paths", action="store_true",
                        help="also compile each (architecture, optimizer) path alone: its barriers are one step's")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--num-warps", type=int, help="warps per program (default: the engine's, NUM_WARPS of repro/engines/fused/population.py)")
    args = parser.parse_args(argv)
    NUM_WARPS = args.num_warps or DEFAULT_NUM_WARPS

    results = [compile_kernel(args.arch, NUM_WARPS)]
    if args.unaligned:
        results.append(compile_kernel(args.arch, NUM_WARPS, aligned=False))
    if args.paths:
        results += [compile_kernel(args.arch, NUM_WARPS, path=p) for p in PATHS]
    for use in results:
        what = f"{'' if use['aligned'] else ', UNALIGNED'}{'' if use['path'] == 'all' else ', path ' + use['path'] + ' alone'}"
        print(f"train_pass_kernel: sm_{args.arch}, {NUM_WARPS} warps{what}: "
              f"{use['registers']} registers/thread, {use['stack_bytes']} B stack/thread, "
              f"spills {use['spill_store_bytes']} B stored / {use['spill_load_bytes']} B loaded, "
              f"{use['shared_bytes']} B shared, {use['barriers_sass']} barriers in the code (bar.sync; PTX "
              f"{use['barriers_ptx']}), 128-bit global loads/stores {use['vector_loads_128']}/{use['vector_stores_128']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    sys.exit(main())
