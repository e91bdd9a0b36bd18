"""state_dict / load_state_dict of the lockstep engines: training resumed from a saved state (through
torch.save and torch.load) ends bit for bit where uninterrupted training ends."""

import io

import pytest
import torch

from repro.config import Config
from repro.engines.population import FCPopulation, Population

CONFIGS = {  # every optimizer's buffers, and random streams that move every pass (shifts, dropout)
    "sgd-shift": Config(passes=2, shift=1),
    "adamw-dropout": Config(passes=2, optimizer="adamw", lr=3e-4, hidden_activation="relu", dropout=0.25, shift=1),
    "sdlm-dropout": Config(passes=2, optimizer="sdlm", lr=1e-3, dropout=0.5, lr_schedule="linear"),
    "fc40-sdlm": Config(architecture="fc40", passes=2, optimizer="sdlm", lr=1e-3, shift=1),
    "fc40-adamw": Config(architecture="fc40", passes=2, optimizer="adamw", lr=3e-4),
}


def _round_trip(d: dict) -> dict:
    buf = io.BytesIO()
    torch.save(d, buf)
    buf.seek(0)
    return torch.load(buf)


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_two_passes_straight_equal_one_pass_saved_loaded_and_one_more(label, usps):
    cfg = CONFIGS[label]
    cls = FCPopulation if cfg.architecture == "fc40" else Population
    x, y = usps.x_train[:60], usps.y_train[:60]
    straight = cls(cfg, [0, 3], x, y)
    for p in range(2):
        straight.train_pass(p)
    first = cls(cfg, [0, 3], x, y)
    first.train_pass(0)
    state = _round_trip(first.state_dict())
    resumed = cls(cfg, [0, 3], x, y)
    resumed.load_state_dict(state)
    resumed.train_pass(1)
    assert resumed.step_count == straight.step_count == 120
    assert torch.equal(resumed.params.flat, straight.params.flat)
    for k, v in straight.optimizer.state_dict().items():
        assert torch.equal(resumed.optimizer.state_dict()[k], v), k


def test_a_state_does_not_load_into_another_population(usps):
    x, y = usps.x_train[:10], usps.y_train[:10]
    state = Population(Config(), [0, 1], x, y).state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        Population(Config(), [0, 2], x, y).load_state_dict(state)
    with pytest.raises(ValueError, match="does not fit"):
        Population(Config(lr=0.01), [0, 1], x, y).load_state_dict(state)
