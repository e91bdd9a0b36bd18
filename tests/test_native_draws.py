"""The native library's draws (draws.c, via repro.engines.native.draws) against torch's: for every shift and
dropout the ladders use (and a probability that float32 rounds), from generators at several positions in their
624-number blocks, the same image rows, the same dropout bits, and each generator left in the same state; a
population draws through them exactly as through torch."""

import pytest
import torch

from repro.config import Config
from repro.engines.native import draws
from repro.engines.native import build as native_build
from repro.engines.native.engine import NativePopulation
from tests.conftest import N_SUBSET

pytestmark = pytest.mark.skipif(native_build._compiler() is None, reason="no C compiler: the native engine is unavailable")

# 0.5 + 2^-26 rounds to 0.5 in float32: a draw of exactly 0.5 is kept, as torch compares in the tensor's dtype
PROBABILITIES = [0.0, 0.1, 0.25, 0.5, 0.5 + 2.0**-26]


@pytest.mark.parametrize("shift", [0, 1, 2])
@pytest.mark.parametrize("dropout", PROBABILITIES)
@pytest.mark.parametrize("already_drawn", [0, 1, 623, 624, 1000])
def test_draws_equal_torchs(shift, dropout, already_drawn):
    cfg = Config().replace(shift=shift, dropout=dropout)
    lib = native_build.load()
    for n in (1, 7, 300):
        ours, theirs = torch.Generator().manual_seed(n + shift), torch.Generator().manual_seed(n + shift)
        for gen in (ours, theirs):
            torch.rand(already_drawn, generator=gen)
        rows, bits = draws.draw_pass_bits(lib, [ours], n, cfg)
        want_rows, want_bits = draws.torch_draws(theirs, n, cfg)
        assert torch.equal(rows[0], want_rows)
        assert (bits is None) == (want_bits is None)
        if bits is not None:
            assert torch.equal(bits[0], want_bits)
        assert torch.equal(ours.get_state(), theirs.get_state()), "the generators must continue alike"


def test_draws_agree_on_this_installation():
    assert draws.draws_agree(native_build.load())


def test_an_unreadable_state_is_refused():
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    state[8:12] = 0  # `left` = 0: no position in a block
    gen_bad = torch.Generator()
    with pytest.raises(RuntimeError):
        gen_bad.set_state(state)  # torch refuses it too
    lib = native_build.load()
    rows = torch.empty(1, 3, dtype=torch.int64)
    assert lib.native_draw_pass(state.data_ptr(), 3, 1, 0.0, 3, rows.data_ptr(), None) == -1


def test_a_population_trains_the_same_with_either_draws(usps, monkeypatch):
    cfg = Config().replace(optimizer="adamw", lr=3e-4, shift=1, dropout=0.25)
    x, y = usps.x_train[:N_SUBSET], usps.y_train[:N_SUBSET]
    runs = []
    for agree in (True, False):
        monkeypatch.setattr(draws, "draws_agree", lambda lib, agree=agree: agree)
        pop = NativePopulation(cfg, [0, 1, 2], x, y)
        for p in range(2):
            pop.train_pass(p)
        runs.append(pop.state_dict())
    for key in ("params", "state1", "state2"):
        assert torch.equal(runs[0][key], runs[1][key]), key
    for a, b in zip(runs[0]["generators"], runs[1]["generators"], strict=True):
        assert torch.equal(a, b)
