"""Which engine trains a config: every engine by name, what each supports, and the one fallback rule.

    reference   the plain per-example loop (the oracle); one run per seed
    population  all seeds in lockstep with batched torch ops; every config, every device
    fused       the Triton kernel (population.Population's API); CUDA, or Triton's CPU interpreter for checks
    native      the C engine (repro.engines.native.loader; optional: unavailable when missing or not built)
    generic     all seeds in lockstep through autograd (repro.engines.generic), the step compiled by torch.compile
                (repro.engines.generic_compile): the one engine that runs a rung's own code (Config.code), which
                no other engine can know; stock configs too, but SDLM
    generic-eager  the same step op by op, uncompiled: what `generic` falls back to (with a message naming the
                hook and the reason) when a step cannot be compiled. A name of its own, not an option, so that
                bench measures both side by side and a user can rule the compiler out with --engine.

Each engine module answers `supports(cfg) -> str | None` and `available(device) -> str | None` (None: yes;
otherwise the reason; the native module's `available()` takes no device: it runs on the CPU), and a
lockstep engine gives its population class (Population's API: train_pass, evaluate, member_params,
state_dict, load_state_dict).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch

from repro.config import Config
from repro.errors import ReproError

NAMES = ("reference", "population", "fused", "native", "generic", "generic-eager")
AUTO = "auto"


@dataclass(frozen=True)
class Engine:
    name: str
    module: str  # the engine's module, imported when first asked

    @property
    def lockstep(self) -> bool:
        """True: trains a population (train_pass, evaluate, member_params, state_dict); False: the reference
        loop (reference.train_reference, one seed at a time)."""
        return self.name != "reference"

    def _load(self):
        return importlib.import_module(self.module)

    def available(self, device: torch.device | str) -> str | None:
        """Why this engine cannot run on `device` here, or None."""
        device = torch.device(device)
        try:
            mod = self._load()
        except ImportError as err:
            return f"the {self.name} engine is not installed ({err})"
        if self.name == "native":  # the C engine's module answers for the CPU it runs on
            return mod.available() if device.type == "cpu" else f"the native engine runs on the CPU, not on {device.type}"
        return mod.available(device)

    def supports(self, cfg: Config) -> str | None:
        """Why this engine cannot train `cfg`, or None."""
        try:
            mod = self._load()
        except ImportError as err:
            return f"the {self.name} engine is not installed ({err})"
        return mod.supports(cfg)

    def population_class(self, cfg: Config) -> type:
        """The class to build as cls(cfg, seeds, x_train, y_train, device=device)."""
        if not self.lockstep:
            raise TypeError("the reference engine trains one seed at a time: call reference.train_reference")
        mod = self._load()
        if self.name == "population":
            return mod.population_class(cfg.architecture)
        if self.name in GENERIC:
            return mod.generic_class(cfg.architecture, compiled=self.name == "generic")
        return mod.FusedPopulation if self.name == "fused" else mod.NativePopulation


ENGINES = {
    "reference": Engine("reference", "repro.engines.reference"),
    "population": Engine("population", "repro.engines.population"),
    "fused": Engine("fused", "repro.engines.fused.population"),
    "native": Engine("native", "repro.engines.native.loader"),
    "generic": Engine("generic", "repro.engines.generic"),
    "generic-eager": Engine("generic-eager", "repro.engines.generic"),
}
GENERIC = ("generic", "generic-eager")  # the engines that run a rung's own code


class EngineError(ReproError, ValueError):
    """An unknown engine name, or an engine asked for by name that cannot run on this machine."""


def get(name: str) -> Engine:
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; valid: {AUTO}, {', '.join(NAMES)}")
    return ENGINES[name]


def choose(name: str, cfg: Config, device: torch.device | str) -> tuple[Engine, str | None]:
    """The engine that trains `cfg` on `device` when `name` is asked for, and a note saying why it is not
    the one asked for (None when it is, or when "auto" took its first choice or found it unavailable).

    A config with code (a rung's own hooks) always gets the generic engine.
    "auto": on CPU the native engine when available and it supports cfg, on CUDA the fused engine likewise;
    otherwise population. An engine named explicitly that does not support cfg falls back to population
    (a ladder mixes configs); one that is not available on this machine is an EngineError.
    """
    device = torch.device(device)
    population = ENGINES["population"]
    if cfg.code:  # a rung's own code: only the generic engine can run it
        if name != AUTO:
            get(name)
        generic = ENGINES[name if name in GENERIC else "generic"]
        if why := generic.supports(cfg):
            raise EngineError(f"config with code {cfg.code}: {why}")
        note = None if name in (AUTO, *GENERIC) else f"--engine {name} cannot run a rung's own code; running it on the generic engine"
        return generic, note
    if name == AUTO:
        first = ENGINES["fused" if device.type == "cuda" else "native"]
        if first.available(device):
            return population, None
        if why := first.supports(cfg):
            return population, f"{why}; running it on the population engine"
        return first, None
    engine = get(name)
    if why := engine.available(device):
        raise EngineError(f"--engine {name}: {why}")
    if why := engine.supports(cfg):
        return population, f"{why}; running it on the population engine"
    return engine, None
