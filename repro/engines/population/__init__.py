"""The population engine: many members (seeds of one config) trained in lockstep at batch size 1, in torch ops.

    lockstep.py the base of every torch lockstep engine: Population (the 1989 net's layer maths, the step,
                evaluation, state); the fused and generic engines build on it. What the members of every
                engine share (generators, initial weights, images, draws) is repro.engines.members
    fc40.py     the comparison net's FCPopulation: its layer maths, the rest is Population's
    layers.py   one forward and one backward function per layer kind

The registry asks this package for `supports`, `available` and `population_class`.
"""

from __future__ import annotations

import torch

from repro.config import Config
from repro.engines.population.fc40 import FCPopulation
from repro.engines.population.lockstep import Population

__all__ = ["Population", "FCPopulation", "population_class", "supports", "available"]


def supports(cfg: Config) -> str | None:
    """Why the population engine cannot train `cfg` (never: it implements every option), or None."""
    return None


def available(device: torch.device) -> str | None:
    """Why the population engine cannot run on `device`, or None (it runs wherever torch does)."""
    return None


def population_class(architecture: str) -> type[Population]:
    """The lockstep engine class of an architecture."""
    return FCPopulation if architecture == "fc40" else Population
