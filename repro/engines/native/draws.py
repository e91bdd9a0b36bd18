"""A pass's random draws made by the native library (draws.c) from each member's torch generator: the same
numbers as `Members.draw_pass_bits` (model.draw_pass_randomness's calls, in its order), written as the kernel
takes them (image rows and dropout bits), and each generator left in the state torch's calls leave it in.

torch takes about 10 ms per member and pass to draw and pack a pass of dropout masks (1.4 M numbers); the C
copy of its generator about 1.3 ms (measured on the AVX-512 Xeon). Where the C draws would not reproduce
torch's (a torch whose CPU generator differs from the one draws.c copies), `draws_agree` says so once per
library and the engine draws through torch instead: the same numbers either way, only slower.
"""

from __future__ import annotations

import ctypes
from functools import cache

import torch

from repro.config import Config
from repro.engines.members import KEEP_BYTES, keep_bits, shifted_rows
from repro.net.model import draw_pass_randomness


def draw_pass_bits(lib: ctypes.CDLL, generators: list[torch.Generator], n: int,
                   cfg: Config) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rows (P, n) int64 and dropout bits (P, n, KEEP_BYTES) uint8 or None, as Members.draw_pass_bits gives
    them for a population of len(generators) members on n training patterns; advances the generators."""
    P = len(generators)
    rows = torch.empty(P, n, dtype=torch.int64)
    bits = torch.empty(P, n, KEEP_BYTES, dtype=torch.uint8) if cfg.dropout > 0 else None
    for m, gen in enumerate(generators):
        state = gen.get_state()  # a copy: the generator moves on only at set_state
        rc = lib.native_draw_pass(state.data_ptr(), n, cfg.shift, cfg.dropout, n,
                                  rows[m].data_ptr(), None if bits is None else bits[m].data_ptr())
        if rc != 0:
            raise RuntimeError(f"the native draws could not read member {m}'s generator state (code {rc})")
        gen.set_state(state)
    return rows, bits


def torch_draws(gen: torch.Generator, n: int, cfg: Config) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One member's rows (n,) and dropout bits (n, KEEP_BYTES) or None, drawn through torch's own calls
    (model.draw_pass_randomness): what draw_pass_bits must reproduce."""
    shifts, keep = draw_pass_randomness(gen, n, cfg)
    rows = shifted_rows(torch.arange(n), shifts, cfg.shift, n)
    return rows, None if keep is None else torch.from_numpy(keep_bits(keep))


@cache
def draws_agree(lib: ctypes.CDLL) -> bool:
    """Whether `lib`'s draws equal torch's on this installation: one short pass with shifts and dropout from a
    generator in mid-stream, compared number for number, and the generators' states afterwards."""
    cfg = Config().replace(shift=2, dropout=0.3)
    ours, theirs = torch.Generator().manual_seed(1989), torch.Generator().manual_seed(1989)
    for gen in (ours, theirs):
        torch.rand(1000, generator=gen)  # a position inside the generator's 624-number block
    n = 50
    rows, bits = draw_pass_bits(lib, [ours], n, cfg)
    want_rows, want_bits = torch_draws(theirs, n, cfg)
    return (torch.equal(rows[0], want_rows) and torch.equal(bits[0], want_bits)
            and torch.equal(ours.get_state(), theirs.get_state()))
