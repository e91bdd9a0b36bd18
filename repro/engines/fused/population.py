"""The "fused" engine: population.Population with each training pass run by one Triton kernel launch
(kernel.train_pass_kernel: one program per member loops over all of the pass's steps).

Everything but the pass itself is inherited: initial weights, each member's random draws (the same
generator calls, so the same shifts and dropout masks), evaluation, checkpoints and state_dict. The kernel
works on a padded copy of the parameters (layout.LAYOUTS); before a pass the engine's tensors are
packed into it and after the pass unpacked back, so `params.views` is current between passes, as with the
plain engine. Both architectures (the 1989 net and fc40) and every optimizer (SGD, AdamW, SDLM) run in the
same kernel, so one launch trains members of every configuration of both ladders: a FusedPopulation built
for an fc40 config is a FusedFCPopulation (population.fc40.FCPopulation's layer maths for everything off the
kernel: evaluation, layouts).

Host cost per pass (on a GPU the kernel is short, so this matters): each member's draws are made in
worker threads (one generator each, the same calls as Population's), dropout masks travel as bits that the
kernel unpacks, reorders and scales, and on CUDA the per-pass tables go from pinned memory with
non-blocking copies.

On a CUDA device this is the fast path. Without one, the same kernel source runs in Triton's interpreter on
the CPU, at a few dozen member-steps/s on 2 cores (SGD; SDLM about half that), hundreds of times slower than
the population engine: it exists so that CI can check the kernel's arithmetic against the reference loop
without a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from repro.config import Config
from repro.engines import codes
from repro.engines.fused import layout
from repro.engines.members import keep_scale
from repro.engines.population.lockstep import H1_INTERIOR, H1_PATCHES, H2_PATCHES, SHAPES, Population, flat_views
from repro.engines.population.fc40 import FC_SHAPES, FCPopulation
from repro.errors import ReproError

ENGINE_SHAPES = {"net1989": SHAPES, "fc40": FC_SHAPES}

# Threads per member: 8 warps. Chosen from ptxas's resource report (`python scripts/kernel_check.py`): 4 warps
# spill more registers to the stack, 16 halve the registers but leave one block per SM all the same. Not yet
# tuned by measurement on a GPU.
NUM_WARPS = 8
FP_FUSION = True  # let the GPU fuse multiply-adds (Triton's default until 3.9); results differ by rounding only


class FusedEngineError(ReproError, RuntimeError):
    """The fused engine cannot run this config or on this machine; the message says what to use instead."""


def supports(cfg: Config) -> str | None:
    """Why the fused kernel cannot train `cfg`, or None when it can."""
    if cfg.optimizer == "sdlm" and cfg.sdlm_curvature != "running":
        return f"the fused engine does not implement sdlm_curvature = {cfg.sdlm_curvature!r} (it implements 'running')"
    return None


def available(device: torch.device) -> str | None:
    """Why the fused engine cannot run on `device` (no Triton, or a device Triton does not drive), or None.
    On CPU it runs in Triton's interpreter: for checking the kernel, about 100x slower than the population
    engine."""
    if device.type not in ("cpu", "cuda"):
        return f"the fused engine runs on CUDA (or, for checking, in Triton's CPU interpreter), not on {device.type}"
    if importlib.util.find_spec("triton") is None:
        return "the fused engine needs Triton (CUDA builds of PyTorch include it; `pip install triton` on CPU)"
    return None


def load_kernel(device: torch.device):
    """Import the Triton kernel; for a CPU device, in Triton's interpreter.

    Interpreter mode must be chosen before Triton is first imported (its standard library, tl.sum and the
    like, is decorated at import), and PyTorch imports Triton lazily (torch.optim does, through dynamo). So
    on CPU we set TRITON_INTERPRET=1 if Triton is not loaded yet, and otherwise check that it was set.
    """
    if device.type == "cpu":
        if "triton" not in sys.modules:
            os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton.language as tl

        from repro.engines.fused import kernel as fused_kernel
    except ImportError as err:
        raise FusedEngineError(
            "the fused engine needs Triton: CUDA builds of PyTorch include it; on a CPU-only machine "
            f"`pip install triton` adds its interpreter (for checking, not speed). ({err})") from err
    interpreted = type(tl.sum).__name__ == "InterpretedFunction"
    if device.type == "cpu" and not interpreted:
        raise FusedEngineError(
            "the fused engine on CPU needs Triton's interpreter, and Triton was imported before it could be "
            "chosen; start Python with TRITON_INTERPRET=1 set (the test suite's conftest does this)")
    if device.type == "cuda" and interpreted:
        raise FusedEngineError("TRITON_INTERPRET=1 is set, so Triton would not compile for the GPU; unset it")
    return fused_kernel.train_pass_kernel


def _region(buf: torch.Tensor, name: str, arch: str = "net1989") -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor `name` of architecture `arch` in the rows of `buf` (P, layout.ROW): its whole padded region, and
    the part holding the engine's entries, as (P, rows, cols) of the engine layout once reshaped."""
    offset, rows, cols = layout.LAYOUTS[arch][name]
    region = buf[:, offset : offset + rows * cols]
    r, c = ENGINE_SHAPES[arch][name]
    if (arch, name) == ("net1989", "W3"):  # engine rows position*12 + map; here position*16 + map, maps padded 12 -> 16
        return region, region.view(len(buf), 16, 16, cols)[:, :, :12, :c]
    return region, region.view(len(buf), rows, cols)[:, :r, :c]


def pack(views: dict[str, torch.Tensor], out: torch.Tensor, arch: str = "net1989") -> None:
    """Engine-layout tensors (P, rows, cols) -> rows of `out` (P, layout.ROW), zero-padded."""
    for name in layout.LAYOUTS[arch]:
        region, real = _region(out, name, arch)
        region.zero_()
        real.copy_(views[name].view(real.shape))


def unpack(packed: torch.Tensor, views: dict[str, torch.Tensor], arch: str = "net1989") -> None:
    """Inverse of `pack`: rows of `packed` -> the engine-layout tensors, in place."""
    for name in layout.LAYOUTS[arch]:
        views[name].copy_(_region(packed, name, arch)[1].reshape(views[name].shape))


def _index_tables() -> dict[str, torch.Tensor]:
    """The kernel's fixed gather tables (int32), built from the engine's patch indices."""
    idx1 = torch.zeros(layout.H1_UNITS, 32, dtype=torch.int32)
    idx1[:, : layout.H1_TAPS] = H1_PATCHES
    # H2's patch entries (tap*12 + H1 map, as W2's rows) of each position, into the H1 scratch; the padding
    # entries past the 300 real ones read its zero, so the kernel's gathers need no mask.
    rows = layout.PADDED["net1989"]["W2"][0]
    k = torch.arange(layout.H2_ENTRIES)
    idx2 = torch.full((layout.H2_POSITIONS, rows), layout.H1_ZERO, dtype=torch.int32)
    idx2[:, : layout.H2_ENTRIES] = H2_PATCHES[:, k // 12] * 12 + k % 12
    # For each H1 unit: which (H2 position, tap) pairs read it (at most H1_READERS), as offsets into the dp2
    # scratch (16, rows), in ascending order as the population engine's index_add sums them; [reader, unit],
    # so that one reader's gather is contiguous; -1 past a unit's last reader.
    back = torch.full((layout.H1_READERS, layout.H1_UNITS), -1, dtype=torch.int32)
    for q, plane_index in enumerate(H1_INTERIOR.tolist()):
        pos, tap = (H2_PATCHES == plane_index).nonzero(as_tuple=True)
        back[: len(pos), q] = (pos * rows + tap * 12).to(torch.int32)
    return {"idx1": idx1, "idx2": idx2, "back": back, "interior": H1_INTERIOR.to(torch.int32)}


_draw_pool: ThreadPoolExecutor | None = None


def _draw_workers() -> ThreadPoolExecutor:
    """Threads for the members' draws: torch.rand releases the GIL, and each member has its own generator."""
    global _draw_pool
    if _draw_pool is None:
        _draw_pool = ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1), thread_name_prefix="fused-draws")
    return _draw_pool


class FusedPopulation(Population):
    """Population whose training passes run in the fused kernel; same results to float32 rounding.

    `train_pass` launches the kernel for this population alone; FusedGroup trains several populations
    (different rungs, architectures, datasets) in one launch per pass. Built for an fc40 config it is a
    FusedFCPopulation (the registry names this one class for the fused engine).
    """

    ENGINE = "fused"
    ARCH = "net1989"

    def __new__(cls, cfg: Config | None = None, *args, **kwargs):
        if cls is FusedPopulation and cfg is not None and cfg.architecture == "fc40":
            cls = FusedFCPopulation
        return super().__new__(cls)

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, y_train: torch.Tensor, device="cpu"):
        if why := supports(cfg):
            raise FusedEngineError(f"{why}; use --engine population for this config")
        super().__init__(cfg, seeds, x_train, y_train, device=device)
        self.kernel = load_kernel(self.device)
        P, dev = self.members, self.device
        self.conn = self._connections().to(dev)
        self.packed = torch.zeros(P, layout.ROW, device=dev)
        self.packed_avg = torch.zeros(P, layout.ROW, device=dev)  # AdamW's first moment or SDLM's h
        self.packed_avg_sq = torch.zeros(P, layout.ROW, device=dev)  # AdamW's second moment
        self.labels32 = self.labels.to(torch.int32)
        self._alone: FusedGroup | None = None
        self._states_before_ahead: list[torch.Tensor] | None = None  # set while a group holds draws made ahead

    def _connections(self) -> torch.Tensor:
        """(W2's padded rows, 16) 0/1: which H2 connections exist (the kernel masks W2's gradient with it)."""
        conn = torch.zeros(layout.PADDED["net1989"]["W2"], device=self.mask.device)
        conn[: layout.H2_ENTRIES, : layout.MAPS] = self.mask
        return conn

    def train_pass(self, pass_index: int) -> None:
        if self._alone is None:
            self._alone = FusedGroup([self])
        self._alone.train_pass([pass_index])

    def _optimizer_buffers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(the optimizer's flat buffer, the kernel's padded copy) pairs: AdamW's moments, or SDLM's h."""
        opt = self.optimizer
        if self.cfg.optimizer == "adamw":
            return [(opt.exp_avg, self.packed_avg), (opt.exp_avg_sq, self.packed_avg_sq)]
        if self.cfg.optimizer == "sdlm":
            return [(opt.h, self.packed_avg)]
        return []

    def pack_state(self) -> None:
        """Engine tensors (which callers may read or change between passes) -> the kernel's padded copies."""
        pack(self.params.views, self.packed, self.ARCH)
        for flat, packed in self._optimizer_buffers():
            pack(flat_views(flat, self.members, self.SHAPES), packed, self.ARCH)

    def unpack_state(self) -> None:
        unpack(self.packed, self.params.views, self.ARCH)
        for flat, packed in self._optimizer_buffers():
            unpack(packed, flat_views(flat, self.members, self.SHAPES), self.ARCH)

    def _generator_states(self) -> list[torch.Tensor]:
        """As Population's, but from before any draws a FusedGroup made ahead for the next pass, so that a
        population loaded from this state draws that pass again, identically."""
        return self._states_before_ahead or super()._generator_states()

    def load_state_dict(self, d: dict) -> None:
        """As Population's; draws made ahead by this population's own group are dropped (load into a
        population that no other FusedGroup holds)."""
        super().load_state_dict(d)
        self._alone, self._states_before_ahead = None, None

    def _draw_pass(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One pass's draws (Members.draw_pass_bits): image rows (P, N) int32 and dropout masks as bits, in
        worker threads, in pinned memory on CUDA (so that they go to the GPU by non-blocking copies)."""
        return self.shared.draw_pass_bits(torch.int32, pin=self.device.type == "cuda", pool=_draw_workers())

    def member_tables(self, pass_index: int, keep_row0: int, label_base: int, conn_index: int,
                      schedule_row: int):
        """This population's rows of the kernel's per-member tables for one pass: imeta (P, N_INT) int32 and
        fmeta (P, N_FLOAT) float32 (columns: layout.py), and for AdamW its row of the per-step tables,
        step size and bias correction (2, N) float32 (computed in double, as repro.optim.AdamW computes them,
        then rounded to float32), else None. keep_row0: its first member's row in the table of dropout bits."""
        cfg, P, N = self.cfg, self.members, self.n_train
        lr = cfg.lr_at_pass(pass_index)
        b1, b2 = cfg.adam_beta1, cfg.adam_beta2
        adamw = cfg.optimizer == "adamw"
        imeta = torch.zeros(P, layout.N_INT, dtype=torch.int32)
        imeta[:, layout.I_ARCH] = codes.code("architecture", cfg.architecture)
        imeta[:, layout.I_ACT] = codes.code("hidden_activation", cfg.hidden_activation)
        imeta[:, layout.I_OUT] = codes.code("output", cfg.output)
        imeta[:, layout.I_OPT] = codes.code("optimizer", cfg.optimizer)
        imeta[:, layout.I_KEEP_ROW] = torch.arange(keep_row0, keep_row0 + P) if cfg.dropout > 0 else -1
        imeta[:, layout.I_LABEL_BASE] = label_base
        imeta[:, layout.I_CONN] = conn_index
        imeta[:, layout.I_FRESH] = int(self.step_count == 0)
        imeta[:, layout.I_SCHEDULE] = schedule_row if adamw else -1
        settings = torch.zeros(layout.N_FLOAT, dtype=torch.float64)
        settings[layout.F_LR] = lr
        settings[layout.F_DECAY] = 1.0 - lr * cfg.weight_decay
        settings[layout.F_ONE_MINUS_B1] = 1.0 - b1
        settings[layout.F_B2] = b2
        settings[layout.F_ONE_MINUS_B2] = 1.0 - b2
        settings[layout.F_EPS] = cfg.adam_eps
        settings[layout.F_SDLM_MU] = cfg.sdlm_mu
        settings[layout.F_SDLM_GAMMA] = cfg.sdlm_gamma
        settings[layout.F_KEEP_SCALE] = keep_scale(cfg)
        settings[layout.F_TARGET] = cfg.target
        fmeta = settings.float().expand(P, layout.N_FLOAT)
        schedule = None
        if adamw:
            t = torch.arange(self.step_count + 1, self.step_count + N + 1, dtype=torch.float64)
            schedule = torch.stack([lr / (1.0 - b1**t), (1.0 - b2**t) ** 0.5]).float()
        return imeta, fmeta, schedule


class FusedFCPopulation(FusedPopulation, FCPopulation):
    """The fused engine for the fully connected comparison net (fc40): FCPopulation's layer maths off the
    kernel (evaluation, layouts), the kernel's fc40 path for training."""

    ARCH = "fc40"

    def _connections(self) -> torch.Tensor:
        return torch.zeros(layout.PADDED["net1989"]["W2"])  # fc40 has no H2: a placeholder, never read


class FusedGroup:
    """Several fused populations (any supported configs, any datasets of the same size) trained by one kernel
    launch per pass: one program per member of every population. Members do not interact, so a member's
    numbers are the same alone or in a group (tested).

    time_kernel: measure each launch's kernel time (CUDA events on a GPU; the launch's wall time in the
    interpreter), read by `kernel_seconds` after the pass."""

    def __init__(self, pops: list[FusedPopulation], draw_ahead: bool | None = None, time_kernel: bool = False):
        if len({(p.n_train, p.device) for p in pops}) != 1:
            raise ValueError("a fused group needs populations with the same number of training images, on one device")
        self.pops, self.device, self.n_train = pops, pops[0].device, pops[0].n_train
        self.kernel = pops[0].kernel
        # Static data of every population, concatenated once: images (row bases), labels, H2 connection masks.
        self.image_base, base = [], 0
        for p in pops:
            self.image_base.append(base)
            base += len(p.images)
        self.images = pops[0].images if len(pops) == 1 else torch.cat([p.images for p in pops])
        self.labels = torch.cat([p.labels32 for p in pops])
        self.conn = torch.stack([p.conn for p in pops])
        tables = _index_tables()
        self.tables = {k: v.contiguous().to(self.device) for k, v in tables.items()}
        # On a GPU the next pass's random draws (dropout masks above all: 7291 x 192 numbers per member and
        # pass, on the CPU) are made right after a launch, while the GPU trains (launches are asynchronous);
        # they stay on the CPU until the next launch, so nothing waits for the GPU meanwhile. On CPU there is
        # nothing to overlap: the interpreter runs a launch to its end.
        self.draw_ahead = self.device.type == "cuda" if draw_ahead is None else draw_ahead
        self._ahead: dict[int, tuple[int, tuple]] = {}  # population -> (pass index, its draws on the CPU)
        self.time_kernel = time_kernel
        self._timing: tuple | None = None
        self._scratch: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _draws(self, i: int, pass_index: int):
        if i not in self._ahead:
            return self.pops[i]._draw_pass()
        drawn_for, draws = self._ahead.pop(i)
        self.pops[i]._states_before_ahead = None
        if drawn_for != pass_index:  # the generator has moved on: training on would break the random stream
            raise RuntimeError(f"population {i}: pass {drawn_for} was drawn ahead, but pass {pass_index} was asked for")
        return draws

    def _scratch_for(self, members: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The 1989 net's per-member scratch: H1 planes with background borders (as h1_padded; only the
        interior is ever written), then zeros (layout.H1_ZERO); d loss / d H2 patches. Kept between passes."""
        if members not in self._scratch:
            h1 = torch.full((members, layout.H1_SCRATCH), -1.0, device=self.device)
            h1[:, layout.H1_ZERO :] = 0.0
            self._scratch[members] = (h1, torch.zeros(members, layout.DP2_SCRATCH, device=self.device))
        return self._scratch[members]

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A host table -> the device; on CUDA from pinned memory, without blocking."""
        if self.device.type != "cuda":
            return t.contiguous()
        if not t.is_pinned():
            t = t.contiguous().pin_memory()
        return t.to(self.device, non_blocking=True)

    def train_pass(self, pass_indices: list[int | None]) -> None:
        """Train population i through its pass pass_indices[i] (None: leave it out of this launch). A
        population's passes must come in order (0, 1, 2, ...): the next one's draws are made ahead."""
        N, dev = self.n_train, self.device
        active = [(i, pop, k) for i, (pop, k) in enumerate(zip(self.pops, pass_indices)) if k is not None]
        if not active:
            return
        imetas, fmetas, schedules, rows_parts, bits_parts = [], [], [], [], []
        keep_rows = 0
        for i, pop, k in active:
            pop.pack_state()
            rows, bits = self._draws(i, k)
            imeta, fmeta, schedule = pop.member_tables(k, keep_rows, i * N, i, len(schedules))
            if bits is not None:
                bits_parts.append(bits)
                keep_rows += pop.members
            if schedule is not None:
                schedules.append(schedule)
            imetas.append(imeta)
            fmetas.append(fmeta)
            rows_parts.append((rows, self.image_base[i]))
        pops = [pop for _, pop, _ in active]
        members = sum(p.members for p in pops)
        params = torch.cat([p.packed for p in pops])
        avg, avg_sq = torch.cat([p.packed_avg for p in pops]), torch.cat([p.packed_avg_sq for p in pops])
        # Per-pass tables: each population's part copied into its slice of one device tensor (no host cat).
        rows_dev = torch.empty(members, N, dtype=torch.int32, device=dev)
        keep_dev = torch.empty(max(keep_rows, 1), N if keep_rows else 1, layout.KEEP_BYTES, dtype=torch.uint8, device=dev)
        start = keep_start = 0
        for (rows, base), pop in zip(rows_parts, pops):
            rows_dev[start : start + pop.members].copy_(rows, non_blocking=True)
            if base:
                rows_dev[start : start + pop.members] += base
            start += pop.members
        for bits in bits_parts:
            keep_dev[keep_start : keep_start + len(bits)].copy_(bits, non_blocking=True)
            keep_start += len(bits)
        schedule = torch.stack(schedules) if schedules else torch.ones(1, 2, N)  # (AdamW populations, 2, N)
        step_size, bc2 = (self._to_device(schedule[:, j].clone()) for j in range(2))
        h1_scratch, dp2_scratch = self._scratch_for(members)
        timing = self._start_timing()
        self.kernel[(members,)](
            params, avg, avg_sq, h1_scratch, dp2_scratch,
            self.images, rows_dev, keep_dev, self.labels, self.conn,
            self.tables["idx1"], self.tables["idx2"], self.tables["back"], self.tables["interior"],
            self._to_device(torch.cat(imetas)), self._to_device(torch.cat(fmetas)), step_size, bc2,
            N,
            num_warps=NUM_WARPS, enable_fp_fusion=FP_FUSION,
        )
        self._stop_timing(timing)
        start = 0
        for pop in pops:
            end = start + pop.members
            pop.packed.copy_(params[start:end])
            pop.packed_avg.copy_(avg[start:end])
            pop.packed_avg_sq.copy_(avg_sq[start:end])
            pop.step_count += N
            pop.unpack_state()
            start = end
        for i, pop, k in active:
            if self.draw_ahead and k + 1 < pop.cfg.passes:
                pop._states_before_ahead = pop._generator_states()
                self._ahead[i] = (k + 1, pop._draw_pass())  # while the GPU trains (the launch is asynchronous)

    def _start_timing(self):
        if not self.time_kernel:
            return None
        if self.device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            start.record()
            return start
        return time.perf_counter()

    def _stop_timing(self, start) -> None:
        if start is None:
            return
        if self.device.type == "cuda":
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._timing = (start, end)
        else:
            self._timing = (start, time.perf_counter())

    @property
    def kernel_seconds(self) -> float:
        """The last launch's kernel time (waits for it on a GPU); needs time_kernel=True."""
        if self._timing is None:
            raise RuntimeError("no launch was timed: build the group with time_kernel=True")
        start, end = self._timing
        if self.device.type == "cuda":
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        return end - start
