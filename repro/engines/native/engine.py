"""Native CPU engine: all seeds of a config trained in lockstep at batch size 1 by a plain C kernel
(`native/kernel.c`), 8 or 16 members per AVX2 or AVX-512 register, or 8 in two NEON registers on ARM64 (one
member per SIMD lane), threads over groups. A population too small to fill the lanes trains each member alone
instead (`native/solo.c`: one member's units in the lanes, threads over members; see LANE_USES).

Each member computes exactly what the reference loop computes for it (tested against it at the lockstep
engines' tolerances), and its numbers do not depend on its neighbours, its place in the population, the number
of threads or whether it trains alone (bit for bit): every lane runs the same instructions on its own data,
and alone, every number comes from the same operations in the same order.

Per-member generators, initial weights and the image table are what every engine's members share
(repro.engines.members). A pass's draws come from each member's own generator in the reference loop's order,
made by `draws.c` (a copy of torch's CPU generator, checked against torch when first used; draws.py) or else by
`Members.draw_pass_bits`, the same numbers either way; the drawn rows and dropout masks (bits, with the scale
of a kept input) go to the kernel.

The kernel is built on first use (native/build.py); without a C compiler, importing still works: `available()`
returns the reason and the engine cannot be built.
"""

from __future__ import annotations

import ctypes
import json

import torch

from repro.config import Config
from repro.engines import codes
from repro.engines.native import draws
from repro.engines.native.build import (LANE_USES, Build, Spec, default_build, load,
                                        trains_alone_by_default)
from repro.engines.members import EvalResult, Members, draw_threads, keep_scale
from repro.net.metrics import exact_sum, is_wrong
from repro.net.model import h2_scheme, pad_background, set_float_mode
from repro.net.sdlm import curvature_window
from repro.resources import study_dir


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
    """None: the native engine implements every option of every Config (the coded ones by their codes; lr
    comes from cfg.lr_at_pass once per pass; initial weights, shifted images and draws from what members share)."""
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
        # generators, initial weights, the image table and each pass's draws: what every engine's members share
        self.shared = Members(cfg, self.seeds, x_train)
        if self.shared.images.numel() >= 2**31:  # the kernel gathers pixels by 32-bit offsets into this table
            raise ValueError(f"the native engine takes at most {2**31 // 400 - 1:,} training images (with their "
                             f"shifted copies); this configuration has {len(self.shared.images):,}")
        self.generators = self.shared.generators
        self.layout = codes.LAYOUTS[cfg.architecture]
        self.nparam = codes.NPARAM[cfg.architecture]
        self.lanes = lanes = lib.native_lanes()
        self.groups = (self.members + lanes - 1) // lanes
        self.params = torch.zeros(self.groups, self.nparam, lanes)  # the kernel's weights, members in the lanes
        for m, initial in enumerate(self.shared.initial_params):
            self.params[m // lanes, :, m % lanes] = torch.cat([initial[k].reshape(-1) for k in self.layout])
        self.state1 = torch.zeros_like(self.params) if cfg.optimizer in ("adamw", "sdlm") else None
        self.state2 = torch.zeros_like(self.params) if cfg.optimizer == "adamw" else None
        self.step_count = 0
        self.labels = y_train.to(torch.int64).contiguous()
        self._per_pass_curvature = cfg.optimizer == "sdlm" and cfg.sdlm_curvature == "per_pass"
        self._spec = self._make_spec()

    def _make_spec(self) -> Spec:
        cfg = self.cfg
        s = Spec()
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
                                    self._ptr(self.state2), self.members, self.shared.images.data_ptr(),
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
        return self.shared.draw_pass_bits(pool=draw_threads() if self._threads() > 1 else None)

    def _estimate_curvature(self, pass_index: int) -> None:
        """SDLM "per_pass": state1 := the mean curvature over the pass's window of patterns (sdlm.py), by one
        kernel call that adds each pattern's curvature into state1 and leaves the weights alone."""
        k = self.cfg.sdlm_estimate_patterns
        window = curvature_window(pass_index, self.n_train, k)
        rows = self.shared.image_rows(window).expand(self.members, k).contiguous()
        labels = self.labels[window].contiguous()
        spec = Spec.from_buffer_copy(self._spec)
        spec.opt = codes.SDLM_ESTIMATE
        self.state1.zero_()
        rc = self._lib.native_train(ctypes.byref(spec), self.params.data_ptr(), self.state1.data_ptr(), None,
                                    self.members, self.shared.images.data_ptr(), rows.data_ptr(), None,
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
