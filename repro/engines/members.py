"""What the members of a population share in every lockstep engine (population, fused, native; the generic
engine through the population's): each member's generator (from its seed), its initial weights drawn from that
generator as the reference loop draws them, the table of training images (padded, one copy per shift), a
pass's draws from each member's own generator in the reference loop's order, and the shape of an evaluation's
result. A member's numbers therefore never depend on its neighbours or on the engine that trains it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np
import torch

from repro.config import Config
from repro.net.model import BACKGROUND, PAD, draw_pass_randomness, init_params, run_generator, shift_images

KEEP_BYTES = 192 // 8  # a dropout mask over H3's 192 inputs, as bits


@dataclass
class EvalResult:
    loss: torch.Tensor  # (P,) mean loss over the split
    error: torch.Tensor  # (P,) error fraction
    outputs: torch.Tensor | None = None  # (P, N, 10) output values when asked for


@cache
def draw_threads() -> ThreadPoolExecutor:
    """The threads that draw a pass's random numbers, one member at a time each (torch's generator calls
    release the GIL): as many as torch's intra-op threads."""
    return ThreadPoolExecutor(max_workers=torch.get_num_threads(), thread_name_prefix="repro-draw")


def keep_bits(keep: torch.Tensor) -> np.ndarray:
    """Dropout masks (n, 192) of 0/1 as draw_pass_randomness gives them (reference order) -> (n, KEEP_BYTES)
    uint8: bit b of byte j is entry 8j + b."""
    return np.packbits(keep.numpy() != 0, axis=1, bitorder="little")


def keep_scale(cfg: Config) -> float:
    """The scale of a kept H3 input, rounded to float32 exactly as the population engine's division rounds it
    (the same torch division); 1.0 without dropout."""
    return float((torch.ones(1) / (1.0 - cfg.dropout))[0]) if cfg.dropout > 0 else 1.0


def shifted_rows(index: torch.Tensor, shifts: torch.Tensor | None, shift: int, n_train: int) -> torch.Tensor:
    """Rows of the image table (`image_table`: one copy of the n_train training patterns per (dy, dx) in
    [-shift, shift]^2, row-major) holding patterns `index` shifted by `shifts` ((n, 2) as (dy, dx); None:
    unshifted)."""
    dy, dx = (0, 0) if shifts is None else (shifts[:, 0], shifts[:, 1])
    return ((dy + shift) * (2 * shift + 1) + (dx + shift)) * n_train + index


def image_table(x_train: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The training images padded to 20x20 with background and flattened, one copy per possible shift (dy, dx),
    row-major in (dy, dx) as `shifted_rows` numbers them: (S*N, 400)."""
    s = cfg.shift
    versions = [shift_images(x_train, dy, dx, cfg.shift_mode) for dy in range(-s, s + 1) for dx in range(-s, s + 1)]
    padded = torch.nn.functional.pad(torch.stack(versions), (PAD,) * 4, value=BACKGROUND)
    return padded.reshape(len(versions) * len(x_train), 400)


class Members:
    """The members of one config: `generators[m]` (seed `seeds[m]`'s), `initial_params[m]` (paper-named, drawn
    from that generator first, as the reference loop draws them), the image table `images` on `device`, and
    each pass's draws."""

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, device: torch.device | str = "cpu"):
        self.cfg, self.seeds = cfg, list(seeds)
        self.n_train = len(x_train)
        self.generators = [run_generator(s) for s in self.seeds]
        self.initial_params = [init_params(cfg, gen) for gen in self.generators]
        self.images = image_table(x_train, cfg).to(device)

    def __len__(self) -> int:
        return len(self.seeds)

    def image_rows(self, index: torch.Tensor, shifts: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of `images` holding training patterns `index` shifted by `shifts` (see shifted_rows)."""
        return shifted_rows(index, shifts, self.cfg.shift, self.n_train)

    def draw(self, store: Callable[[int, torch.Tensor | None, torch.Tensor | None], None],
             pool: ThreadPoolExecutor | None = None) -> None:
        """Each member's draws for a pass (draw_pass_randomness, from its own generator) handed to
        store(m, shifts, keep), in `pool`'s threads or, without a pool, here: the same numbers either way, as
        each member draws from its own generator into its own rows."""
        def draw_member(m: int) -> None:
            store(m, *draw_pass_randomness(self.generators[m], self.n_train, self.cfg))

        if pool is None or len(self) == 1:
            for m in range(len(self)):
                draw_member(m)
        else:
            list(pool.map(draw_member, range(len(self))))

    def draw_pass_bits(self, rows_dtype: torch.dtype = torch.int64, pin: bool = False,
                       pool: ThreadPoolExecutor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The pass's draws as the compiled kernels take them: image rows (P, N) and dropout masks as bits
        (P, N, KEEP_BYTES) uint8 in the reference's order (keep_bits), or None; the kept inputs' scale is
        keep_scale(cfg). Members draw in `pool`'s threads, or one after another in this thread without one;
        `pin` puts both in pinned memory, for non-blocking copies to a GPU."""
        N, P = self.n_train, len(self)
        rows = torch.empty(P, N, dtype=rows_dtype, pin_memory=pin)
        bits = torch.empty(P, N, KEEP_BYTES, dtype=torch.uint8, pin_memory=pin) if self.cfg.dropout > 0 else None

        def store(m: int, shifts: torch.Tensor | None, keep: torch.Tensor | None) -> None:
            rows[m] = self.image_rows(torch.arange(N), shifts)
            if keep is not None:
                bits[m] = torch.from_numpy(keep_bits(keep))

        self.draw(store, pool)
        return rows, bits
