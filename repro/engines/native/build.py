"""Building and loading the native engine's C kernel (native.c, which includes the rest), and the C interface
it is called through (the Spec's layout, the version, the functions' signatures).

The kernel is compiled on first use with the system C compiler ($CC, else cc or gcc) into a cache folder
(`$LECUN1989_NATIVE_CACHE`, else `$XDG_CACHE_HOME/lecun1989/native`, else `~/.cache/lecun1989/native`),
named by a hash of the source, the flags, the compiler's version and the CPU's feature flags, and written
atomically (so concurrent first uses are safe). Without a compiler, importing still works: `load()` returns
the reason and the engine cannot be built.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from repro.engines import codes
from repro.hardware import cpu_flags, cpu_has

ENTRY = Path(__file__).with_name("native.c")  # the C interface; it #includes the two kernels:
KERNEL = ENTRY.with_name("kernel.c")  # members in the lanes (and the helpers and evaluation)
SOLO = ENTRY.with_name("solo.c")  # one member alone
DRAWS = ENTRY.with_name("draws.c")  # a member's draws for a pass, from its torch generator's state
MATHF = ENTRY.with_name("mathf.c")  # the kernel's own expf and logf (not the C library's)
FPMODE = ENTRY.with_name("fpmode.c")  # denormals flushed, on x86-64 and on AArch64
SOURCES = (ENTRY, KERNEL, SOLO, DRAWS, MATHF, FPMODE)
# No flag may let the compiler change a result: contraction of a*b+c is off (the kernel writes its fused
# multiply-adds out), no fast-math. So -march only picks instructions, never numbers: the same bits on every
# x86-64 CPU, whatever the target and the lane width (tests/test_native_builds.py builds several and compares),
# and on AArch64 (tests/test_native_arm64.py cross-builds the kernel and runs it under emulation).
FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-pthread",
         "-std=gnu11")
ARM64_MACHINES = ("aarch64", "arm64")  # platform.machine() on Linux and on macOS
X86_64_MACHINES = ("x86_64", "amd64", "AMD64")


def is_arm64() -> bool:
    return platform.machine() in ARM64_MACHINES


@dataclass(frozen=True)
class Build:
    """One compiled kernel: the instruction set it targets (gcc's -march) and its lane width."""

    march: str = "native"
    lanes: int = 8  # members per SIMD register: 8 (AVX2) or 16 (AVX-512)

    def flags(self) -> tuple[str, ...]:
        return (*FLAGS, f"-march={self.march}", f"-DLANES={self.lanes}", f"-DNATIVE_ABI={codes.NATIVE_ABI}")


def default_build(members: int | None = None, threads: int = 1) -> Build:
    """On x86-64, this CPU's own instructions, with 16 lanes where it has AVX-512 and the population fills a
    group of 16 for every thread or trains alone (`trains_alone_by_default`: one member's units fill the lanes),
    else 8 (threads take whole groups: 16 members on 2 threads train faster as two groups of 8, and 8 members
    would leave half of a 16-lane register idle). On AArch64, ARMv8-A (NEON, which every such CPU has) with 8
    lanes in two registers (the compilers of Linux and macOS both take it; a wider target has no instruction the
    kernel would use). The choice never changes a record.

    `$LECUN1989_NATIVE_MARCH` and `$LECUN1989_NATIVE_LANES` override either."""
    lanes = 16 if cpu_has("avx512f") and (members is None or members >= 16 * threads
                                           or trains_alone_by_default(members, threads)) else 8
    return Build(os.environ.get("LECUN1989_NATIVE_MARCH", "armv8-a" if is_arm64() else "native"),
                 int(os.environ.get("LECUN1989_NATIVE_LANES", lanes)))


class Spec(ctypes.Structure):
    """native.c's Spec: a config as the kernel takes it (its codes and settings) and the step count."""

    _fields_ = [("arch", ctypes.c_int32), ("act", ctypes.c_int32), ("out", ctypes.c_int32), ("opt", ctypes.c_int32),
                ("nparam", ctypes.c_int32), ("scheme", ctypes.c_int32 * 96),
                ("lr", ctypes.c_double), ("weight_decay", ctypes.c_double), ("beta1", ctypes.c_double),
                ("beta2", ctypes.c_double), ("eps", ctypes.c_double), ("sdlm_gamma", ctypes.c_double),
                ("sdlm_mu", ctypes.c_double), ("dropout", ctypes.c_double), ("keep_scale", ctypes.c_double),
                ("target", ctypes.c_double),
                ("step", ctypes.c_int64), ("alone", ctypes.c_int32)]


# How a population's members train: "members" in the lanes (kernel.c), "alone" each with its own units in the
# lanes (solo.c; net1989 with SGD or AdamW, else in the lanes), "auto" alone when the population has at most
# ALONE_PER_THREAD members per thread. The same bits every way; only the speed differs. Measured on a 2-core
# Intel Xeon (AVX-512), one thread: a step alone takes about 0.14x the time of a 16-lane group's step; built for
# AVX2 (x86-64-v3, 8 lanes), about 0.35x of an 8-lane group's. So alone wins up to about 2 members per thread.
LANE_USES = ("auto", "members", "alone")
ALONE_PER_THREAD = 2


def trains_alone_by_default(members: int, threads: int) -> bool:
    return members <= ALONE_PER_THREAD * max(1, threads)


# --- building and loading the kernel ---------------------------------------------------------------

_loaded: dict[Build, ctypes.CDLL | str] = {}  # a loaded kernel, or why it could not be built or loaded
_loading = threading.Lock()  # configurations trained side by side may ask for the kernel at the same moment


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    env = os.environ.get("LECUN1989_NATIVE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lecun1989" / "native"


def _compile(cc: str, build: Build) -> Path:
    src = b"\0".join(p.read_bytes() for p in SOURCES)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout.splitlines()[:1]
    # "-march=native" means this CPU's instructions: its feature flags belong in the name of what it built
    key = hashlib.sha256(b"\0".join([src, " ".join(build.flags()).encode(), "".join(version).encode(),
                                     " ".join(sorted(cpu_flags())).encode(), platform.machine().encode()])).hexdigest()[:20]
    name = f"kernel-{key}.so"
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"lecun1989-native-{os.getuid()}"):
        if (folder / name).exists():
            return folder / name
        try:  # an unwritable cache folder falls back to a private folder under the temp dir
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                break
        except OSError:
            continue
    else:
        raise RuntimeError(f"no writable folder for the compiled kernel (tried {cache_dir()})")
    out = folder / name
    fd, tmp = tempfile.mkstemp(prefix=".kernel-", suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *build.flags(), "-o", tmp, str(ENTRY), "-lm"], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling {ENTRY.name} failed:\n{proc.stderr.strip()[-2000:]}")
        os.replace(tmp, out)  # atomic: a concurrent reader sees the old name absent or the whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _open(build: Build) -> ctypes.CDLL | str:
    if platform.system() == "Windows":
        return "the native engine is built for POSIX systems only"
    if platform.machine() not in ARM64_MACHINES + X86_64_MACHINES:
        return f"the native engine is built for x86-64 and ARM64 CPUs, not {platform.machine() or 'this one'}"
    cc = _compiler()
    if cc is None:
        return "no C compiler found ($CC, cc or gcc) to build the native engine's kernel"
    try:
        lib = ctypes.CDLL(str(_compile(cc, build)))
    except Exception as e:  # noqa: BLE001 - any build or load failure makes the engine unavailable, with the reason
        return f"the native engine's kernel ({build}) could not be built or loaded: {e}"
    if lib.native_abi_version() != codes.NATIVE_ABI or lib.native_sizeof_spec() != ctypes.sizeof(Spec):
        return "the native engine's kernel does not match this Python module (ABI mismatch)"
    p, i32 = ctypes.c_void_p, ctypes.c_int32
    lib.native_train.argtypes = [p, p, p, p, i32, p, p, p, p, i32, i32]
    lib.native_train.restype = ctypes.c_int
    lib.native_eval.argtypes = [p, p, p, i32, p, p, i32, p, p, i32]
    lib.native_eval.restype = ctypes.c_int
    lib.native_trains_alone.argtypes = [p]
    lib.native_trains_alone.restype = ctypes.c_int
    lib.native_draw_pass.argtypes = [p, i32, i32, ctypes.c_float, ctypes.c_int64, p, p]
    lib.native_draw_pass.restype = ctypes.c_int
    lib.native_settled_step.argtypes = [p]
    lib.native_settled_step.restype = ctypes.c_int64
    return lib


def load(build: Build | None = None) -> ctypes.CDLL | str:
    """The kernel compiled for `build` (default: `default_build()`), or why it cannot be had; built on first
    use and cached on disk."""
    build = build or default_build()
    with _loading:
        if build not in _loaded:
            _loaded[build] = _open(build)
        return _loaded[build]
