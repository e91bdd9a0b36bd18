"""The "fused" engine: population.Population with each training pass run by one Triton kernel launch
(fused_kernel.train_pass_kernel: one program per member loops over all of the pass's steps).

Everything but the pass itself is inherited: initial weights, each member's random draws (the same
generator calls, so the same shifts and dropout masks), evaluation, checkpoints and state_dict. The kernel
works on a padded copy of the parameters (fused_layout.LAYOUT); before a pass the engine's tensors are
packed into it and after the pass unpacked back, so `params.views` is current between passes, as with the
plain engine.

On a CUDA device this is the fast path. Without one, the same kernel source runs in Triton's interpreter on
the CPU, at about 75 member-steps/s on 2 cores (100x slower than the population engine at 1 member, 600x
at 16): it exists so that CI can check the kernel's arithmetic against the reference loop without a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

from repro.config import Config
from repro.engines import fused_layout as layout
from repro.engines.population import H1_INTERIOR, H1_PATCHES, H2_PATCHES, SHAPES, Population, flat_views

# name: (offset in a member's row, padded rows, padded columns); the kernel reads the same definition.
FUSED_LAYOUT = layout.LAYOUT
FUSED_ROW = layout.ROW

# Threads per member: 8 warps. Chosen from ptxas's resource report (`python -m repro.engines.kernel_check`): 4 warps
# spill more registers to the stack, 16 halve the registers but leave one block per SM all the same. Not yet
# tuned by measurement on a GPU.
NUM_WARPS = 8
FP_FUSION = True  # let the GPU fuse multiply-adds (Triton's default until 3.9); results differ by rounding only

SUPPORTED = {"architecture": ("net1989",), **{field: tuple(codes) for field, codes in layout.CODES.items()}}


class FusedEngineError(RuntimeError):
    """The fused engine cannot run this config or on this machine; the message says what to use instead."""


def unsupported_reason(cfg: Config) -> str | None:
    """Why the fused kernel cannot train `cfg`, or None when it can."""
    for field, allowed in SUPPORTED.items():
        value = getattr(cfg, field)
        if value not in allowed:
            return f"the fused engine does not implement {field} = {value!r} (it implements {', '.join(allowed)})"
    if cfg.target != 1.0:
        return f"the fused engine does not implement target = {cfg.target!r} (it implements 1.0)"
    if cfg.optimizer == "sdlm" and cfg.sdlm_curvature != "running":
        return f"the fused engine does not implement sdlm_curvature = {cfg.sdlm_curvature!r} (it implements 'running')"
    return None


def supports(cfg: Config) -> str | None:
    """The registry's name for `unsupported_reason`."""
    return unsupported_reason(cfg)


def available(device: torch.device) -> str | None:
    """Why the fused engine cannot run on `device` (no Triton, or a device Triton does not drive), or None.
    On CPU it runs in Triton's interpreter: for checking the kernel, about 100x slower than the population
    engine."""
    if device.type not in ("cpu", "cuda"):
        return f"the fused engine runs on CUDA (or, for checking, in Triton's CPU interpreter), not on {device.type}"
    if importlib.util.find_spec("triton") is None:
        return "the fused engine needs Triton (CUDA builds of PyTorch include it; `pip install triton` on CPU)"
    return None


def check_supported(cfg: Config) -> None:
    why = unsupported_reason(cfg)
    if why:
        raise FusedEngineError(f"{why}; use --engine population for this config")


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

        from repro.engines import fused_kernel
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


def _region(buf: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor `name` in the rows of `buf` (P, FUSED_ROW): its whole padded region, and the part holding the
    engine's entries, as (P, rows, cols) of the engine layout once reshaped."""
    offset, rows, cols = FUSED_LAYOUT[name]
    region = buf[:, offset : offset + rows * cols]
    if name == "W3":  # engine rows position*12 + map; here position*16 + map, maps padded 12 -> 16
        return region, region.view(len(buf), 16, 16, cols)[:, :, :12, : SHAPES["W3"][1]]
    r, c = SHAPES[name]
    return region, region.view(len(buf), rows, cols)[:, :r, :c]


def pack(views: dict[str, torch.Tensor], out: torch.Tensor) -> None:
    """Engine-layout tensors (P, rows, cols) -> rows of `out` (P, FUSED_ROW), zero-padded."""
    for name in FUSED_LAYOUT:
        region, real = _region(out, name)
        region.zero_()
        real.copy_(views[name].view(real.shape))


def unpack(packed: torch.Tensor, views: dict[str, torch.Tensor]) -> None:
    """Inverse of `pack`: rows of `packed` -> the engine-layout tensors, in place."""
    for name in FUSED_LAYOUT:
        views[name].copy_(_region(packed, name)[1].reshape(views[name].shape))


def _index_tables() -> dict[str, torch.Tensor]:
    """The kernel's fixed gather tables (int32), built from the engine's patch indices."""
    idx1 = torch.zeros(64, 32, dtype=torch.int32)
    idx1[:, :25] = H1_PATCHES
    k = torch.arange(300)
    idx2 = torch.zeros(16, 512, dtype=torch.int32)
    idx2[:, :300] = H2_PATCHES[:, k // 12] * 12 + k % 12  # entry tap*12 + map of position pos
    # For each H1 unit: which (H2 position, tap) pairs read it; at most 3x3 = 9 with 5x5 kernels at stride 2.
    back = torch.full((64, 16), -1, dtype=torch.int32)
    for q, plane_index in enumerate(H1_INTERIOR.tolist()):
        pos, tap = (H2_PATCHES == plane_index).nonzero(as_tuple=True)
        back[q, : len(pos)] = (pos * 300 + tap * 12).to(torch.int32)
    return {"idx1": idx1, "idx2": idx2, "back": back, "interior": H1_INTERIOR.to(torch.int32)}


class FusedPopulation(Population):
    """Population whose training passes run in the fused kernel; same results to float32 rounding.

    `train_pass` launches the kernel for this population alone; FusedGroup trains several populations
    (different rungs, datasets) in one launch per pass.
    """

    ENGINE = "fused"

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, y_train: torch.Tensor, device="cpu"):
        check_supported(cfg)
        super().__init__(cfg, seeds, x_train, y_train, device=device)
        self.kernel = load_kernel(self.device)
        P, dev = self.members, self.device
        self.conn = torch.zeros(512, 16, device=dev)
        self.conn[:300, :12] = self.mask
        self.packed = torch.zeros(P, FUSED_ROW, device=dev)
        self.packed_avg = torch.zeros(P, FUSED_ROW, device=dev)  # AdamW moments (stay zero for SGD)
        self.packed_avg_sq = torch.zeros(P, FUSED_ROW, device=dev)
        self.labels32 = self.labels.to(torch.int32)
        self._alone: FusedGroup | None = None
        self._states_before_ahead: list[torch.Tensor] | None = None  # set while a group holds draws made ahead

    def train_pass(self, pass_index: int) -> None:
        if self._alone is None:
            self._alone = FusedGroup([self])
        self._alone.train_pass([pass_index])

    def pack_state(self) -> None:
        """Engine tensors (which callers may read or change between passes) -> the kernel's padded copies."""
        pack(self.params.views, self.packed)
        if self.cfg.optimizer == "adamw":
            pack(flat_views(self.optimizer.exp_avg, self.members), self.packed_avg)
            pack(flat_views(self.optimizer.exp_avg_sq, self.members), self.packed_avg_sq)

    def unpack_state(self) -> None:
        unpack(self.packed, self.params.views)
        if self.cfg.optimizer == "adamw":
            unpack(self.packed_avg, flat_views(self.optimizer.exp_avg, self.members))
            unpack(self.packed_avg_sq, flat_views(self.optimizer.exp_avg_sq, self.members))

    def _generator_states(self) -> list[torch.Tensor]:
        """As Population's, but from before any draws a FusedGroup made ahead for the next pass, so that a
        population loaded from this state draws that pass again, identically."""
        return self._states_before_ahead or super()._generator_states()

    def load_state_dict(self, d: dict) -> None:
        """As Population's; draws made ahead by this population's own group are dropped (load into a
        population that no other FusedGroup holds)."""
        super().load_state_dict(d)
        self._alone, self._states_before_ahead = None, None

    def member_tables(self, pass_index: int, draws, keep_row0: int, label_base: int, conn_index: int):
        """This population's rows of the kernel's per-member tables for one pass.

        draws: this pass's (image rows (P, N), dropout scales (P, N, 192) or None) from `_draw_pass`, drawn
        from each member's generator exactly as Population draws them. Returns them, and per member: imeta
        (P, N_INT) int32, fmeta (P, N_FLOAT) float32 (columns: fused_layout), AdamW step sizes and bias corrections (P, N) float32 (computed in
        double, as repro.optim.AdamW computes them, then rounded to float32).
        """
        cfg, P, N = self.cfg, self.members, self.n_train
        rows, scale = draws
        lr = cfg.lr_at_pass(pass_index)
        b1, b2 = cfg.adam_beta1, cfg.adam_beta2
        keep_rows = torch.arange(keep_row0, keep_row0 + P) if scale is not None else torch.full((P,), -1)
        imeta = torch.zeros(P, layout.N_INT, dtype=torch.int32)
        imeta[:, layout.I_ACT] = layout.code("hidden_activation", cfg.hidden_activation)
        imeta[:, layout.I_OUT] = layout.code("output", cfg.output)
        imeta[:, layout.I_OPT] = layout.code("optimizer", cfg.optimizer)
        imeta[:, layout.I_KEEP_ROW] = keep_rows
        imeta[:, layout.I_LABEL_BASE] = label_base
        imeta[:, layout.I_CONN] = conn_index
        settings = torch.zeros(layout.N_FLOAT, dtype=torch.float64)
        settings[[layout.F_LR, layout.F_DECAY, layout.F_ONE_MINUS_B1, layout.F_B2, layout.F_ONE_MINUS_B2, layout.F_EPS]] = \
            torch.tensor([lr, 1.0 - lr * cfg.weight_decay, 1.0 - b1, b2, 1.0 - b2, cfg.adam_eps], dtype=torch.float64)
        fmeta = settings.float().expand(P, layout.N_FLOAT)
        t = torch.arange(self.step_count + 1, self.step_count + N + 1, dtype=torch.float64)
        step_size = (lr / (1.0 - b1**t)).float().expand(P, N)
        bc2 = ((1.0 - b2**t) ** 0.5).float().expand(P, N)
        return rows, scale, imeta, fmeta, step_size, bc2


class FusedGroup:
    """Several fused populations (any supported configs, any datasets of the same size) trained by one kernel
    launch per pass: one program per member of every population. Members do not interact, so a member's
    numbers are the same alone or in a group (tested)."""

    def __init__(self, pops: list[FusedPopulation], draw_ahead: bool | None = None):
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

    def _draws(self, i: int, pass_index: int):
        if i not in self._ahead:
            return self.pops[i]._draw_pass()
        drawn_for, draws = self._ahead.pop(i)
        self.pops[i]._states_before_ahead = None
        if drawn_for != pass_index:  # the generator has moved on: training on would break the random stream
            raise RuntimeError(f"population {i}: pass {drawn_for} was drawn ahead, but pass {pass_index} was asked for")
        return draws

    def train_pass(self, pass_indices: list[int | None]) -> None:
        """Train population i through its pass pass_indices[i] (None: leave it out of this launch). A
        population's passes must come in order (0, 1, 2, ...): the next one's draws are made ahead."""
        N, dev = self.n_train, self.device
        parts, keeps, keep_rows = [], [], 0
        for i, (pop, k) in enumerate(zip(self.pops, pass_indices)):
            if k is None:
                continue
            pop.pack_state()
            rows, scale, imeta, fmeta, step_size, bc2 = pop.member_tables(k, self._draws(i, k), keep_rows, i * N, i)
            if scale is not None:
                keeps.append(scale)
                keep_rows += pop.members
            parts.append((pop, rows + self.image_base[i], imeta, fmeta, step_size, bc2))
        if not parts:
            return
        pops = [p[0] for p in parts]
        cat = lambda xs: torch.cat(xs).contiguous()  # noqa: E731
        params = cat([p.packed for p in pops])
        avg, avg_sq = cat([p.packed_avg for p in pops]), cat([p.packed_avg_sq for p in pops])
        members = len(params)
        h1_scratch = torch.full((members, 144 * 12), -1.0, device=dev)  # background borders, as h1_padded
        dp2_scratch = torch.zeros(members, 16 * 300, device=dev)
        keep = cat(keeps).to(dev) if keeps else dp2_scratch  # without dropout members: a placeholder, never read
        self.kernel[(members,)](
            params, avg, avg_sq, h1_scratch, dp2_scratch,
            self.images, cat([p[1].to(dev) for p in parts]).to(torch.int32), keep, self.labels, self.conn,
            self.tables["idx1"], self.tables["idx2"], self.tables["back"], self.tables["interior"],
            cat([p[2] for p in parts]).to(dev), cat([p[3] for p in parts]).to(dev),
            cat([p[4] for p in parts]).to(dev), cat([p[5] for p in parts]).to(dev),
            N,
            num_warps=NUM_WARPS, enable_fp_fusion=FP_FUSION,
        )
        for i, (pop, k) in enumerate(zip(self.pops, pass_indices)):
            if self.draw_ahead and k is not None and k + 1 < pop.cfg.passes:
                pop._states_before_ahead = pop._generator_states()
                self._ahead[i] = (k + 1, pop._draw_pass())  # while the GPU trains (the launch is asynchronous)
        start = 0
        for pop in pops:
            end = start + pop.members
            pop.packed.copy_(params[start:end])
            pop.packed_avg.copy_(avg[start:end])
            pop.packed_avg_sq.copy_(avg_sq[start:end])
            pop.step_count += N
            pop.unpack_state()
            start = end
