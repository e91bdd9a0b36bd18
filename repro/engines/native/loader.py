"""Native CPU engine: all seeds of a config trained in lockstep at batch size 1 by a plain C kernel
(`native/kernel.c`), 8 or 16 members per AVX2 or AVX-512 register, or 8 in two NEON registers on ARM64 (one
member per SIMD lane), threads over groups. A population too small to fill the lanes trains each member alone
instead (`native/solo.c`: one member's units in the lanes, threads over members; see LANE_USES).

Each member computes exactly what the reference loop computes for it (tested against it at the lockstep
engines' tolerances), and its numbers do not depend on its neighbours, its place in the population, the number
of threads or whether it trains alone (bit for bit): every lane runs the same instructions on its own data,
and alone, every number comes from the same operations in the same order.

Random draws are the `population` engine's: this engine holds a `Population` (or `FCPopulation`) for its
per-member generators, initial weights and shifted-image table. A pass's draws come from each member's own
generator in the reference loop's order, made by `draws.c` (a copy of torch's CPU generator, checked against
torch when first used; draws.py) or else by the population's `draw_pass_bits`, the same numbers either way;
the drawn rows and dropout masks (bits, with the scale of a kept input) go to the kernel.

The kernel is compiled on first use with the system C compiler ($CC, else cc or gcc) into a cache folder
(`$LECUN1989_NATIVE_CACHE`, else `$XDG_CACHE_HOME/lecun1989/native`, else `~/.cache/lecun1989/native`),
named by a hash of the source, the flags, the compiler's version and the CPU's feature flags, and written
atomically (so concurrent first uses are safe). Without a compiler, importing still works: `available()`
returns the reason and the engine cannot be built.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from repro.config import INITS as config_inits
from repro.config import Config
from repro.engines import codes
from repro.engines.native import draws
from repro.engines.population import population_class as _lockstep_class
from repro.engines.population.net1989 import EvalResult, draw_threads, keep_scale
from repro.hardware import cpu_flags, cpu_has
from repro.net.metrics import exact_sum, is_wrong
from repro.net.model import h2_scheme, pad_background, set_float_mode
from repro.net.sdlm import curvature_window
from repro.resources import study_dir

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
        return (*FLAGS, f"-march={self.march}", f"-DLANES={self.lanes}")


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


# Options without a code the kernel implements in every value; anything else is refused (see `supports`).
LR_SCHEDULES = ("constant", "linear")  # lr comes from cfg.lr_at_pass, once per pass
SHIFT_MODES = ("wrap", "pad")  # shifted images come from the population's table
H2_SCHEMES = ("block", "cyclic")
INITS = config_inits  # initial weights come from init_params (every engine's); the kernel never sees them


class _Spec(ctypes.Structure):
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
    if lib.native_abi_version() != 8 or lib.native_sizeof_spec() != ctypes.sizeof(_Spec):
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


def available(device: torch.device | str | None = None) -> str | None:
    """None when the native engine can run here (on `device`, default the CPU), else the reason it cannot.
    Builds the kernel on first call if needed."""
    if device is not None and torch.device(device).type != "cpu":
        return f"the native engine runs on the CPU only, not on {torch.device(device).type}"
    lib = load()
    return lib if isinstance(lib, str) else None


def fallback_note(why: str) -> str:
    """What `ablate` and `train` say where the kernel cannot be built: why, which engine trains instead, and how
    much slower the committed bench measured it (16 members, the same machine and run)."""
    slower = ""
    try:
        engines = json.loads((study_dir() / "bench" / "cpu.json").read_text())["engines"]
        rate = {name: next(r["steps_per_s"] for r in engines[name]["populations"] if r["members"] == 16)
                for name in ("native", "population")}
        slower = (f", about {rate['native'] / rate['population']:.0f} times slower (the committed bench, at 16 "
                  f"members: {rate['population']:,.0f} against {rate['native']:,.0f} member-steps/s)")
    except (OSError, ValueError, KeyError, StopIteration):  # an installed package carries no bench figures
        pass
    return f"{why}; the population engine trains instead{slower}"


def supports(cfg: Config) -> str | None:
    """None when the native engine implements every option of `cfg`, else why not."""
    if why := codes.missing_code("native", cfg):
        return why
    checks = [("init", INITS), ("lr_schedule", LR_SCHEDULES), ("shift_mode", SHIFT_MODES), ("h2_scheme", H2_SCHEMES)]
    for name, valid in checks:
        value = getattr(cfg, name)
        if value not in valid:
            return f"the native engine does not implement {name} = {value!r} (it implements {', '.join(valid)})"
    if cfg.architecture == "fc40" and cfg.dropout > 0:
        return "dropout acts on the input of H3, which architecture 'fc40' does not have"
    return None


# --- the engine ------------------------------------------------------------------------------------

class NativePopulation:
    """P members of one config, each with its own seed, trained in lockstep by the C kernel (CPU only).

    Interface as `Population`: train_pass, evaluate, member_params, plus state_dict / load_state_dict.
    `threads` defaults to torch.get_num_threads(); `lane_use` (LANE_USES) says whether members train in the
    lanes or alone.
    """

    ENGINE = "native"  # the registry's name, recorded in state_dict

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, y_train: torch.Tensor, device="cpu",
                 threads: int | None = None, build: Build | None = None, lane_use: str = "auto"):
        if torch.device(device).type != "cpu":
            raise ValueError(f"the native engine runs on the CPU only, not on {device!r}")
        if why := supports(cfg):
            raise ValueError(why)
        if lane_use not in LANE_USES:
            raise ValueError(f"lane_use must be one of {', '.join(LANE_USES)}, not {lane_use!r}")
        self.threads, self.lane_use = threads, lane_use
        lib = load(build or default_build(len(seeds), self._threads()))
        if isinstance(lib, str):
            raise RuntimeError(f"native engine unavailable: {lib}")
        # Evaluation puts patterns in the lanes (one member at a time), so the widest lanes always pay there
        # (default_build without a population); an explicit build evaluates with itself.
        wide = lib if build else load(default_build())
        self._eval_lib = lib if isinstance(wide, str) else wide
        set_float_mode()
        self._lib = lib
        self.cfg, self.seeds, self.device = cfg, list(seeds), torch.device("cpu")
        self.members = len(self.seeds)
        self.n_train = len(x_train)
        # generators, initial weights, shifted-image table and per-pass draws: the population engine's
        self._pop = _lockstep_class(cfg.architecture)(cfg, self.seeds, x_train, y_train, device="cpu")
        if self._pop.images.numel() >= 2**31:  # the kernel gathers pixels by 32-bit offsets into this table
            raise ValueError(f"the native engine takes at most {2**31 // 400 - 1:,} training images (with their "
                             f"shifted copies); this configuration has {len(self._pop.images):,}")
        self.generators = self._pop.generators
        self.layout = codes.LAYOUTS[cfg.architecture]
        self.nparam = codes.NPARAM[cfg.architecture]
        self.lanes = lanes = lib.native_lanes()
        self.groups = (self.members + lanes - 1) // lanes
        self.params = torch.zeros(self.groups, self.nparam, lanes)
        for m in range(self.members):
            p = self._pop.member_params(m)
            self.params[m // lanes, :, m % lanes] = torch.cat([p[k].reshape(-1) for k in self.layout])
        # the kernel holds the weights and optimizer state from here on; the population keeps its draws
        for name in ("params", "grads", "optimizer", "curv", "w_sq", "scratch", "h1_padded"):
            setattr(self._pop, name, None)
        self.state1 = torch.zeros_like(self.params) if cfg.optimizer in ("adamw", "sdlm") else None
        self.state2 = torch.zeros_like(self.params) if cfg.optimizer == "adamw" else None
        self.step_count = 0
        self.labels = y_train.to(torch.int64).contiguous()
        self._per_pass_curvature = cfg.optimizer == "sdlm" and cfg.sdlm_curvature == "per_pass"
        self._spec = self._make_spec()

    def _make_spec(self) -> _Spec:
        cfg = self.cfg
        s = _Spec()
        s.arch, s.act = codes.code("architecture", cfg.architecture), codes.code("hidden_activation", cfg.hidden_activation)
        s.out, s.opt = codes.code("output", cfg.output), codes.code("optimizer", cfg.optimizer)
        s.nparam = self.nparam
        for r, i in enumerate(h2_scheme(cfg.h2_scheme).flatten().tolist()):
            s.scheme[r] = i
        s.lr, s.weight_decay = cfg.lr, cfg.weight_decay
        s.beta1, s.beta2, s.eps = cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps
        s.sdlm_gamma, s.sdlm_mu, s.dropout, s.target = cfg.sdlm_gamma, cfg.sdlm_mu, cfg.dropout, cfg.target
        s.keep_scale = keep_scale(cfg)
        s.alone = self.lane_use == "alone" or (self.lane_use == "auto"
                                               and trains_alone_by_default(self.members, self._threads()))
        if self._per_pass_curvature:
            s.opt = codes.SDLM_FIXED
        return s

    @property
    def trains_alone(self) -> bool:
        """Whether each member trains alone, its units in the lanes (see LANE_USES), rather than in a lane."""
        return bool(self._lib.native_trains_alone(ctypes.byref(self._spec)))

    @property
    def settled_from_step(self) -> int | None:
        """The count (from 1) of the first step from which each step costs less, for good (AdamW: the second
        moment's bias correction has rounded to 1, so the kernel leaves out dividing by it; the numbers are the
        same), or None where no step does. Timing (`repro bench`) measures the steps before and after apart."""
        return int(self._lib.native_settled_step(ctypes.byref(self._spec))) or None

    def _threads(self) -> int:
        return max(1, int(self.threads if self.threads is not None else torch.get_num_threads()))

    @staticmethod
    def _ptr(t: torch.Tensor | None) -> int | None:
        return None if t is None else t.data_ptr()

    # --- training -----------------------------------------------------------------------------------
    def train_pass(self, pass_index: int) -> None:
        if self._per_pass_curvature:
            self._estimate_curvature(pass_index)
        rows, keep = self._draw_pass()
        self._spec.lr = self.cfg.lr_at_pass(pass_index)
        self._spec.step = self.step_count
        rc = self._lib.native_train(ctypes.byref(self._spec), self.params.data_ptr(), self._ptr(self.state1),
                                    self._ptr(self.state2), self.members, self._pop.images.data_ptr(),
                                    rows.data_ptr(), self._ptr(keep), self.labels.data_ptr(), self.n_train,
                                    self._threads())
        if rc != 0:
            raise RuntimeError(f"native kernel failed in training (code {rc})")
        self.step_count += self.n_train

    def _draw_pass(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The pass's image rows and dropout bits from each member's own generator, in the reference loop's
        order: by the library's copy of torch's generator (draws.py) where it agrees with torch here, else by
        torch (on one thread, in this one)."""
        if draws.draws_agree(self._lib):
            return draws.draw_pass_bits(self._lib, self.generators, self.n_train, self.cfg)
        return self._pop.draw_pass_bits(pool=draw_threads() if self._threads() > 1 else None)

    def _estimate_curvature(self, pass_index: int) -> None:
        """SDLM "per_pass": state1 := the mean curvature over the pass's window of patterns (sdlm.py), by one
        kernel call that adds each pattern's curvature into state1 and leaves the weights alone."""
        k = self.cfg.sdlm_estimate_patterns
        window = curvature_window(pass_index, self.n_train, k)
        rows = self._pop.image_rows(window).expand(self.members, k).contiguous()
        labels = self.labels[window].contiguous()
        spec = _Spec.from_buffer_copy(self._spec)
        spec.opt = codes.SDLM_ESTIMATE
        self.state1.zero_()
        rc = self._lib.native_train(ctypes.byref(spec), self.params.data_ptr(), self.state1.data_ptr(), None,
                                    self.members, self._pop.images.data_ptr(), rows.data_ptr(), None,
                                    labels.data_ptr(), k, self._threads())
        if rc != 0:
            raise RuntimeError(f"native kernel failed estimating the curvature (code {rc})")
        self.state1.div_(k)

    # --- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, keep_outputs: bool = False) -> EvalResult:
        """Every member on a whole split: per-pattern float32 losses summed exactly, errors by `is_wrong`."""
        n, P = len(x), self.members
        images = pad_background(x.to(torch.float32).reshape(n, 16, 16)).reshape(n, 400).contiguous()
        labels = y.to(torch.int64).contiguous()
        outs = torch.empty(P, n, 10)
        losses = torch.empty(P, n)
        params = self._params_in_lanes(self._eval_lib.native_lanes())
        wide = torch.empty_like(params)
        rc = self._eval_lib.native_eval(ctypes.byref(self._spec), params.data_ptr(), wide.data_ptr(), P,
                                   images.data_ptr(), labels.data_ptr(), n, outs.data_ptr(), losses.data_ptr(),
                                   self._threads())
        if rc != 0:
            raise RuntimeError(f"native kernel failed in evaluation (code {rc})")
        loss = exact_sum(losses) / n
        error = is_wrong(outs, labels).sum(dim=1).to(torch.float64) / n
        return EvalResult(loss, error, outs if keep_outputs else None)

    def _params_in_lanes(self, lanes: int) -> torch.Tensor:
        """The parameters laid out in groups of `lanes` members (a copy when that is not the training layout)."""
        return self.params if lanes == self.lanes else _relaid(self.params, self.members, lanes)

    def _in_own_lanes(self, blocks: torch.Tensor) -> torch.Tensor:
        """Blocks of (groups, NP, any lanes), as this kernel lays them out."""
        return blocks if blocks.shape[-1] == self.lanes else _relaid(blocks, self.members, self.lanes)

    # --- parameters and state -----------------------------------------------------------------------
    def member_params(self, m: int) -> dict[str, torch.Tensor]:
        """Paper-named parameters of member m (for checkpoints and tests)."""
        flat = self.params[m // self.lanes, :, m % self.lanes]
        out, offset = {}, 0
        for name, shape in self.layout.items():
            k = torch.Size(shape).numel()
            out[name] = flat[offset : offset + k].reshape(shape).clone()
            offset += k
        return out

    def state_dict(self) -> dict:
        """Everything needed to continue training bit for bit after a pass."""
        return {
            "engine": self.ENGINE,
            "config_digest": self.cfg.digest(),
            "seeds": list(self.seeds),
            "params": self.params.clone(),
            "state1": None if self.state1 is None else self.state1.clone(),
            "state2": None if self.state2 is None else self.state2.clone(),
            "step_count": self.step_count,
            "generators": [g.get_state() for g in self.generators],
        }

    def load_state_dict(self, d: dict) -> None:
        if d.get("engine") != self.ENGINE or d["config_digest"] != self.cfg.digest() or list(d["seeds"]) != self.seeds:
            raise ValueError("state_dict is not from a native engine with this config and these seeds")
        lanes = d["params"].shape[-1]  # a state saved by a kernel of another lane width is laid out again
        want = (-(-self.members // lanes), self.nparam, lanes)
        if tuple(d["params"].shape) != want:
            raise ValueError(f"state_dict params have shape {tuple(d['params'].shape)}, expected {want}")
        self.params.copy_(self._in_own_lanes(d["params"]))
        for mine, theirs in ((self.state1, d["state1"]), (self.state2, d["state2"])):
            if (mine is None) != (theirs is None):
                raise ValueError("state_dict optimizer state does not match this config's optimizer")
            if mine is not None:
                mine.copy_(self._in_own_lanes(theirs))
        self.step_count = int(d["step_count"])
        for g, state in zip(self.generators, d["generators"], strict=True):
            g.set_state(state)


def _relaid(blocks: torch.Tensor, members: int, lanes: int) -> torch.Tensor:
    """Per-member blocks (groups, NP, lanes of the source) in groups of `lanes` members (spare lanes zero)."""
    nparam = blocks.shape[1]
    flat = blocks.permute(0, 2, 1).reshape(-1, nparam)[:members]
    padded = torch.zeros(-(-members // lanes) * lanes, nparam)
    padded[:members] = flat
    return padded.reshape(-1, lanes, nparam).permute(0, 2, 1).contiguous()


def population_class(cfg: Config | None = None) -> type[NativePopulation]:
    """The engine class (one class for every architecture)."""
    return NativePopulation
